"""The server stack in a scenario: the `stack`, `workers` and `threads` fields and flags, the
server's flags they make (none for the default stack), a sweep over stacks, what results
record, and every refusal as one line that says what to do."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from plugins.echo_transport import ECHO

import stacks
from bench import main
from errors import ScenarioError
from harness.measure.scenario import (
    SERVER_AXES,
    SWEEP_AXES,
    Scenario,
    load_scenario,
    parse_sweep_flag,
    validated,
    validation,
    with_overrides,
)
from stacks import DEFAULT, STACKS, Stack, default_threads
from transports import TRANSPORTS

THREADED = next(s.name for s in STACKS if s.threaded)
PLAIN = next(s.name for s in STACKS if not s.threaded and s.name != DEFAULT)
BASE = ("--resume-grace-s", "5", "--streaming-headers", "1")  # what every scenario passes


# --- the server's flags -----------------------------------------------------------------------


def test_the_default_stack_adds_no_server_flag() -> None:
    scenario = validated(Scenario())
    assert scenario.stack == DEFAULT and scenario.server_args() == BASE
    assert not any(arg in {"--stack", "--workers", "--threads"} for arg in scenario.server_args())


def test_another_stack_is_named_and_a_threaded_one_gets_workers_and_threads() -> None:
    plain = with_overrides(Scenario(), stack=PLAIN)
    assert plain.server_args() == (*BASE, "--stack", PLAIN)
    threaded = with_overrides(Scenario(), stack=THREADED, threads=6)
    flags = ("--stack", THREADED, "--workers", "1", "--threads", "6")
    assert threaded.server_args() == (*BASE, *flags)


def test_threads_0_is_four_per_core_of_the_machine_or_of_the_pinned_cpus() -> None:
    scenario = with_overrides(Scenario(), stack=THREADED)
    assert scenario.threads == 0
    assert scenario.stack_threads() == default_threads() == 4 * (os.cpu_count() or 1)
    assert scenario.server_args()[-2:] == ("--threads", str(default_threads()))
    pinned = with_overrides(Scenario(), stack=THREADED, server_cpus="0")
    assert pinned.stack_threads() == 4  # one pinned CPU: 4 threads


def test_results_record_the_stack_as_run() -> None:
    threaded = with_overrides(Scenario(), stack=THREADED, threads=3).stack_setup()
    stack = STACKS.get(THREADED)
    assert (threaded.name, threaded.workers, threaded.threads) == (THREADED, 1, 3)
    assert threaded.http_versions == list(stack.http_versions) and threaded.thread_limit == 3
    plain = validated(Scenario()).stack_setup()
    assert (plain.name, plain.workers, plain.threads, plain.thread_limit) == (
        DEFAULT,
        None,
        None,
        None,
    )
    saved = with_overrides(Scenario(), stack=THREADED, threads=3).to_json()
    assert (saved["stack"], saved["workers"], saved["threads"]) == (THREADED, 1, 3)


# --- reading ------------------------------------------------------------------------------


def test_a_scenario_file_sets_the_stack(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'stack = "{THREADED}"\nworkers = 1\nthreads = 12\n')
    scenario = with_overrides(load_scenario(path))
    assert (scenario.stack, scenario.workers, scenario.threads) == (THREADED, 1, 12)
    path.write_text("stack = 3\n")
    with pytest.raises(ScenarioError, match="stack must be str, got 3"):
        load_scenario(path)
    path.write_text('threads = "many"\n')
    with pytest.raises(ScenarioError, match="threads must be int"):
        load_scenario(path)


def test_stack_is_a_sweep_axis_that_restarts_the_server() -> None:
    assert "stack" in SWEEP_AXES and "stack" in SERVER_AXES
    sweep = parse_sweep_flag(f"stack={DEFAULT}, {PLAIN},{THREADED}")
    assert (sweep.axis, sweep.values) == ("stack", (DEFAULT, PLAIN, THREADED))
    with pytest.raises(ScenarioError, match="sweep values repeat"):
        parse_sweep_flag(f"stack={PLAIN},{PLAIN}")


def test_a_comma_list_of_stacks_is_a_sweep_whose_threads_go_to_threaded_stacks() -> None:
    scenario = with_overrides(Scenario(), stack=f"{DEFAULT},{THREADED}", threads=5)
    assert scenario.sweep is not None and scenario.sweep.axis == "stack"
    assert scenario.stacks() == (DEFAULT, THREADED)
    default, threaded = (scenario.at(v) for v in scenario.sweep.values)
    assert default.server_args() == BASE and (default.workers, default.threads) == (1, 0)
    assert threaded.server_args()[-6:] == ("--stack", THREADED, "--workers", "1", "--threads", "5")
    with pytest.raises(ScenarioError, match="a comma list of stacks is a sweep over stacks"):
        with_overrides(Scenario(), stack=f"{DEFAULT},{PLAIN}", sweep="concurrency=1,2")


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"stack": "django@daphne"}, f"unknown stack 'django@daphne'; known: {DEFAULT}, "),
        ({"sweep": f"stack={DEFAULT},nope"}, "unknown stack 'nope'; known: "),
        ({"threads": 8}, f"threads apply to threaded stacks ({THREADED}), not to {DEFAULT}"),
        ({"stack": PLAIN, "workers": 2}, f"workers apply to threaded stacks ({THREADED})"),
        ({"stack": THREADED, "workers": 2}, "workers must be 1, got 2: polls, resumes and "),
        ({"stack": THREADED, "threads": -1}, "threads must be 1 or more (0: the default"),
    ],
)
def test_a_stack_setting_that_cannot_run_is_refused(
    changes: dict[str, object], needle: str
) -> None:
    with pytest.raises(ScenarioError) as refused:
        with_overrides(Scenario(), **changes)
    message = str(refused.value)
    assert needle in message and "\n" not in message


def test_more_than_one_worker_is_refused_saying_why_and_what_instead() -> None:
    with pytest.raises(ScenarioError) as refused:
        with_overrides(Scenario(), stack=THREADED, workers=4)
    message = str(refused.value)
    assert "gunicorn does not route by stream" in message and "server_processes" in message


def test_a_stack_without_its_packages_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Stack, "missing_packages", lambda self: ("gunicorn",))
    with pytest.raises(ScenarioError) as refused:
        with_overrides(Scenario(), stack=THREADED)
    assert str(refused.value) == (
        f"stack {THREADED} needs gunicorn: pip install -e '.[{stacks.STACKS_EXTRA}]'"
    )


def test_a_transport_a_stack_cannot_carry_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """`echo` has no stack-neutral routes: only the FastAPI stacks serve it."""
    monkeypatch.setattr(validation, "TRANSPORTS", TRANSPORTS.with_transport(ECHO))
    scenario = replace(Scenario(), transports=("sse", "echo"))
    assert validated(scenario).stack == DEFAULT  # the FastAPI stack mounts its router
    with pytest.raises(ScenarioError) as refused:
        validated(replace(scenario, stack=PLAIN))
    message = str(refused.value)
    assert message.startswith(f"stack {PLAIN} cannot carry echo: ")
    assert message.endswith("or leave out echo with --transports") and "\n" not in message


def test_the_cli_refuses_in_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for args, needle in (
        (["run", "--stack", "nope"], "unknown stack 'nope'"),
        (["run", "--threads", "4"], "threads apply to threaded stacks"),
        (["run", "--stack", THREADED, "--workers", "2"], "workers must be 1, got 2"),
        (["run", "--stack", THREADED, "--threads", "0"], "must be a positive integer, got 0"),
        (["capacity", "--stack", f"{DEFAULT},nope"], "unknown stack 'nope'"),
    ):
        assert main(args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (args, lines)


@pytest.mark.parametrize("command", ["run", "capacity"])
def test_the_help_lists_every_stack(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for stack in STACKS:
        assert f"{stack.name} ({stack.title}" in text, stack.name
    assert "--workers W" in text and "--threads T" in text
    assert "gunicorn does not route by stream" in text
