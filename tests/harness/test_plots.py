"""Charts come from saved results alone and are real image files."""

from __future__ import annotations

from pathlib import Path

from harness.plots import CHARTS, draw_all
from harness.records import PhaseRecord, RequestRecord
from harness.results import RunResult, load_run, save_run

MS = 1_000_000


def synthetic_run() -> RunResult:
    phases = {}
    for k, name in enumerate(("short_poll", "sse", "websocket")):
        requests = [
            RequestRecord(
                transport=name,
                index=j,
                seed=j,
                stream_id=f"{name}-{j}",
                scheduled_ns=0,
                end_ns=(300 + j) * MS,
                token_index=[0, 1, 2],
                recv_ns=[(100 + j + 10 * k) * MS, (120 + j) * MS, (140 + j) * MS],
                emit_ns=[(100 + j) * MS, (115 + j) * MS, (139 + j) * MS],
                token_bytes=[3, 4, 5],
                chunk_sizes=[1, 1, 1],
                source_tokens=3,
                bytes_sent=100,
                bytes_received=300,
                requests=1,
            )
            for j in range(5)
        ]
        phases[name] = PhaseRecord(name, 0, 1000 * MS, 0.01, 0.02, requests=requests)
    return RunResult.single(
        metadata={"python": "3"},
        scenario={"name": "synthetic", "requests": 5, "concurrency": 1, "framing": "json",
                  "source": {"preset": "chat"}},
        phases=phases,
    )  # fmt: skip


def test_every_chart_is_written_from_saved_results(tmp_path: Path) -> None:
    save_run(synthetic_run(), tmp_path)
    paths = draw_all(load_run(tmp_path), tmp_path / "charts")
    assert {p.stem for p in paths} == set(CHARTS)
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert b"<svg" in data[:1000]
            for transport in ("short_poll", "sse", "websocket"):
                assert transport.encode() in data


def test_results_round_trip(tmp_path: Path) -> None:
    run = synthetic_run()
    save_run(run, tmp_path)
    loaded = load_run(tmp_path)
    assert loaded.phases == run.phases
    assert loaded.summaries == run.summaries
    assert (tmp_path / "summary.csv").read_text().count("\n") == 4
