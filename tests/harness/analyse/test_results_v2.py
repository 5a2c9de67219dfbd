"""Version 2 results, whose phases kept a free-form `extra` dict, load as version 3's typed
parts: tests/fixtures/results-v2 (saved by the version 2 code from a real `bench.py run`
with every driver entry: two servers and client processes, an open loop, a fault plan, the
raw client) migrates entry for entry, and its summaries come out as version 2 saved them;
the entries other runs wrote (an interleaved window, a load test, the browser) move too."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import ROOT

from bench import main
from harness.analyse.results import SCHEMA_VERSION, load_run, migrate, save_run
from harness.measure.records import (
    SHARED_CPU,
    BrowserFigures,
    LoadTestSetup,
    PhaseRecord,
    PhaseSetup,
    RawFloor,
    SharedWindow,
)

V2_FIXTURE = ROOT / "tests" / "fixtures" / "results-v2"


def v2_document() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((V2_FIXTURE / "results.json").read_bytes())
    return data


def migrated_phase(extra: dict[str, Any]) -> PhaseRecord:
    """The sse phase of the fixture with `extra` in place of its own, migrated and read."""
    data = v2_document()
    data["transports"]["sse"]["phase"]["extra"] = extra
    return PhaseRecord.from_json(migrate(data)["transports"]["sse"]["phase"])


def test_the_fixture_is_version_2_with_every_driver_entry() -> None:
    data = v2_document()
    assert data["schema_version"] == 2
    extra = data["transports"]["sse"]["phase"]["extra"]
    assert set(extra) == {
        "order",
        "path",
        "server_processes",
        "client_processes",
        "client_cpu_s_per_process",
        "streams_per_server",
        "load",
        "rate",
        "arrivals",
        "raw_client",
        "resume_grace_s",
        "path_parameters",
    }


def test_version_2_entries_move_to_the_typed_setup() -> None:
    data = v2_document()
    extras = {name: e["phase"]["extra"] for name, e in data["transports"].items()}
    run = load_run(V2_FIXTURE)
    for name, phase in run.phases.items():
        extra = extras[name]
        assert phase.setup == PhaseSetup(
            order="sequential",
            path="loopback",
            server_processes=2,
            client_processes=2,
            load="open",
            rate=20.0,
            arrivals="constant",
            resume_grace_s=1.0,
            streams_per_server=extra["streams_per_server"],
            client_cpu_s_per_process=extra["client_cpu_s_per_process"],
            raw_client=RawFloor(**extra["raw_client"]),
        )
        assert phase.path_parameters == {"loopback": {}}
        assert phase.load_test is None and phase.browser is None
        assert phase.server_processes == 2


def test_version_2_summaries_come_out_the_same_from_the_typed_parts() -> None:
    """Analysis reads the raw client's floor and the resume grace from `setup` now."""
    saved = {name: e["summary"] for name, e in v2_document()["transports"].items()}
    run = load_run(V2_FIXTURE)
    for name, summary in run.summaries.items():
        assert summary.raw_client_cpu_us_per_token is not None
        assert without_intervals(summary.to_json()) == saved[name]  # intervals came later


def without_intervals(value: Any) -> Any:
    """A summary's JSON without its confidence intervals (keys ending in `_ci`)."""
    if isinstance(value, dict):
        return {k: without_intervals(v) for k, v in value.items() if not k.endswith("_ci")}
    return value


def test_a_migrated_run_saves_as_the_current_version_and_reads_back_the_same(
    tmp_path: Path,
) -> None:
    run = load_run(V2_FIXTURE)
    save_run(run, tmp_path / "v3")
    data = orjson.loads((tmp_path / "v3" / "results.json").read_bytes())
    assert data["schema_version"] == SCHEMA_VERSION == 4
    phase = data["transports"]["sse"]["phase"]
    assert "extra" not in phase and phase["setup"]["raw_client"]["tokens"] == 27
    assert load_run(tmp_path / "v3").phases == run.phases


def test_a_shared_window_moves_with_its_cpu() -> None:
    phase = migrated_phase(
        {
            "order": "interleaved",
            "load": "closed",
            "cpu": SHARED_CPU,
            "window_server_cpu_s": 1.5,
            "window_client_cpu_s": 0.5,
        }
    )
    assert phase.setup == PhaseSetup(
        order="interleaved", load="closed", shared_window=SharedWindow(1.5, 0.5)
    )


def test_a_load_tests_entries_move_to_load_test() -> None:
    extra = {
        "order": "interleaved",
        "load": True,
        "streams_per_worker": {"0": 5, "1": 4},
        "hosts": ["h"],
        "cpu": SHARED_CPU,
        "window_server_cpu_s": 2.0,
        "window_client_cpu_s": 1.0,
    }
    phase = migrated_phase(extra)
    assert phase.setup is None and phase.browser is None
    assert phase.load_test == LoadTestSetup(
        order="interleaved",
        streams_per_worker={"0": 5, "1": 4},
        hosts=["h"],
        shared_window=SharedWindow(2.0, 1.0),
    )


def test_the_browsers_figures_move_to_browser() -> None:
    figures: dict[str, Any] = {
        "chromium": "120.0",
        "flags": ["--headless"],
        "pages": 1,
        "streams_per_page": 6,
        "sse_api": "EventSource (GET)",
        "stamps": "CDP",
        "cdp_clock_check": [{"ok": True}],
        "js_clock": [{"method": "timeOrigin"}],
        "js_after_cdp_ms": {"n": 3, "p50": 0.1},
        "renderer_after_network_process_ms": {"n": 0},
        "python_after_cdp_ms": {"n": 0},
        "dispatch_ms": {"n": 0},
        "stamped_by_page_clock": 0,
        "cdp_unsettled_streams": 0,
        "page_vs_cdp_request_mismatches": 0,
        "page_failures": 0,
        "websocket_permessage_deflate": False,
        "wire_bytes": "HTTP",
    }  # as the first browser runs saved it: no js_after_network_process_ms yet
    extra = {
        "order": "sequential",
        "client": "browser",
        "browser": figures,
        "client_cpu": "Chromium's processes",
        "python_client_cpu_s": 0.25,
    }
    phase = migrated_phase(copy.deepcopy(extra))
    assert phase.setup == PhaseSetup(order="sequential")
    assert phase.browser == BrowserFigures(
        **figures, client_cpu="Chromium's processes", python_client_cpu_s=0.25
    )
    assert phase.browser.js_after_network_process_ms == {"n": 0}


def test_a_phase_with_nothing_in_extra_has_no_parts() -> None:
    phase = migrated_phase({})
    assert (phase.setup, phase.load_test, phase.browser, phase.path_parameters) == (
        None,
        None,
        None,
        {},
    )


def test_report_on_a_version_2_folder_writes_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = Path(shutil.copytree(V2_FIXTURE, tmp_path / "v2"))
    assert main(["report", str(run_dir)]) == 0, capsys.readouterr().err
    assert (run_dir / "report.html").stat().st_size > 0
