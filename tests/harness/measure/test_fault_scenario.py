"""The failure lab in a scenario: `server_faults` and `heartbeat_s` as fields (a list or a
+ string in TOML), flags and sweep axes, the server's flags they make, and every refusal
as one line that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from errors import ScenarioError
from harness.measure.scenario import (
    SERVER_AXES,
    Scenario,
    load_scenario,
    parse_sweep_flag,
    validated,
    with_overrides,
)
from stacks import STACKS

OTHER_STACK = next(s.name for s in STACKS if s.name != "fastapi@uvicorn")


def test_no_fault_and_no_heartbeat_add_no_server_flag() -> None:
    args = validated(Scenario()).server_args()
    assert "--fault" not in args and "--heartbeat-s" not in args


def test_faults_and_heartbeat_become_the_server_flags() -> None:
    scenario = with_overrides(Scenario(), server_faults="nagle+headers_late", heartbeat_s=2.0)
    args = scenario.server_args()
    start = args.index("--fault")
    assert args[start : args.index("--heartbeat-s") + 2] == (
        "--fault",
        "nagle",
        "--fault",
        "headers_late",
        "--heartbeat-s",
        "2.0",
    )


def test_a_scenario_file_may_list_the_faults(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text('server_faults = ["gzip_noflush", "no_terminal"]\nheartbeat_s = 1.5\n')
    scenario = load_scenario(path)
    assert scenario.fault_names() == ("gzip_noflush", "no_terminal")
    assert scenario.heartbeat_s == 1.5


def test_faults_and_heartbeat_are_server_axes() -> None:
    assert {"server_faults", "heartbeat_s"} <= set(SERVER_AXES)
    sweep = parse_sweep_flag("server_faults=none,nagle,gzip_noflush+headers_late")
    scenario = with_overrides(Scenario(), sweep=sweep)
    assert [scenario.at(v).fault_names() for v in sweep.values] == [
        (),
        ("nagle",),
        ("gzip_noflush", "headers_late"),
    ]
    beats = with_overrides(Scenario(), sweep=parse_sweep_flag("heartbeat_s=0,2"))
    assert [beats.at(v).server_args().count("--heartbeat-s") for v in (0, 2)] == [0, 1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"server_faults": "nagel"}, "unknown server fault.*nagel.*known: nagle"),
        ({"sweep": "server_faults=none,gzip"}, "unknown server fault.*gzip"),
        ({"heartbeat_s": -1.0}, "heartbeat_s must be 0"),
        ({"server_faults": "nagle", "stack": OTHER_STACK}, "modelled on fastapi@uvicorn"),
    ],
)
def test_refusals_say_what_to_do(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        with_overrides(Scenario(), **overrides)
