"""A scenario's framing must travel over each of its transports: checked when the scenario is
validated, one line and exit status 2 from `bench.py run`."""

from __future__ import annotations

import pytest
from support import bench

from errors import ScenarioError
from harness.measure.scenario import Faults, Scenario, parse_sweep, validated, with_overrides
from wire.framing import FRAMINGS


@pytest.mark.parametrize(
    ("framing", "transports"),
    [
        ("json", ("short_poll", "long_poll", "sse", "chunked", "websocket")),
        ("openai", ("short_poll", "sse", "chunked", "websocket")),
        ("vercel-ui", ("sse",)),
        ("vercel-data", ("chunked",)),
        ("langchain", ("sse", "chunked", "websocket")),
        ("raw", ("sse", "chunked")),
    ],
)
def test_possible_pairs_validate(framing: str, transports: tuple[str, ...]) -> None:
    validated(Scenario(framing=framing, transports=transports))


@pytest.mark.parametrize(
    ("framing", "transports", "message"),
    [
        (
            "vercel-ui",
            ("sse", "chunked", "websocket"),
            "framing vercel-ui cannot travel over chunked, websocket; it travels over sse "
            "(pick them with --transports, or another framing)",
        ),
        ("vercel-data", ("long_poll",), "cannot travel over long_poll; it travels over chunked"),
        ("raw", ("websocket",), "it travels over sse, chunked"),
        ("langchain", ("short_poll", "sse"), "cannot travel over short_poll;"),
    ],
)
def test_impossible_pairs_are_refused(
    framing: str, transports: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ScenarioError) as error:
        validated(Scenario(framing=framing, transports=transports))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_raw_cannot_resume() -> None:
    faults = Faults(drop_at_token=5)
    with pytest.raises(ScenarioError, match="no token boundaries"):
        validated(Scenario(framing="raw", transports=("chunked",), faults=faults))
    validated(Scenario(framing="langchain", transports=("chunked",), faults=faults))


def test_the_browser_client_reads_json_and_openai_only() -> None:
    with pytest.raises(ScenarioError, match="browser client reads the framings json, openai"):
        validated(Scenario(framing="vercel-ui", transports=("sse",), client="browser"))


def test_a_framing_sweep_checks_every_point() -> None:
    sweep = parse_sweep("framing", ["json", "vercel-ui"])
    with pytest.raises(ScenarioError, match="framing vercel-ui cannot travel over chunked"):
        validated(Scenario(transports=("sse", "chunked"), sweep=sweep))
    validated(Scenario(transports=("sse",), sweep=sweep))


def test_flags_are_checked_together() -> None:
    with pytest.raises(ScenarioError, match="vercel-data cannot travel over sse"):
        with_overrides(Scenario(), framing="vercel-data", transports="sse")
    assert with_overrides(Scenario(), framing="vercel-data", transports="chunked").framing == (
        "vercel-data"
    )


def test_every_framing_is_a_run_choice() -> None:
    done = bench("run", "--help")
    assert done.returncode == 0
    for name in FRAMINGS:
        assert name in done.stdout


def test_bench_run_refuses_an_impossible_pair_in_one_line() -> None:
    done = bench("run", "--framing", "vercel-ui", "--transports", "sse,websocket")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bench.py: error: framing vercel-ui cannot travel over websocket; it travels over sse "
        "(pick them with --transports, or another framing)"
    ]
