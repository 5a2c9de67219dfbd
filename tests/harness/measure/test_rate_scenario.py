"""Open-loop settings: `rate` and `arrivals` in scenario files, flags and sweeps; bad values
refused with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import main
from errors import ScenarioError
from harness.cli.common import Parser
from harness.cli.run import add_arguments, scenario_from_args
from harness.measure.scenario import Scenario, Sweep, load_scenario, validated, with_overrides


def scenario_file(tmp_path: Path, text: str) -> Scenario:
    path = tmp_path / "rate.toml"
    path.write_text(text + "\n")
    return with_overrides(load_scenario(path))


def test_closed_loop_is_the_default() -> None:
    scenario = validated(Scenario())
    assert (scenario.rate, scenario.arrivals) == (0.0, "poisson")


def test_rate_and_arrivals_load_from_a_file(tmp_path: Path) -> None:
    scenario = scenario_file(tmp_path, 'rate = 25\narrivals = "constant"\nconcurrency = 500')
    assert (scenario.rate, scenario.arrivals, scenario.concurrency) == (25.0, "constant", 500)
    assert isinstance(scenario.rate, float)
    assert scenario.to_json()["rate"] == 25.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rate = -1", "rate must be 0 (closed loop) or a positive number of requests per second"),
        ("rate = inf", "rate must be 0 (closed loop) or a positive number"),
        ("rate = nan", "rate must be 0 (closed loop) or a positive number"),
        ('rate = "fast"', "rate must be int or number, got 'fast'"),
        ("rate = true", "rate must be int or number, got True"),
        ('arrivals = "bursty"', "unknown arrivals 'bursty'; allowed: poisson, constant"),
        ("arrivals = 3", "arrivals must be str"),
    ],
)
def test_bad_rates_and_arrivals_are_refused(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as error:
        scenario_file(tmp_path, text)
    assert needle in str(error.value)


def test_a_sweep_over_rates_parses_from_a_flag_and_a_file(tmp_path: Path) -> None:
    scenario = with_overrides(Scenario(), sweep="rate=0,5,12.5", concurrency=200)
    assert scenario.sweep == Sweep("rate", (0.0, 5.0, 12.5))
    assert [scenario.at(v).rate for v in scenario.sweep.values] == [0.0, 5.0, 12.5]
    assert scenario.at(5.0).concurrency == 200  # the cap stays at every point
    from_file = scenario_file(tmp_path, '[sweep]\naxis = "rate"\nvalues = [1, 2.5]')
    assert from_file.sweep == Sweep("rate", (1.0, 2.5))
    with pytest.raises(ScenarioError, match=r"rate must be 0 \(closed loop\) or a positive"):
        with_overrides(Scenario(), sweep="rate=5,-1")
    with pytest.raises(ScenarioError, match="sweep values of rate must be numbers"):
        with_overrides(Scenario(), sweep="rate=5,lots")


def test_the_run_flags_set_rate_and_arrivals() -> None:
    parser = Parser(prog="bench.py run")
    add_arguments(parser)
    args = parser.parse_args(["--rate", "30", "--arrivals", "constant", "--concurrency", "300"])
    scenario = scenario_from_args(args)
    assert (scenario.rate, scenario.arrivals, scenario.concurrency) == (30.0, "constant", 300)
    untouched = scenario_from_args(parser.parse_args([]))
    assert untouched.rate == 0.0  # the default scenario is a closed loop
    help_text = parser.format_help()
    assert "coordinated omission" in help_text and "closed loop" in help_text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "--rate", "-2"], "must be 0 or more, got -2"),
        (["run", "--rate", "often"], "expected a number >= 0, got 'often'"),
        (["run", "--rate", "inf"], "rate must be 0 (closed loop) or a positive number"),
        (["run", "--arrivals", "bursty"], "invalid choice: 'bursty'"),
    ],
)
def test_bad_rate_flags_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
