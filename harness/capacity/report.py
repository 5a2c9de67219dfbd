"""What `bench.py capacity` shows: a line per probe while it searches, the capacity table on
the terminal, and `capacity.html`: one self-contained page (the building blocks of
`harness.present.report`) with the table, the chart, every probe and the definitions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from harness import capacity as definitions_source
from harness.capacity.assess import UNLOADED, Probe
from harness.capacity.chart import draw_capacity, source_text
from harness.capacity.figures import CapacityRun, TransportCapacity
from harness.capacity.stack_chart import draw_stack_capacity
from harness.present.plots.chart import DrawnChart
from harness.present.report import (
    definitions,
    environment_items,
    esc,
    figure,
    flatten,
    key_value_table,
    number,
    page,
    transport_cell,
)

REPORT_NAME = "capacity.html"
COLUMNS = (
    "transport",
    "stack",
    "capacity\nstreams",
    "limiting figure\n(at the lowest failing probe)",
    "server cores\nbusy",
    "streams\n/ core",
    "KiB\n/ stream",
    "tok/s at\ncapacity",
    "server CPU ms\n/ 1k tokens",
    "probes\nrun",
    "search",
)
THREADS_COLUMN = "thread limit\n(workers × threads)"  # with a threaded stack in the run


def columns(run: CapacityRun) -> tuple[str, ...]:
    """The table's columns: the thread limit's after the capacity's when a threaded stack
    was searched."""
    if all(c.thread_limit is None for c in run.cells):
        return COLUMNS
    at = COLUMNS.index("capacity\nstreams") + 1
    return (*COLUMNS[:at], THREADS_COLUMN, *COLUMNS[at:])


def thread_limit_cell(result: TransportCapacity) -> str:
    """`8 = 1 × 8`, and `: bound it` when the thread limit bound the capacity (`-`: a stack
    that is not threaded)."""
    if result.thread_limit is None:
        return "-"
    text = f"{result.thread_limit:,} = {result.workers} × {result.threads}"
    return text + (": bound it" if result.bound_by_threads else "")


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def capacity_cell(result: TransportCapacity) -> str:
    """The capacity; `≥ N` when no probe failed (the search stopped before finding a
    limit), so N is a lower bound."""
    bound = "≥ " if result.capacity and result.limiting_concurrency is None else ""
    return f"{bound}{result.capacity:,}"


def memory_cell(result: TransportCapacity) -> str:
    """KiB per stream, ± its standard error when there is one."""
    if result.kib_per_stream is None:
        return "-"
    error = result.kib_per_stream_stderr
    return f"{result.kib_per_stream:,.1f}" + ("" if error is None else f" ± {error:,.1f}")


def limiting_cell(result: TransportCapacity) -> str:
    if result.limiting is None:
        return "none found"
    return f"at {result.limiting_concurrency:,}: {result.limiting}"


def _figure(probe: Probe, name: str) -> str:
    check = probe.verdict.figure(name)
    if check is None or check.value is None:
        return "-"
    return f"{check.value:.0f}" if name == "lost" else f"{check.value:.1f}"


def probe_line(probe: Probe, n: int, name: str | None = None) -> str:
    """One probe as it finishes: its cell (`name`: the transport, and its stack when the
    run has several), where, pass or fail (and what failed), the figures."""
    where = "unloaded" if probe.role == UNLOADED else f"{probe.concurrency:,} in flight"
    verdict = "[green]pass[/]" if probe.passed else f"[red]FAIL[/] {probe.verdict.limiting()}"
    ttft = probe.verdict.figure("ttft_p99_ms")
    ttft_text = "-" if ttft is None or ttft.value is None else f"{ttft.value:.0f}/{ttft.limit:.0f}"
    rss = probe.server_peak_rss_bytes
    return (
        f"  {name or probe.transport:<10} probe {n:>2}  {where:>16}, {probe.streams:,} streams  "
        f"{verdict}  [dim]added p99 {_figure(probe, 'added_delay_p99_ms')} ms · gap p99 "
        f"{_figure(probe, 'source_gap_error_p99_ms')} ms · TTFT p99 {ttft_text} ms · lost "
        f"{_figure(probe, 'lost')} · server {_num(probe.server_cores_busy, 2)} cores, client "
        f"{_num(probe.client_cores_busy, 2)} · peak {_num(None if rss is None else rss / 2**20, 0)}"
        f" MiB · {probe.duration_s:.1f} s[/]"
    )


def capacity_table(run: CapacityRun, title: str) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        caption=f"SLO: {run.slo.text()}. Streams per core: capacity / server cores busy at "
        "it (the server's worker processes included). KiB per stream: slope of the server's "
        "peak memory against concurrency. Thread limit: a threaded stack's workers × threads "
        "(a stream holds a thread); `bound it` when the capacity stopped there.",
        caption_justify="left",
    )
    shown = columns(run)
    for column in shown:
        left = column.startswith(("transport", "stack", "limiting", "search"))
        table.add_column(column, justify="left" if left else "right")
    for r in run.cells:
        cells = [
            r.transport,
            r.stack,
            capacity_cell(r),
            f"[{'red' if r.stopped == 'unloaded' else 'default'}]{limiting_cell(r)}",
            _num(r.server_cores_busy, 2),
            _num(r.streams_per_core, 0),
            memory_cell(r),
            _num(r.tokens_per_s, 0),
            _num(r.server_cpu_ms_per_1k_tokens, 0),
            str(r.probes_run),
            r.reason,
        ]
        if THREADS_COLUMN in shown:
            cells.insert(shown.index(THREADS_COLUMN), thread_limit_cell(r))
        table.add_row(*cells)
    return table


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f'<table class="wide"><tr>{cells}</tr>{body}</table>'


def summary_html(run: CapacityRun) -> str:
    shown = columns(run)
    head = [c.replace("\n", " ") for c in shown]
    rows = []
    for r in run.cells:
        rows.append(
            [
                transport_cell(r.transport),
                f'<td class="name">{esc(r.stack)}</td>',
                f"<td>{esc(capacity_cell(r))}</td>",
                f'<td class="name">{esc(limiting_cell(r))}</td>',
                f"<td>{number(r.server_cores_busy)}</td>",
                f"<td>{number(r.streams_per_core)}</td>",
                f"<td>{esc(memory_cell(r))}</td>",
                *(
                    f"<td>{number(v)}</td>"
                    for v in (r.tokens_per_s, r.server_cpu_ms_per_1k_tokens, r.probes_run)
                ),
                f'<td class="name">{esc(r.reason)}</td>',
            ]
        )
        if THREADS_COLUMN in shown:
            rows[-1].insert(shown.index(THREADS_COLUMN), f"<td>{esc(thread_limit_cell(r))}</td>")
    return _html_table(head, rows)


def probes_html(result: TransportCapacity) -> str:
    head = [
        "#",
        "concurrency",
        "streams",
        "verdict",
        "added delay p99 (ms)",
        "gap error p99 (ms)",
        "TTFT p99 / limit (ms)",
        "lost + failed",
        "server cores",
        "client cores",
        "peak RSS (MiB)",
        "tok/s",
        "wall time (s)",
    ]
    rows = []
    for n, p in enumerate(result.probes, 1):
        ttft = p.verdict.figure("ttft_p99_ms")
        verdict = "pass" if p.passed else f"fail: {p.verdict.limiting()}"
        if p.superseded:
            verdict += " (re-run below)"
        if p.rerun:
            verdict += " (re-run)"
        rss = None if p.server_peak_rss_bytes is None else p.server_peak_rss_bytes / 2**20
        ttft_text = "–" if ttft is None else f"{number(ttft.value)} / {number(ttft.limit)}"
        rows.append(
            [
                f"<td>{n}</td>",
                f"<td>{'1 (unloaded)' if p.role == UNLOADED else number(p.concurrency)}</td>",
                f"<td>{number(p.streams)}</td>",
                f'<td class="name">{esc(verdict)}</td>',
                f"<td>{esc(_figure(p, 'added_delay_p99_ms'))}</td>",
                f"<td>{esc(_figure(p, 'source_gap_error_p99_ms'))}</td>",
                f"<td>{esc(ttft_text)}</td>",
                f"<td>{esc(_figure(p, 'lost'))}</td>",
                f"<td>{number(p.server_cores_busy)}</td>",
                f"<td>{number(p.client_cores_busy)}</td>",
                f"<td>{number(rss)}</td>",
                f"<td>{number(p.tokens_per_s)}</td>",
                f"<td>{number(p.duration_s)}</td>",
            ]
        )
    return _html_table(head, rows)


def render_capacity_report(run: CapacityRun, charts: Sequence[DrawnChart], run_dir: Path) -> str:
    name = run.scenario.get("name", "run")
    body = [f"<h1>tokenwire capacity: {esc(name)}</h1>"]
    body.append(
        '<p class="lead">How many concurrent streams one server core holds over each '
        "transport within the SLO, and what each costs, on the server stacks "
        f"{esc(', '.join(run.stacks))}.<br>{esc(source_text(run.scenario))}"
        f"<br>SLO: {esc(run.slo.text())}<br>run folder <code>{esc(run_dir)}</code>, started "
        f"{esc(run.metadata.get('started_utc', '?'))}</p>"
    )
    body.append("<h2>Capacity</h2>")
    body.append(summary_html(run))
    body.append(
        "<p>Streams per core extrapolates linearly from the load at capacity: a transport "
        "whose server kept well under one core busy there was limited by something else "
        "(the client sharing this machine, the source's timing, the transport's own delay); "
        "compare the client's cores in the probe tables.</p>"
    )
    body.extend(figure(c) for c in charts)
    body.append("<h2>Probes</h2>")
    for result in run.cells:
        body.append(f"<h3>{esc(run.name(result))}</h3>")
        body.append(probes_html(result))
    body.append("<h2>Search</h2>")
    body.append(key_value_table([*run.limits.to_json().items(), *run.settings.items()]))
    body.append("<h2>Scenario</h2>")
    body.append(key_value_table(flatten(run.scenario)))
    body.append("<h2>Environment</h2>")
    body.append(key_value_table(environment_items(run.metadata)))
    body.append("<h2>Definitions</h2>")
    body.append(definitions(definitions_source.__doc__))
    return page(f"tokenwire capacity: {name}", "".join(body))


def write_capacity_report(run: CapacityRun, run_dir: Path) -> Path:
    """Draw the charts into `run_dir` (the stack chart too when the run searched several
    stacks) and write `run_dir/capacity.html`."""
    charts = [draw_capacity(run, run_dir)]
    if len(run.stacks) > 1:
        charts.append(draw_stack_capacity(run, run_dir))
    path = run_dir / REPORT_NAME
    path.write_text(render_capacity_report(run, charts, run_dir), encoding="utf-8")
    return path
