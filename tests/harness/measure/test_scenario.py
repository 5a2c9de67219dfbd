"""Scenario files and overrides: valid ones load, bad ones name the field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import TRANSPORT_NAMES

from errors import ScenarioError
from harness.measure.scenario import (
    Scenario,
    load_scenario,
    parse_transports,
    validated,
    with_overrides,
)

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = with_overrides(load_scenario(path))
    assert scenario.name == path.stem
    assert scenario.source.seed == scenario.seed


def test_overrides_win_and_a_new_preset_replaces_the_file_source() -> None:
    base = load_scenario(SCENARIOS / "quick.toml")
    assert base.source.ttft_ms == 150
    s = with_overrides(base, requests=7, transports="sse,websocket", preset="instant", seed=9)
    assert (s.requests, s.transports, s.source.preset, s.source.ttft_ms) == (
        7,
        ("sse", "websocket"),
        "instant",
        None,
    )
    assert s.source.seed == 9
    kept = with_overrides(base, tokens_per_s=10.0)
    assert (kept.source.ttft_ms, kept.source.tokens_per_s) == (150, 10.0)


def test_transport_lists() -> None:
    assert parse_transports("all") == TRANSPORT_NAMES
    assert parse_transports(["sse", "sse", "chunked"]) == ("sse", "chunked")
    with pytest.raises(ScenarioError, match=r"unknown transport.*carrier-pigeon.*allowed: all"):
        parse_transports("sse,carrier-pigeon")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("requests = 0", "requests must be a positive integer"),
        ("concurrency = -2", "concurrency must be a positive integer"),
        ('requests = "ten"', "requests must be int"),
        ("requests = true", "requests must be int"),
        ("colour = 1", "unknown scenario field(s) colour; allowed:"),
        ('framing = "xml"', "unknown framing 'xml'; allowed: json, openai"),
        ("poll_interval_ms = 0", "poll_interval_ms must be a positive number"),
        ('transports = "tcp"', "unknown transport(s) tcp"),
        (
            '[source]\npreset = "turbo"',
            "unknown preset 'turbo'; allowed: instant, chat, local, reasoning, steady",
        ),
        ("[source]\nvelocity = 3", "unknown [source] field(s) velocity"),
        ("[source]\ntokens_per_s = 0", "tokens_per_s must be > 0"),
        ("requests = ", "not valid TOML"),
    ],
)
def test_bad_scenarios_are_rejected(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ScenarioError) as error:
        with_overrides(load_scenario(path))
    assert needle in str(error.value)


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(Path("/nonexistent/scenario.toml"))


def test_defaults_are_valid() -> None:
    assert validated(Scenario()).transports == TRANSPORT_NAMES
