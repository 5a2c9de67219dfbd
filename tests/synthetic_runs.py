"""Synthetic saved runs (plain and sweep) for the chart, report and compare tests, and an
image validity check."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
from support import TRANSPORT_NAMES

from harness.analyse.results import Point, RunResult
from harness.measure.records import PhaseRecord, RequestRecord
from harness.present.plots import CHARTS
from transports import TRANSPORTS, Kind

MS = 1_000_000
TOKENS = 12
STREAMS = 6
PER_POINT = {c.stem for c in CHARTS.values() if c.every_run}


def synthetic_phase(
    name: str,
    *,
    interval_ms: float = 100,
    load: float = 1.0,
    sweep_value: int | float | str | None = None,
) -> PhaseRecord:
    """Streams whose source emits a token every ~10 ms after ~50 ms; push transports add
    well under a millisecond (times `load`), short polling waits for its next poll."""
    rng = np.random.default_rng(len(name))
    requests = []
    for j in range(STREAMS):
        scheduled = j * 400 * MS
        emit = scheduled + np.cumsum(np.r_[50, rng.uniform(5, 15, TOKENS - 1)]) * MS
        if name == "short_poll":
            polls = np.ceil((emit - scheduled) / (interval_ms * MS)) * interval_ms * MS
            recv = scheduled + polls + 0.3 * MS * load
            requests_made = int(np.ceil((recv[-1] - scheduled) / (interval_ms * MS))) + 1
        elif name == "long_poll":
            recv = emit + rng.uniform(0.5, 3, TOKENS) * MS * load
            requests_made = TOKENS + 1
        elif TRANSPORTS.get(name).kind is Kind.CALLBACK:  # a POST per token, and the terminal
            recv = emit + rng.uniform(0.8, 2.5, TOKENS) * MS * load
            requests_made = 1 + TOKENS + 1  # with the subscription
        else:
            recv = emit + rng.uniform(0.1, 0.6, TOKENS) * MS * load
            requests_made = 1
        recv = np.maximum.accumulate(recv).astype(np.int64)
        requests.append(
            RequestRecord(
                transport=name,
                index=j,
                seed=j,
                stream_id=f"{name}-{j}",
                scheduled_ns=scheduled,
                end_ns=int(recv[-1]) + MS,
                token_index=list(range(TOKENS)),
                recv_ns=[int(r) for r in recv],
                emit_ns=[int(e) for e in emit],
                token_bytes=[4] * TOKENS,
                chunk_sizes=[1] * TOKENS,
                source_tokens=TOKENS,
                bytes_sent=150 * requests_made,
                bytes_received=200 * requests_made + 30 * TOKENS,
                header_bytes=250 * requests_made,
                requests=requests_made,
                sweep_value=sweep_value,
            )
        )
    window = (STREAMS * 400 + 300) * MS
    cpu = {"short_poll": 0.05, "long_poll": 0.08}.get(name, 0.02) * load
    return PhaseRecord(name, 0, window, cpu, cpu * 1.5, sweep_value=sweep_value, requests=requests)


SCENARIO = {
    "name": "synthetic",
    "description": "made-up numbers for tests",
    "transports": list(TRANSPORT_NAMES),
    "requests": STREAMS,
    "concurrency": 1,
    "framing": "json",
    "poll_interval_ms": 100.0,
    "source": {"preset": "chat", "ttft_ms": 50.0},
}
METADATA = {"python": "3.11", "platform": "test", "cpu_count": 2, "started_utc": "then"}


def synthetic_run(load: float = 1.0) -> RunResult:
    phases = {name: synthetic_phase(name, load=load) for name in TRANSPORT_NAMES}
    return RunResult.single(METADATA, dict(SCENARIO), phases)


def synthetic_sweep(axis: str, values: list[int] | list[str], load: float = 1.0) -> RunResult:
    points = []
    for value in values:
        interval = float(value) if axis == "poll_interval_ms" else 100.0
        scale = load * (float(value) if axis == "concurrency" else 1.0)
        phases = {
            name: synthetic_phase(name, interval_ms=interval, load=scale, sweep_value=value)
            for name in TRANSPORT_NAMES
        }
        points.append(Point(value, phases))
    scenario = {**SCENARIO, "name": f"synthetic-{axis}", "sweep": {"axis": axis, "values": values}}
    return RunResult(METADATA, scenario, points, axis)


def assert_valid_images(paths: list[Path], transports: tuple[str, ...] = TRANSPORT_NAMES) -> None:
    for path in paths:
        assert path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path
            height, width, _ = matplotlib.image.imread(path).shape  # decodes every pixel
            assert width > 500 and height > 300, path
        else:
            root = ET.parse(path).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg", path
            text = path.read_text(encoding="utf-8")
            for transport in transports:
                assert transport in text, (path, transport)
