"""`bench.py capacity` as a user runs it: bad flags exit 2 with one line naming the fix;
a tiny search end to end writes its JSON, chart and page."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support import bench

from bench import main
from harness.analyse.results import load_run

BAD_FLAGS = [
    (["--start", "0"], "must be a positive integer, got 0"),
    (["--start", "500", "--max", "400"], "--start 500 is above --max 400: give a --start at most"),
    (["--max-probes", "100"], "at most 30 probes per transport, got 100"),
    (["--streams-per-probe", "0.5"], "must be at least 1, got 0.5"),
    (["--slo-ttft-factor", "0.9"], "must be at least 1, got 0.9"),
    (["--slo-added-p99-ms", "0"], "must be a positive number"),
    (["--slo-lost", "-1"], "must be 0 or more, got -1"),
    (["--time-budget-s", "soon"], "expected a positive number, got 'soon'"),
    (["--transports", "pigeon"], "unknown transport(s) pigeon; allowed: all, short_poll"),
    (["--requests", "5"], "unrecognized arguments: --requests"),
    (["--path", "loopback,nginx"], "capacity searches concurrency itself: drop the sweep"),
    (
        ["--source", "openai", "--base-url", "http://127.0.0.1:1/v1", "--model", "m"],
        "capacity needs a planned source (the mock, or a trace",
    ),
]


@pytest.mark.parametrize(("args", "needle"), BAD_FLAGS, ids=lambda v: " ".join(v))
def test_bad_flags_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(["capacity", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert needle in lines[0]


def test_a_scenario_the_search_cannot_use_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    scenario = tmp_path / "browser.toml"
    scenario.write_text('client = "browser"\ntransports = "sse"\n')
    assert main(["capacity", "--scenario", str(scenario)]) == 2
    assert "capacity measures with the Python clients" in capsys.readouterr().err


# A source fast enough that a probe takes a fraction of a second, and limits no machine
# misses, so that the outcome is fixed: these test what the command does, not timings.
TINY = (
    "--preset", "chat",
    "--ttft-ms", "5",
    "--tokens-per-s", "500",
    "--tokens-per-response", "8",
    "--warmup", "1",
    "--unloaded-streams", "3",
    "--slo-added-p99-ms", "5000",
    "--slo-gap-error-p99-ms", "5000",
    "--slo-ttft-factor", "100",
)  # fmt: skip


def test_a_tiny_search_writes_json_chart_and_page(tmp_path: Path) -> None:
    out = tmp_path / "cap"
    done = bench(
        "capacity", "--transports", "sse", *TINY,
        "--start", "2", "--max", "2", "--max-probes", "2", "--out", str(out),
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = orjson.loads((out / "capacity.json").read_bytes())
    (sse,) = saved["cells"]
    assert (sse["transport"], sse["stack"], sse["thread_limit"]) == ("sse", "fastapi@uvicorn", None)
    assert sse["capacity"] == 2 and sse["stopped"] == "max" and sse["limiting"] is None
    assert [(p["role"], p["concurrency"], p["streams"]) for p in sse["probes"]] == [
        ("unloaded", 1, 3),
        ("search", 2, 4),
    ]
    assert all(p["passed"] and p["server_peak_rss_bytes"] > 10 * 2**20 for p in sse["probes"])
    assert saved["slo"]["ttft_factor"] == 100 and saved["search"]["maximum"] == 2
    for name in ("capacity.png", "capacity.svg", "capacity.html"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "probes" / "sse-c2" / "server.log").exists()  # a fresh server per probe
    assert "capacity within the SLO" in done.stdout and "≥ 2" in done.stdout


@pytest.mark.slow
def test_a_search_over_two_transports_end_to_end(tmp_path: Path) -> None:
    """The default SLO on a small config: whatever this machine's load makes of it, every
    transport gets a number, the search stays in its bounds, and the probes are saved."""
    out = tmp_path / "cap"
    done = bench(
        "capacity", "--transports", "sse,short_poll",
        "--preset", "chat", "--ttft-ms", "20", "--tokens-per-s", "400",
        "--tokens-per-response", "16", "--poll-interval-ms", "20", "--unloaded-streams", "4",
        "--start", "2", "--max", "8", "--max-probes", "3", "--keep-probes", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    saved = orjson.loads((out / "capacity.json").read_bytes())
    assert [c["transport"] for c in saved["cells"]] == ["sse", "short_poll"]
    for result in saved["cells"]:
        name = result["transport"]
        searched = [p for p in result["probes"] if p["role"] == "search"]
        counted = [p for p in searched if not p["superseded"]]
        assert len(counted) <= 3 and all(1 <= p["concurrency"] <= 8 for p in searched)
        assert len(result["probes"]) <= 2 * (1 + 3)  # each at most once re-run
        assert result["capacity"] in {0, 1, 2, 3, 4, 5, 6, 7, 8}, name
        assert result["stopped"] in {"bracketed", "max", "probes", "time", "unloaded"}
        for probe in result["probes"]:
            label = f"{name}-c{probe['concurrency']}{'-rerun' if probe['rerun'] else ''}"
            run = load_run(out / "probes" / label)  # --keep-probes: every raw record
            assert len(run.phases[name].requests) == probe["streams"]
    assert saved["cells"][1]["design_delay_ms"] == 20
    page = (out / "capacity.html").read_text(encoding="utf-8")
    assert "short_poll" in page and "<h2>Probes</h2>" in page
