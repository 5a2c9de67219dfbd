"""The small pieces of HTML every page of the harness is made of: escaping, numbers as
tables show them, a transport's name cell with its colour."""

from __future__ import annotations

import html

from harness.present.plots.style import color


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: float | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str | bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def transport_cell(name: str) -> str:
    return (
        f'<td class="name"><span class="swatch" style="background:{color(name)}"></span>'
        f"{esc(name)}</td>"
    )
