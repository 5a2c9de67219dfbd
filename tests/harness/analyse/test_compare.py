"""Comparing saved runs: differences and ratios per transport, overlaid charts, one file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import TRANSPORT_NAMES
from synthetic_runs import assert_valid_images, synthetic_run, synthetic_sweep

from bench import main
from harness.analyse import compare
from harness.analyse.results import save_run
from harness.present.plots import CHARTS, charts_for


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`bench.py ARGS` in this process (no interpreter start-up): status, stdout, stderr."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_compare_command_writes_one_file_with_ratios_and_overlays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after, out = tmp_path / "before", tmp_path / "after", tmp_path / "cmp"
    save_run(synthetic_run(), before)
    save_run(synthetic_run(load=3.0), after)  # every transport adds three times the delay
    status, stdout, stderr = bench(capsys, "compare", str(before), str(after), "--out", str(out))
    assert status == 0, stderr
    page = out / "compare.html"
    *told, last = stdout.strip().splitlines()
    assert last == str(page)
    assert told and told[0].startswith("after: ") and "regressed" in told[0]
    entries = json.loads((out / "compare.json").read_text())
    keys = {"run", "transport", "metric", "baseline", "value", "difference", "interval"}
    assert all(keys | {"verdict", "basis", "level", "point"} == set(e) for e in entries)
    added = [e for e in entries if e["metric"] == "added_delay_ms.p50"]
    assert {e["transport"] for e in added} == set(TRANSPORT_NAMES)
    for entry in added:  # the push transports: three times the delay, beyond any noise
        lo, hi = entry["interval"]
        assert lo <= entry["difference"] <= hi, entry
        if entry["value"] > 2 * entry["baseline"]:
            assert entry["verdict"] == "regressed" and lo > 0, entry
    assert sum(e["value"] > 2 * e["baseline"] for e in added) >= 3
    text = page.read_text(encoding="utf-8")
    assert "Baseline: <b>before</b>" in text and "Δ after − base" in text
    for transport in TRANSPORT_NAMES:
        assert f"</span>{transport}</td>" in text, transport
    for column in compare.COLUMNS:
        assert compare.esc(column.header) in text, column.header
    assert '<td class="worse">3.00×</td>' in text  # added delay p50: three times worse
    per_point = [c for c in CHARTS.values() if c.every_run]
    for chart in per_point:
        assert f'<figure id="{chart.stem}">' in text
    assert not re.search(r'(?:src|href)="(?!data:image/png;base64,)', text)
    assert_valid_images([out / f"{c.stem}.{ext}" for c in per_point for ext in ("png", "svg")])


def test_sweeps_of_one_axis_are_compared_point_by_point() -> None:
    runs = compare.labelled(
        [
            (Path("results/a"), synthetic_sweep("concurrency", [1, 4, 16])),
            (Path("elsewhere/a"), synthetic_sweep("concurrency", [4, 16, 64], load=2.0)),
        ]
    )
    assert [r.label for r in runs] == ["a", "a #2"]
    tables = compare.matched_points(runs)
    assert [heading for heading, _ in tables] == ["concurrency = 4", "concurrency = 16"]
    subjects = compare.subjects(runs)
    assert [s.point.value for s in subjects] == [4, 4]
    assert {c.stem for c in charts_for([r.run for r in runs])} >= {
        "sweep_concurrency_latency",
        "sweep_concurrency_throughput",
    }
    text = compare.render_comparison(runs, [])
    assert text.count('<table class="compare">') == 2
    assert "sweep.values" in text  # the scenario settings that differ are listed


def test_a_plain_run_and_a_sweep_compare_at_the_sweeps_representative_point() -> None:
    runs = compare.labelled(
        [(Path("plain"), synthetic_run()), (Path("sweep"), synthetic_sweep("concurrency", [1, 4]))]
    )
    ((heading, points),) = compare.matched_points(runs)
    assert heading == "" and points[1].value == 1
    assert not [c for c in charts_for([r.run for r in runs]) if c.sweep_axis]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compare", "one/run"], "compare needs at least two run folders"),
        (["compare", ".", "no/such/run"], "no results.json in ."),
        (["compare", "no/such/run", "."], "no/such/run is not a run folder"),
    ],
)
def test_compare_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    status, _, stderr = bench(capsys, *args)
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], stderr
