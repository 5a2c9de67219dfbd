"""The one-file HTML report of a run: `write_report(run, run_dir)` writes `report.html`.

One self-contained file to attach or mail around: inline CSS, charts embedded as base64
PNG, no scripts, nothing fetched. It holds the scenario and environment, a verdict table
(the best value in each column highlighted), every chart with how to read it, every metric
and the metric definitions (`harness.analyse.metrics`' docstring). The HTML building blocks here are
shared with `harness.analyse.compare`.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from errors import ResultsError
from harness.analyse import metrics
from harness.analyse.conversations import point_conversations
from harness.analyse.intervals import Interval
from harness.analyse.metrics import Distribution, TransportSummary
from harness.analyse.problems import ProblemRow, point_problems
from harness.analyse.ranking import Ranked, ranked
from harness.analyse.results import Point, RunResult, load_run
from harness.present.conversation_section import html_section
from harness.present.html import esc, number, transport_cell
from harness.present.loss_section import loss_section
from harness.present.plots import PNG_DPI, DrawnChart, describe, draw_run, representative
from harness.present.rounds_section import rounds_section

REPORT_NAME = "report.html"
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; color: #1d1d1f; margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 1180px;
  line-height: 1.45; font-size: 16px; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2.4rem; border-bottom: 2px solid #e4e4e8; }
h3 { font-size: 1.08rem; margin-top: 1.6rem; }
.lead { color: #4a4a55; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #d8d8de; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f3f3f6; font-weight: 600; }
td.name, th.name { text-align: left; white-space: nowrap; }
table.wide { display: block; max-width: 100%; overflow-x: auto; }
td.best { background: #d6f5d6; font-weight: 700; }
td.tied { background: #eef8ee; }
span.ci { color: #666; font-size: 85%; }
p.warning { background: #fff3cd; border-left: 4px solid #d4a017; padding: 6px 10px; }
td.better { color: #157a15; font-weight: 600; }
td.worse { color: #b42318; font-weight: 600; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px;
  margin-right: 0.4em; vertical-align: baseline; }
figure { margin: 1.6rem 0 2.2rem; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #e4e4e8; }
figcaption { color: #3a3a44; margin-top: 0.5rem; max-width: 60rem; }
table.kv td { text-align: left; }
table.kv td:first-child { color: #4a4a55; white-space: nowrap; }
details { margin: 0.8rem 0; }
summary { cursor: pointer; font-weight: 600; }
dl.defs dt { font-weight: 700; margin-top: 0.5rem; }
dl.defs dd { margin-left: 1.2rem; }
code { background: #f3f3f6; padding: 0 0.25em; border-radius: 3px; }
"""


@dataclass(frozen=True, slots=True)
class Column:
    """One per-transport number of a verdict or comparison table; `figure` names it for its
    confidence interval (`TransportSummary.interval`), where it has one."""

    header: str
    unit: str
    value: Callable[[TransportSummary], float | None]
    better: Literal["lower", "higher"] = "lower"
    figure: str | None = None

    def interval(self, summary: TransportSummary) -> Interval | None:
        return None if self.figure is None else summary.interval(self.figure)


def figure_column(header: str, unit: str, figure: str) -> Column:
    """A column of one summary figure (`ttft_ms.p50`, `wire_bytes_per_token`), with its
    interval."""
    return Column(header, unit, lambda summary: summary.figure(figure), figure=figure)


VERDICT: tuple[Column, ...] = (
    figure_column("TTFT p50", "ms", "ttft_ms.p50"),
    figure_column("TTFT p99", "ms", "ttft_ms.p99"),
    figure_column("added delay p50", "ms", "added_delay_ms.p50"),
    figure_column("added delay p99", "ms", "added_delay_ms.p99"),
    figure_column("bytes per token", "B", "wire_bytes_per_token"),
    figure_column("requests per stream", "", "requests_per_stream"),
    figure_column("server CPU per 1k tokens", "ms", "server_cpu_ms_per_1k_tokens"),
    figure_column("client CPU per 1k tokens", "ms", "client_cpu_ms_per_1k_tokens"),
    Column("errors", "streams", lambda s: s.errors),
)


def header_cell(column: Column) -> str:
    unit = f" ({esc(column.unit)})" if column.unit else ""
    return f"<th>{esc(column.header)}{unit}</th>"


def with_interval(value: float | None, interval: Interval | None) -> str:
    """`344 <span class="ci">±3.1</span>`: the value and its interval's half width."""
    if value is None or interval is None:
        return number(value)
    return f'{number(value)} <span class="ci">±{number(interval.half_width)}</span>'


