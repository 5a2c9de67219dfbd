"""A comparison of several runs (before/after a change, two machines): `write_comparison`.

The first run is the baseline. Per transport, every verdict metric and the delivered
throughput of each run, its difference from the baseline and the ratio to it; charts with
the runs overlaid (colour: transport; line style, marker or hatch: run). Sweeps of one
shared axis are compared point by point (the values they share) and their sweep charts
overlaid; otherwise each run contributes its representative point. One self-contained HTML
file, like the run report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.analyse.metrics import TransportSummary
from harness.analyse.results import Point, RunResult
from harness.analyse.significance import Change, changes
from harness.measure.records import SweepValue
from harness.measure.server_process import PROJECT_ROOT
from harness.present.plots import Subject, draw_charts, representative, transports_of
from harness.present.report import (
    VERDICT,
    Column,
    definitions,
    esc,
    figure,
    flatten,
    key_value_table,
    number,
    page,
    transport_cell,
)

COMPARE_NAME = "compare.html"
COMPARE_JSON = "compare.json"
COLUMNS: tuple[Column, ...] = (
    *VERDICT,
    Column(
        "delivered tokens/s (all streams)",
        "tok/s",
        lambda s: s.aggregate_tokens_per_s,
        "higher",
        "aggregate_tokens_per_s",
    ),
)
NOTABLE = 0.05  # a ratio this far from 1 is coloured as better or worse


@dataclass(frozen=True, slots=True)
class Compared:
    """One run in a comparison: its label (the folder name, made unique) and results."""

    label: str
    run_dir: Path
    run: RunResult


def labelled(runs: Sequence[tuple[Path, RunResult]]) -> list[Compared]:
    seen: dict[str, int] = {}
    out = []
    for run_dir, run in runs:
        name = run_dir.resolve().name or str(run_dir)
        seen[name] = seen.get(name, 0) + 1
        label = name if seen[name] == 1 else f"{name} #{seen[name]}"
        out.append(Compared(label, run_dir, run))
    return out


def default_out_dir(now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return PROJECT_ROOT / "results" / f"{stamp}-compare"


def shared_axis(runs: Sequence[Compared]) -> str | None:
    """The sweep axis every run sweeps, if they all sweep the same one."""
    axes = {c.run.sweep_axis for c in runs}
    return axes.pop() if len(axes) == 1 else None


def _point_at(run: RunResult, value: SweepValue | None) -> Point | None:
    return next((p for p in run.points if p.value == value), None)


def matched_points(runs: Sequence[Compared]) -> list[tuple[str, list[Point]]]:
    """(heading, one point per run) for each comparison table."""
    if shared_axis(runs) is not None and runs[0].run.is_sweep:
        tables: list[tuple[str, list[Point]]] = []
        for point in runs[0].run.points:
            others = [p for p in (_point_at(c.run, point.value) for c in runs) if p is not None]
            if len(others) == len(runs):
                tables.append((f"{runs[0].run.sweep_axis} = {point.value}", others))
        if tables:
            return tables
    return [("", [representative(c.run) for c in runs])]


def subjects(runs: Sequence[Compared]) -> list[Subject]:
    """The runs as chart subjects, at the same sweep value when they share one."""
    first = representative(runs[0].run)
    chosen = []
    for c in runs:
        same = _point_at(c.run, first.value) if shared_axis(runs) else None
        chosen.append(Subject(c.label, c.run, same or representative(c.run)))
    return chosen


def _ratio_class(column: Column, ratio: float | None) -> str:
    if ratio is None or abs(ratio - 1) < NOTABLE:
        return ""
    improved = ratio < 1 if column.better == "lower" else ratio > 1
    return ' class="better"' if improved else ' class="worse"'


def _value(summary: TransportSummary | None, column: Column) -> float | None:
    return None if summary is None else column.value(summary)


def point_changes(runs: Sequence[Compared], points: Sequence[Point]) -> list[Change]:
    """Every judged figure of every later run against the baseline, at these points."""
    found = []
    for c, point in zip(runs[1:], points[1:], strict=True):
        found += changes(c.label, points[0].phases, point.phases)
    return found


def _change_cell(judged: Change | None) -> str:
    if judged is None or judged.interval is None or judged.verdict is None:
        return "<td>–</td>"
    css = {"improved": ' class="better"', "regressed": ' class="worse"'}.get(judged.verdict, "")
    span = f"[{number(judged.interval.lo)}, {number(judged.interval.hi)}]"
    return f'<td{css}>{esc(judged.verdict)} <span class="ci">{esc(span)}</span></td>'


def comparison_table(
    runs: Sequence[Compared], points: Sequence[Point], judged: Sequence[Change] = ()
) -> str:
    """Rows: transport x metric. Columns: each run's value; for each later run, its
    difference from the baseline (first run), the ratio to it, and whether the difference
    is beyond the noise (its interval at the family's level, `harness.analyse.significance`)."""
    by_key = {(j.run, j.transport, j.metric): j for j in judged}
    head = ['<th class="name">transport</th><th class="name">metric</th>']
    head.append(f"<th>{esc(runs[0].label)}</th>")
    for c in runs[1:]:
        label = esc(c.label)
        head.append(
            f"<th>{label}</th><th>Δ {label} − base</th><th>{label} / base</th>"
            f"<th>{label}: change (Δ interval)</th>"
        )
    rows = []
    names = transports_of([Subject(c.label, c.run, p) for c, p in zip(runs, points, strict=True)])
    for name in names:
        for k, column in enumerate(COLUMNS):
            base = _value(points[0].summaries.get(name), column)
            unit = f" ({column.unit})" if column.unit else ""
            cells = [transport_cell(name) if k == 0 else '<td class="name"></td>']
            cells.append(f'<td class="name">{esc(column.header + unit)}</td>')
            cells.append(f"<td>{number(base)}</td>")
            for c, point in zip(runs[1:], points[1:], strict=True):
                value = _value(point.summaries.get(name), column)
                diff = None if value is None or base is None else value - base
                ratio = None if value is None or not base else value / base
                sign = "+" if diff is not None and diff > 0 else ""
                cells.append(f"<td>{number(value)}</td><td>{sign}{number(diff)}</td>")
                shown = "–" if ratio is None else f"{ratio:.2f}×"
                cells.append(f"<td{_ratio_class(column, ratio)}>{shown}</td>")
                cells.append(_change_cell(by_key.get((c.label, name, column.figure or ""))))
            rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="compare"><tr>{"".join(head)}</tr>{"".join(rows)}</table>'


def runs_table(runs: Sequence[Compared]) -> str:
    keys = ("started_utc", "git_commit", "git_dirty", "python", "platform", "cpu_count")
    head = '<th class="name">run</th><th class="name">folder</th><th class="name">scenario</th>'
    head += "".join(f'<th class="name">{esc(k)}</th>' for k in keys)
    rows = []
    for c in runs:
        cells = [esc(c.label), f"<code>{esc(c.run_dir)}</code>", esc(c.run.scenario.get("name"))]
        meta = {**c.run.metadata, "git_commit": str(c.run.metadata.get("git_commit"))[:12]}
        cells += [esc(meta.get(k, "–")) for k in keys]
        rows.append("<tr>" + "".join(f'<td class="name">{v}</td>' for v in cells) + "</tr>")
    return f'<table class="wide"><tr>{head}</tr>{"".join(rows)}</table>'


def scenario_differences(runs: Sequence[Compared]) -> str:
    flat = [dict(flatten(c.run.scenario)) for c in runs]
    keys = [
        k
        for k in dict.fromkeys(k for f in flat for k in f)
        if len({repr(f.get(k)) for f in flat}) > 1
    ]
    if not keys:
        return "<p>The runs share the same scenario settings.</p>"
    head = '<th class="name">setting</th>' + "".join(
        f'<th class="name">{esc(c.label)}</th>' for c in runs
    )
    rows = "".join(
        f'<tr><td class="name">{esc(k)}</td>'
        + "".join(f'<td class="name">{esc(f.get(k, "–"))}</td>' for f in flat)
        + "</tr>"
        for k in keys
    )
    return f"<p>Scenario settings that differ:</p><table><tr>{head}</tr>{rows}</table>"


def render_comparison(runs: Sequence[Compared], charts_html: Sequence[str]) -> str:
    labels = ", ".join(c.label for c in runs)
    body = [f"<h1>tokenwire comparison: {esc(labels)}</h1>"]
    body.append(
        f'<p class="lead">Baseline: <b>{esc(runs[0].label)}</b>. Δ is a run minus the '
        "baseline, the ratio a run over the baseline; green marks a change of more than "
        f"{NOTABLE:.0%} for the better, red for the worse (lower is better except delivered "
        "tokens/s). The change column says whether Δ is beyond the noise: its interval "
        "excludes 0 (improved, regressed) or holds it (no change). The interval is over the "
        "runs' rounds when either was repeated (each round on a server and clients of its "
        "own), else over each run's streams resampled, which misses what varies between runs. "
        "A run's figures are judged together, holding the false discovery rate at 5% "
        "(Benjamini-Hochberg): each interval is at the level that agrees with the verdicts, "
        "1 - R x 0.05 / m for R changes among m figures (at least one), so a run that changed "
        "nothing names no change 95% of the time; compare.json lists every judged figure with "
        "its level and basis.</p>"
    )
    body.append("<h2>Runs</h2>" + runs_table(runs) + scenario_differences(runs))
    body.append("<h2>Differences per transport</h2>")
    shown = subjects(runs)[0].point
    for heading, points in matched_points(runs):
        table = comparison_table(runs, points, point_changes(runs, points))
        if not heading:
            body.append(table)
            continue
        opened = " open" if points[0] is shown else ""
        body.append(f"<details{opened}><summary>{esc(heading)}</summary>{table}</details>")
    body.append("<h2>Charts, runs overlaid</h2>")
    body.extend(charts_html)
    body.append("<h2>Metric definitions</h2>" + definitions())
    for c in runs:
        body.append(f"<details><summary>scenario of {esc(c.label)}</summary>")
        body.append(key_value_table(flatten(c.run.scenario)) + "</details>")
    return page(f"tokenwire comparison: {labels}", "".join(body))


def comparison_entries(runs: Sequence[Compared]) -> list[dict[str, Any]]:
    """`compare.json`: one entry per later run, transport and judged figure (at each
    shared sweep point, `point` its value; null for plain runs)."""
    entries = []
    for heading, points in matched_points(runs):
        value = points[0].value if heading else None
        for judged in point_changes(runs, points):
            entries.append({**judged.to_json(), "point": value})
    return entries


def write_comparison(runs: Sequence[tuple[Path, RunResult]], out_dir: Path) -> Path:
    """Draw the overlaid charts into `out_dir` and write `out_dir/compare.html` and
    `out_dir/compare.json`."""
    compared = labelled(runs)
    charts = draw_charts(subjects(compared), out_dir)
    path = out_dir / COMPARE_NAME
    path.write_text(render_comparison(compared, [figure(c) for c in charts]), encoding="utf-8")
    entries = comparison_entries(compared)
    (out_dir / COMPARE_JSON).write_bytes(orjson.dumps(entries, option=orjson.OPT_INDENT_2))
    return path


def tally(entries: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per compared run, how many figures got each verdict."""
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        verdict = entry["verdict"] or "no interval"
        per_run = counts.setdefault(entry["run"], {})
        per_run[verdict] = per_run.get(verdict, 0) + 1
    return counts
