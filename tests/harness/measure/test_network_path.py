"""`relay:` path layers (the stream relay), by known answers: through `relay:rtt=40ms` a
ping-pong over a plain TCP echo server takes about 40 ms, a stream of timestamped messages
arrives about 20 ms after it was sent (never earlier), `rtt=0` adds well under a
millisecond, a bandwidth-limited relay moves 1 MB in about size / bandwidth, the relay
process (and any namespace) is gone after the context exits, and bad parameters are
one-line ScenarioErrors.

The servers (tests/net_servers.py) are tiny ones of our own on loopback. Timing bounds are
generous (two shared cores): these are behaviour checks; the figures belong in the
benchmark.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import psutil
import pytest
from net_servers import (
    MB,
    STAMP,
    Blob,
    Echo,
    Stamps,
    connect,
    download,
    ping_pongs,
    serving,
    stamped_delays,
    through,
)

from errors import ScenarioError
from harness.measure.paths import parse_path
from harness.measure.paths.net.layer import NetworkLayer, relay_layer
from harness.measure.paths.net.namespace import namespace_exists, shaping_unavailable
from harness.measure.paths.net.spec import PROFILES, parse_network

# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_resolves_with_its_source(name: str) -> None:
    layer = relay_layer(name)
    figures = layer.parameters()
    assert layer.name == f"relay:{name}"
    assert figures["profile"] == name
    assert figures["rtt_ms"] > 0
    assert figures["one_way_delay_ms"] == pytest.approx(figures["rtt_ms"] / 2)
    assert len(figures["source"]) > 20


def test_parameters_with_units_and_profile_overrides() -> None:
    spec, profile = parse_network("rtt=80ms,jitter=5ms,bw=10mbit,loss=0.5%", "relay")
    assert profile is None
    assert (spec.rtt_s, spec.jitter_s, spec.loss) == pytest.approx((0.08, 0.005, 0.005))
    assert spec.down_bps == spec.up_bps == 10e6
    spec, _ = parse_network("rtt=0.2s,bw=1gbit,up=500kbit", "relay")
    assert (spec.rtt_s, spec.down_bps, spec.up_bps) == (0.2, 1e9, 500e3)
    spec, profile = parse_network("4g,loss=1%", "relay")
    assert profile == "4g"
    assert spec.rtt_s == PROFILES["4g"].spec.rtt_s
    assert spec.loss == pytest.approx(0.01)
    assert parse_network("rtt=0", "relay")[0].rtt_s == 0.0


@pytest.mark.parametrize(
    ("argument", "named"),
    [
        ("", "profile"),
        ("5g", "5g"),
        ("rtt=80", "rtt"),
        ("rtt=-5ms", "rtt"),
        ("rtt=80 ms", "rtt"),
        ("rtt=2min", "rtt"),
        ("rtt=90s", "rtt"),
        ("bw=10mb", "bw"),
        ("bw=0kbit", "bw"),
        ("up=1mbit", "up"),
        ("loss=0.5", "loss"),
        ("rtt=40ms,loss=100%", "loss"),
        ("loss=1%", "loss"),
        ("rtt=40ms,jitter=30ms", "jitter"),
        ("rtt=40ms,rtt=50ms", "rtt"),
        ("delay=20ms", "delay"),
        ("rtt=40ms,4g", "4g"),
        ("bw=1mbit,shaper=netem", "shaper"),
        ("rtt=40ms,shaper=tbf", "shaper"),
        ("rtt=40ms,seed=x", "seed"),
        ("rtt=40ms,,bw=1mbit", "profile"),
    ],
)
def test_bad_parameters_are_one_line_scenario_errors(argument: str, named: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_path(f"relay:{argument}")
    message = str(caught.value)
    assert "\n" not in message
    assert named in message
    assert "allowed" in message


# --- known answers ------------------------------------------------------------------------


def test_a_ping_pong_through_rtt_40ms_takes_40ms(tmp_path: Path) -> None:
    with serving(Echo) as port, through("relay:rtt=40ms", port, tmp_path) as (host, relay_port, _):
        with connect(host, relay_port) as sock:
            start = time.perf_counter()
            first = ping_pongs(sock, 1)[0]
            connect_and_first = (time.perf_counter() - start) * 1e3
            rtts = ping_pongs(sock, 10)
        with connect("127.0.0.1", port) as sock:
            direct = statistics.median(ping_pongs(sock, 10))
    # a new connection's first request also pays the handshake's round trip
    assert first >= 78, first
    assert connect_and_first < 200, connect_and_first
    assert 39.5 <= statistics.median(rtts) <= 40 + direct + 15, rtts
    assert min(rtts) >= 39.5, rtts  # held 20 ms each way, never less


def test_one_way_delay_from_timestamped_messages_is_20ms(tmp_path: Path) -> None:
    with serving(Stamps) as port, through("relay:rtt=40ms", port, tmp_path) as (host, p, layer):
        with connect(host, p) as sock:
            arrivals = stamped_delays(sock, count=30, gap_ms=10)
        stats = layer.parameters()["relay_stats"]
    delays = [delay for _, delay in arrivals]
    assert [seq for seq, _ in arrivals] == list(range(30))
    assert min(delays) >= 19.9, delays  # never before arrival + one-way delay
    assert statistics.median(delays) <= 26, delays
    assert stats["bytes_down"] == 30 * STAMP.size and stats["held_for_loss"] == 0


def test_rtt_zero_adds_well_under_a_millisecond(tmp_path: Path) -> None:
    with serving(Echo) as port, through("relay:rtt=0", port, tmp_path) as (host, relay_port, _):
        with connect(host, relay_port) as sock:
            ping_pongs(sock, 20)
            relayed = statistics.median(ping_pongs(sock, 200))
        with connect("127.0.0.1", port) as sock:
            ping_pongs(sock, 20)
            direct = statistics.median(ping_pongs(sock, 200))
    # a round trip crosses the relay twice
    assert relayed - direct < 1.0, (relayed, direct)


def test_jitter_spreads_the_delay_but_keeps_the_order(tmp_path: Path) -> None:
    path = "relay:rtt=40ms,jitter=10ms"
    with (
        serving(Stamps) as port,
        through(path, port, tmp_path) as (host, p, _),
        connect(host, p) as s,
    ):
        arrivals = stamped_delays(s, count=40, gap_ms=5)
    delays = [delay for _, delay in arrivals]
    assert [seq for seq, _ in arrivals] == list(range(40))
    assert min(delays) >= 9.9, delays
    assert max(delays) - min(delays) >= 3, delays
    assert max(delays) <= 30 + 25, delays


def test_loss_holds_a_chunk_one_extra_rtt(tmp_path: Path) -> None:
    path = "relay:rtt=40ms,loss=50%"
    with serving(Stamps) as port, through(path, port, tmp_path) as (host, p, layer):
        with connect(host, p) as sock:
            arrivals = stamped_delays(sock, count=20, gap_ms=50)
        stats = layer.parameters()["relay_stats"]
    delays = [round(delay, 2) for _, delay in arrivals]
    assert [seq for seq, _ in arrivals] == list(range(20))
    assert stats["held_for_loss"] >= 3, stats
    assert stats["client_retransmits"] == 0  # held, not dropped: TCP never resends
    assert min(delays) >= 19.9, delays
    assert sum(delay >= 59.5 for delay in delays) >= 3, delays  # 20 ms + a 40 ms retransmission
    assert sum(delay < 45 for delay in delays) >= 3, delays


def test_the_relay_bucket_moves_1mb_in_size_over_bandwidth(tmp_path: Path) -> None:
    path = "relay:bw=8mbit,shaper=relay"  # 1 MB at 8 Mbit/s: 1 s
    with serving(Blob) as port, through(path, port, tmp_path) as (host, p, layer):
        assert host == "127.0.0.1"
        seconds, received = download(host, p)
        assert layer.parameters()["shaper"] == "relay"
    assert received == MB
    assert 0.9 <= seconds <= 1.6, seconds


@pytest.mark.skipif(shaping_unavailable() is not None, reason=f"{shaping_unavailable()}")
def test_tbf_in_a_namespace_moves_1mb_in_size_over_bandwidth(tmp_path: Path) -> None:
    path = "relay:bw=8mbit,shaper=tbf"
    with serving(Blob) as port, through(path, port, tmp_path) as (host, p, layer):
        assert isinstance(layer, NetworkLayer) and layer.namespace is not None
        name = layer.namespace.name
        assert namespace_exists(name)
        assert host == layer.namespace.ns_addr
        seconds, received = download(host, p)
        assert layer.parameters()["shaper"] == "tbf"
    assert received == MB
    assert 0.9 <= seconds <= 1.6, seconds
    assert not namespace_exists(name)


def test_the_relay_process_is_gone_after_the_context(tmp_path: Path) -> None:
    with serving(Echo) as port:
        with through("relay:rtt=10ms", port, tmp_path / "a") as (_, _, layer):
            pid = layer.relay.pid
            assert psutil.pid_exists(pid)
        assert layer.relay.process.poll() is not None
        assert not psutil.pid_exists(pid)
        assert layer.parameters()["relay_stats"]["connections"] == 0
        with (
            pytest.raises(RuntimeError, match="boom"),
            through("relay:rtt=10ms", port, tmp_path / "b") as (_, _, layer),
        ):
            pid = layer.relay.pid
            raise RuntimeError("boom")
        assert not psutil.pid_exists(pid)


def test_a_comma_inside_net_parameters_does_not_split_a_list_of_paths() -> None:
    from harness.measure.paths import split_paths
    from harness.measure.scenario import Scenario, with_overrides

    assert split_paths("net:rtt=80ms,bw=10mbit") == ["net:rtt=80ms,bw=10mbit"]
    assert split_paths("loopback, net:4g,loss=1% ,nginx+net:rtt=40ms,jitter=2ms") == [
        "loopback",
        "net:4g,loss=1%",
        "nginx+net:rtt=40ms,jitter=2ms",
    ]
    one = with_overrides(Scenario(), path="net:rtt=80ms,jitter=5ms,bw=10mbit,loss=0.5%")
    assert (one.path, one.sweep) == ("net:rtt=80ms,jitter=5ms,bw=10mbit,loss=0.5%", None)
    two = with_overrides(Scenario(), path="loopback,net:rtt=40ms,bw=1mbit")
    assert two.sweep is not None
    assert two.sweep.values == ("loopback", "net:rtt=40ms,bw=1mbit")
