"""The webhook in scenarios: `batch_ms` (a field, a flag and a sweep axis), the clients'
settings it becomes, and the browser client, which cannot receive a POST."""

from __future__ import annotations

import pytest

from errors import ScenarioError
from harness.ci.baseline import FigureStats
from harness.ci.check import rules_for
from harness.measure.run.shards import client_settings
from harness.measure.scenario import (
    SWEEP_AXES,
    Scenario,
    load_scenario,
    parse_sweep_flag,
    scenario_from_dict,
    validated,
    with_overrides,
)
from harness.measure.server_process import PROJECT_ROOT
from transports import TRANSPORTS


def test_batch_ms_is_a_field_a_flag_and_a_sweep_axis() -> None:
    assert Scenario().knob("batch_ms") == 0
    assert scenario_from_dict({"batch_ms": 25}).knob("batch_ms") == 25.0
    assert with_overrides(Scenario(), batch_ms=40).knob("batch_ms") == 40
    assert "batch_ms" in SWEEP_AXES
    sweep = parse_sweep_flag("batch_ms=0,20,100")
    assert (sweep.axis, sweep.values) == ("batch_ms", (0.0, 20.0, 100.0))
    scenario = validated(Scenario(sweep=sweep))
    assert [scenario.at(v).knob("batch_ms") for v in sweep.values] == [0, 20, 100]
    settings = client_settings(scenario.at(20.0), "http://127.0.0.1:9", 4)
    assert settings.knob("batch_ms") == 20 and settings.max_connections == 4


@pytest.mark.parametrize("value", [-1, 60_001])
def test_batch_ms_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ScenarioError, match="batch_ms must be from 0 to 60000"):
        validated(scenario_from_dict({"batch_ms": value}))
    with pytest.raises(ScenarioError, match="batch_ms must be"):
        with_overrides(Scenario(), sweep=f"batch_ms=0,{value}")


def test_the_batch_sweep_scenario_loads() -> None:
    scenario = validated(load_scenario(PROJECT_ROOT / "scenarios" / "sweep-batch-ms.toml"))
    assert scenario.sweep is not None and scenario.sweep.axis == "batch_ms"
    assert scenario.sweep.values[0] == 0 and "webhook" in scenario.transports


def test_the_browser_client_refuses_the_webhook_by_name() -> None:
    assert TRANSPORTS.get("webhook").capabilities.browser is False
    with pytest.raises(ScenarioError) as refused:
        validated(Scenario(client="browser", transports=("sse", "webhook")))
    message = str(refused.value)
    assert "transport webhook cannot run in a browser (its capability browser is False)" in message
    assert "use: short_poll, long_poll, sse, chunked, websocket" in message
    assert "\n" not in message


def test_all_transports_in_a_browser_are_all_a_browser_runs() -> None:
    scenario = validated(scenario_from_dict({"client": "browser"}))
    assert "webhook" not in scenario.transports and "sse" in scenario.transports
    swept = scenario_from_dict({"sweep": {"axis": "client", "values": ["python", "browser"]}})
    assert "webhook" in validated(swept).at("python").transports
    assert "webhook" not in validated(swept).at("browser").transports


def test_the_check_judges_the_webhook_by_polling_rules() -> None:
    """Its requests and bytes per stream follow timing (batching, retries): tolerances, not
    exact matches; its added delay by the median, as a request per token."""
    stats = FigureStats(value=2.0, low=2.0, high=2.0, n=1)
    figures = {
        "requests_per_stream": stats,
        "wire_bytes_per_token": stats,
        "added_delay_p50_ms": stats,
    }
    rules = {r.figure: r for r in rules_for("webhook", figures, 100.0)}
    assert rules["requests_per_stream"].kind == "timing"
    assert rules["wire_bytes_per_token"].kind == "timing"
    assert rules["added_delay_p50_ms"].kind == "timing"