def best_values(
    summaries: dict[str, TransportSummary], columns: Sequence[Column]
) -> list[Ranked | None]:
    """Per column, the best value and the transports that share it: tied when their
    confidence intervals overlap the best one's (`harness.analyse.ranking`); None when every
    transport has the same value."""
    return [
        ranked(
            {n: (c.value(s), c.interval(s)) for n, s in summaries.items()},
            c.better,
        )
        for c in columns
    ]


def _p(dist: Distribution | None, stat: str) -> float | None:
    """A statistic of an optional distribution (None when it is absent or empty)."""
    return None if dist is None or not dist.n else getattr(dist, stat)


# The fault benchmark (scenario `[faults]`): shown when a run dropped or left streams.
FAULTS: tuple[Column, ...] = (
    Column("drops", "", lambda s: s.drops),
    Column("tokens lost", "", lambda s: s.tokens_lost),
    Column("tokens duplicated", "", lambda s: s.tokens_duplicated),
    Column("recovery p50", "ms", lambda s: _p(s.recovery_ms, "p50")),
    Column("recovery p99", "ms", lambda s: _p(s.recovery_ms, "p99")),
    Column("streams left", "", lambda s: s.left),
    Column("cancelled after leaving p50", "ms", lambda s: _p(s.cancel_after_leave_ms, "p50")),
    Column("beyond the grace p99", "ms", lambda s: _p(s.cancel_beyond_grace_ms, "p99")),
)


def has_faults(summaries: dict[str, TransportSummary]) -> bool:
    return any(s.drops or s.left for s in summaries.values())


def problems_table(rows: Sequence[ProblemRow]) -> str:
    """A live upstream's problems at one point (`harness.analyse.problems`)."""
    head = "".join(
        f'<th class="name">{esc(h)}</th>' for h in ("severity", "code", "streams", "what", "fix")
    )
    cells = [
        f'<tr><td class="name">{esc(row.severity)}</td><td class="name"><code>{esc(row.code)}'
        f'</code></td><td class="name">{esc(row.where())}</td><td class="name">'
        f'{esc(row.message)}</td><td class="name">{esc(row.fix)}</td></tr>'
        for row in rows
    ]
    return f'<table class="kv"><tr>{head}</tr>{"".join(cells)}</table>'


