"""Every chart, in report order: the per-point charts, then the sweep charts of each axis."""

from __future__ import annotations

from collections.abc import Sequence

from harness.analyse.results import RunResult
from harness.present.plots.batch_sweep import batch_window
from harness.present.plots.category_sweep import side_by_side
from harness.present.plots.chart import Chart
from harness.present.plots.concurrency_sweep import concurrency_latency, concurrency_throughput
from harness.present.plots.conversation_time import conversation_time, has_conversations
from harness.present.plots.cost_bars import cost, cpu
from harness.present.plots.delay_violins import added_delay
from harness.present.plots.latency_cdfs import itl_cdf, ttft_cdf
from harness.present.plots.loss_sweep import has_loss_sweep, loss_sweep
from harness.present.plots.poll_sweep import poll_interval
from harness.present.plots.race_timeline import race
from harness.present.plots.stack_sweep import stack_costs

CHARTS: dict[str, Chart] = {
    chart.stem: chart
    for chart in (
        Chart("ttft_cdf", "Time to first token (CDF)", ttft_cdf),
        Chart("added_delay", "Transport-added delay per token", added_delay),
        Chart("itl_cdf", "Inter-token gaps (CDF), transports vs the source", itl_cdf),
        Chart("race", "Race: one request's tokens arriving over time", race),
        Chart("cost", "Cost per token: bytes on the wire and HTTP requests", cost),
        Chart("cpu", "CPU per 1,000 tokens, server and client", cpu),
        Chart(
            "conversation_time",
            "Conversations: time by turn, and each turn's overhead",
            conversation_time,
            needs=has_conversations,
        ),
        Chart(
            "sweep_concurrency_latency",
            "Latency against concurrent streams",
            concurrency_latency,
            "concurrency",
        ),
        Chart(
            "sweep_concurrency_throughput",
            "Delivered tokens per second against demand",
            concurrency_throughput,
            "concurrency",
        ),
        Chart(
            "sweep_poll_interval",
            "Polling trade-off: added delay against requests per second",
            poll_interval,
            "poll_interval_ms",
        ),
        Chart(
            "sweep_batch_ms",
            "Webhook trade-off: added delay against requests per stream",
            batch_window,
            "batch_ms",
        ),
        Chart("sweep_path", "Transports across paths", side_by_side, "path"),
        Chart(
            "sweep_path_loss",
            "Added delay against packet loss",
            loss_sweep,
            "path",
            needs=has_loss_sweep,
        ),
        Chart("sweep_framing", "Transports across framings", side_by_side, "framing"),
        Chart("sweep_client", "Python clients against a real browser", side_by_side, "client"),
        Chart(
            "sweep_stack",
            "Server stacks: server CPU and bytes per token",
            stack_costs,
            "stack",
        ),
        Chart("sweep_stack_latency", "Transports across server stacks", side_by_side, "stack"),
        Chart(
            "sweep_streaming_headers",
            "Transports with and without streaming headers",
            side_by_side,
            "streaming_headers",
        ),
    )
}


def charts_for(runs: Sequence[RunResult]) -> list[Chart]:
    """The charts that apply: every per-point chart, and the sweep charts of a shared axis."""
    return [chart for chart in CHARTS.values() if chart.applies_to(runs)]