def verdict_table(
    summaries: dict[str, TransportSummary], columns: tuple[Column, ...] = VERDICT
) -> str:
    best = best_values(summaries, columns)
    head = '<th class="name">transport</th>' + "".join(header_cell(c) for c in columns)
    rows = []
    for name, summary in summaries.items():
        cells = [transport_cell(name)]
        for column, top in zip(columns, best, strict=True):
            shown = with_interval(column.value(summary), column.interval(summary))
            mark = ""
            if top is not None and name in top.leaders:
                mark = ' class="tied"' if top.tied else ' class="best"'
            cells.append(f"<td{mark}>{shown}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="verdict"><tr>{head}</tr>{"".join(rows)}</table>'


def at_a_glance(summaries: dict[str, TransportSummary]) -> str:
    """One line per verdict column: the best transport, or the transports tied for best
    (their 95% intervals overlap the best one's: the difference is within the noise)."""
    items = []
    for column, top in zip(VERDICT, best_values(summaries, VERDICT), strict=True):
        if top is None:
            continue
        unit = f" {column.unit}" if column.unit else ""
        word = "lowest" if column.better == "lower" else "highest"
        if top.tied:
            values = [v for n in top.leaders if (v := column.value(summaries[n])) is not None]
            span = f"{number(min(values))}-{number(max(values))}{unit}"
            items.append(
                f"<li>{word} {esc(column.header)}: tied between "
                f"<b>{esc(', '.join(top.leaders))}</b> ({esc(span)}; their 95% intervals "
                "overlap)</li>"
            )
            continue
        leader = summaries[top.leaders[0]]
        items.append(
            f"<li>{word} {esc(column.header)}: <b>{esc(top.leaders[0])}</b> "
            f"({with_interval(top.value, column.interval(leader))}{esc(unit)})</li>"
        )
    return f"<ul>{''.join(items)}</ul>" if items else ""


def metric_rows(summary: TransportSummary) -> dict[str, str]:
    """Every metric of a summary by its field name (distributions: `name n/p50/.../max`),
    shown with its interval where it has one."""
    rows: dict[str, str] = {}
    for f in fields(summary):
        value = getattr(summary, f.name)
        if f.name.endswith("_ci"):
            continue  # shown with its figure
        if isinstance(value, Distribution):
            for stat in ("n", "p50", "p90", "p99", "mean", "max"):
                figure = getattr(value, stat)
                rows[f"{f.name} {stat}"] = with_interval(figure, value.interval(stat))
        else:
            rows[f.name] = with_interval(value, summary.interval(f.name))
    return rows


def all_metrics_table(summaries: dict[str, TransportSummary]) -> str:
    names = list(summaries)
    per = {name: metric_rows(s) for name, s in summaries.items()}
    keys = list(per[names[0]]) if names else []
    head = '<th class="name">metric</th>' + "".join(transport_cell(n) for n in names)
    head = head.replace("<td", "<th").replace("</td>", "</th>")
    rows = [
        f'<tr><td class="name"><code>{esc(key)}</code></td>'
        + "".join(f"<td>{per[n][key]}</td>" for n in names)
        + "</tr>"
        for key in keys
    ]
    return f'<table class="metrics"><tr>{head}</tr>{"".join(rows)}</table>'


def key_value_table(items: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for key, value in data.items():
        if isinstance(value, dict) and key != "packages":
            items.extend(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            items.append((f"{prefix}{key}", ", ".join(str(v) for v in value)))
        elif value is not None and value != "":
            items.append((f"{prefix}{key}", value))
    return items


def environment_items(meta: dict[str, Any]) -> list[tuple[str, object]]:
    items = [(k, v) for k, v in flatten(meta) if k not in ("packages", "argv")]
    if meta.get("argv") is not None:
        items.append(("command", "bench.py " + " ".join(meta["argv"])))
    packages = meta.get("packages") or {}
    if packages:
        items.append(("packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)))
    return items


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def figure(chart: DrawnChart) -> str:
    width, height = png_size(chart.png)
    shown_w, shown_h = round(width * 100 / PNG_DPI), round(height * 100 / PNG_DPI)
    data = base64.b64encode(chart.png.read_bytes()).decode("ascii")
    return (
        f'<figure id="{esc(chart.stem)}"><img src="data:image/png;base64,{data}" '
        f'width="{shown_w}" height="{shown_h}" alt="{esc(chart.title)}">'
        f"<figcaption><b>{esc(chart.title)}.</b> {esc(chart.caption)} "
        f"<i>Also in the run folder as {esc(chart.png.name)} and {esc(chart.svg.name)}.</i>"
        "</figcaption></figure>"
    )


def _inline(text: str) -> str:
    """Escaped text with the docstrings' `code` and *emphasis* marked up."""
    marked = re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))
    return re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", marked)


def definitions(doc: str | None = metrics.__doc__) -> str:
    """The metric definitions, rendered from `harness.analyse.metrics`' docstring: its bullet
    list becomes a definition list (term before the first colon), other paragraphs stay
    paragraphs. The docstring's first line, about the code itself, is left out."""
    blocks = [b for b in (doc or "").strip().split("\n\n")[1:] if b.strip()]
    parts = []
    for block in blocks:
        lines = block.splitlines()
        if not lines[0].startswith("- "):
            parts.append(f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>")
            continue
        items: list[str] = []
        for line in lines:
            if line.startswith("- "):
                items.append(line[2:].strip())
            else:
                items[-1] += " " + line.strip()
        entries = []
        for item in items:
            term, sep, text = item.partition(": ")
            if not sep:
                term, text = item, ""
            entries.append(f"<dt>{_inline(term)}</dt><dd>{_inline(text)}</dd>")
        parts.append(f'<dl class="defs">{"".join(entries)}</dl>')
    return "".join(parts)


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def point_heading(run: RunResult, point: Point) -> str:
    return "" if point.value is None else f"{run.sweep_axis} = {point.value}"


def render_report(run: RunResult, charts: Sequence[DrawnChart], run_dir: Path) -> str:
    scenario = run.scenario
    name = scenario.get("name", "run")
    shown = representative(run)
    body = [f"<h1>tokenwire report: {esc(name)}</h1>"]
    lead = esc(scenario.get("description") or "")
    lines = "<br>".join(esc(line) for line in describe(run, None).splitlines())
    body.append(f'<p class="lead">{lead}<br>{lines}<br>run folder <code>{esc(run_dir)}</code>')
    body.append(f", started {esc(run.metadata.get('started_utc', '?'))}</p>")
    stability = run.metadata.get("stability") or {}
    if stability.get("busy"):
        body.append(
            f'<p class="warning"><b>The machine was busy during this run:</b> '
            f"{esc(stability.get('why'))}. Its timing figures carry that noise: run it "
            "again on a quiet machine.</p>"
        )

    body.append("<h2>Verdict</h2>")
    body.append(
        "<p>Lower is better in every column; the best value of each column is highlighted "
        "(no highlight when all transports are equal). Times in milliseconds.</p>"
    )
    if run.is_sweep:
        body.append(f"<p>At a glance, at {esc(point_heading(run, shown))}:</p>")
        body.append(at_a_glance(shown.summaries))
        for point in run.points:
            body.append(f"<h3>{esc(point_heading(run, point))}</h3>")
            body.append(verdict_table(point.summaries))
    else:
        body.append(verdict_table(shown.summaries))
        body.append(at_a_glance(shown.summaries))

    body.append(rounds_section(run))
    body.append(loss_section(run))
    body.append(
        html_section([(point_heading(run, p), point_conversations(p.phases)) for p in run.points])
    )

    faulted = [p for p in run.points if has_faults(p.summaries)]
    if faulted:
        body.append("<h2>Faults</h2>")
        body.append(
            "<p>Connections dropped on purpose (scenario <code>[faults]</code>): each drop "
            "is resumed at once (SSE as EventSource reconnects, with Last-Event-ID; chunked "
            "and WebSocket by stream id and next index; polling polls again); recovery is the "
            "drop to the next token's arrival. A stream left for good is cancelled by the "
            "server one resume grace later; <i>beyond the grace</i> is how late that came. "
            "Polled streams have no connection to drop: the server cancels them only after "
            "its idle timeout, beyond this run's patience (shown as –).</p>"
        )
        for point in faulted:
            if run.is_sweep:
                body.append(f"<h3>{esc(point_heading(run, point))}</h3>")
            body.append(verdict_table(point.summaries, FAULTS))

    troubled = [(point, rows) for point in run.points if (rows := point_problems(point))]
    if troubled:
        body.append("<h2>Upstream problems</h2>")
        body.append(
            "<p>What the relay's source and <code>direct</code> found wrong with the live "
            "upstream's streams, with the codes <code>bench.py probe</code> reports "
            "(<code>wire/problems.py</code>). A <i>problem</i> failed the streams that showed "
            "it (each transport relays it as a failed stream); a <i>warning</i> did not.</p>"
        )
        for point, rows in troubled:
            if run.is_sweep:
                body.append(f"<h3>{esc(point_heading(run, point))}</h3>")
            body.append(problems_table(rows))

    body.append("<h2>Charts</h2>")
    if run.is_sweep:
        body.append(
            f"<p>Sweep charts cover every point; the other charts show one point, "
            f"{esc(point_heading(run, shown))}.</p>"
        )
    sweep_first = sorted(charts, key=lambda c: not c.stem.startswith("sweep_"))
    body.extend(figure(chart) for chart in sweep_first)

    body.append("<h2>Every metric</h2>")
    for point in run.points:
        where = point_heading(run, point)
        label = f"all metrics, {where}" if where else "all metrics"
        body.append(f"<details><summary>{esc(label)}</summary>")
        body.append(all_metrics_table(point.summaries) + "</details>")

    body.append("<h2>Scenario</h2>")
    body.append(key_value_table(flatten(scenario)))
    body.append("<h2>Environment</h2>")
    body.append(key_value_table(environment_items(run.metadata)))
    body.append("<h2>Metric definitions</h2>")
    body.append(definitions())
    return page(f"tokenwire report: {name}", "".join(body))


def load_run_dir(path: Path) -> tuple[Path, RunResult]:
    """A run folder (or its results.json) and its saved results; anything unreadable is a
    `ResultsError` naming the path."""
    run_dir = path.parent if path.is_file() else path
    if not run_dir.is_dir():
        raise ResultsError(f"{path} is not a run folder (it does not exist)")
    try:
        return run_dir, load_run(run_dir)
    except ResultsError:
        raise
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsError(f"{path}: results.json is malformed ({exc!r})") from None


def write_report(run: RunResult, run_dir: Path) -> Path:
    """Draw every chart into `run_dir` and write `run_dir/report.html`."""
    charts = draw_run(run, run_dir)
    path = run_dir / REPORT_NAME
    path.write_text(render_report(run, charts, run_dir), encoding="utf-8")
    return path
