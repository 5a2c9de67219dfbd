"""`net:` path layers (the packet emulator), by known answers with real sockets on both
sides of the emulated link: a ping-pong through `net:rtt=40ms` takes 40 ms and a new
connection pays TCP's own handshake; timestamped messages arrive after the one-way delay and
in order; a lost packet is really lost (the sender's TCP retransmits it, every byte still
arrives) and UDP loses exactly the datagrams the forwarder dropped (duplicates and queue
drops counted the same way); everything the layer made is gone after it, even after an
error; a TLS upstream is refused in one line.

These need root and /dev/net/tun, which CI has. Timing bounds are generous: behaviour
checks; the figures belong in `python -m harness.measure.paths.net.emulator_check`.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from net_servers import (
    MB,
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

from harness.measure.paths.net.emulator import emulator_unavailable, packet_link
from harness.measure.paths.net.emulator_check import (
    check_tcp_loss,
    far_socket,
    ping,
    udp_lost,
)
from harness.measure.paths.net.namespace import namespace_exists
from harness.measure.paths.net.packet_layer import PacketLayer
from harness.measure.paths.net.spec import parse_network

pytestmark = pytest.mark.skipif(
    emulator_unavailable() is not None, reason=f"packet emulator: {emulator_unavailable()}"
)


def device_exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", name], capture_output=True, check=False)
    return done.returncode == 0


def test_a_ping_pong_through_rtt_40ms_takes_40ms_and_connect_one_rtt(tmp_path: Path) -> None:
    with serving(Echo) as port, through("net:rtt=40ms", port, tmp_path) as (host, p, layer):
        start = time.perf_counter()
        with connect(host, p) as sock:
            connected = (time.perf_counter() - start) * 1e3
            rtts = ping_pongs(sock, 10)
        figures = layer.parameters()
    assert connected >= 39.5, connected  # SYN out, SYN-ACK back: across the link
    assert min(rtts) >= 39.5, rtts
    assert statistics.median(rtts) <= 55, rtts
    assert figures["emulator"] == "packet"
    assert figures["forwarder_stats"]["up"]["packets"] >= 12  # SYN, ACK, 10 pings...
    assert figures["relay_stats"]["connections"] == 1


def test_timestamped_messages_arrive_after_the_one_way_delay_in_order(tmp_path: Path) -> None:
    path = "net:rtt=40ms,jitter=10ms"
    with (
        serving(Stamps) as port,
        through(path, port, tmp_path) as (host, p, _),
        connect(host, p) as sock,
    ):
        arrivals = stamped_delays(sock, count=40, gap_ms=5)
    delays = [delay for _, delay in arrivals]
    assert [seq for seq, _ in arrivals] == list(range(40))
    assert min(delays) >= 9.9, delays
    assert max(delays) - min(delays) >= 3, delays


def test_ping_crosses_the_link_both_ways(tmp_path: Path) -> None:
    with packet_link(parse_network("rtt=30ms")[0], tmp_path) as link:
        rtts = ping(link.namespace.ns_addr, 5, gap_s=0.01)
        stats = link.forwarder.stats()
    assert len(rtts) == 5 and min(rtts) >= 0.0295, rtts
    assert stats is not None
    assert stats["up"]["packets"] == stats["down"]["packets"] == 5


def test_a_lost_segment_is_retransmitted_by_tcp_and_nothing_is_lost() -> None:
    check = check_tcp_loss(0.05, 4.0, 2_000_000)  # 1,382 segments at 5%
    retrans, segments = (
        (int(x) for x in check.detail.split(" retransmitted of ")[0:1][0].split()),
        0,
    )
    assert "2000000 bytes arrived of 2000000" in check.detail, check.detail
    assert check.measured > 0, check.detail  # real retransmissions, counted by the kernel
    del retrans, segments


def test_a_download_under_loss_arrives_whole(tmp_path: Path) -> None:
    with serving(Blob) as port, through("net:rtt=10ms,loss=3%", port, tmp_path) as (h, p, layer):
        _, received = download(h, p)
        stats = layer.parameters()["forwarder_stats"]
    assert received == MB
    assert stats["down"]["lost"] > 0 and stats["up"]["lost"] >= 0


@pytest.mark.parametrize("argument", ["rtt=2ms,loss=5%", "rtt=2ms,loss=5%,burst=3"])
def test_udp_loses_exactly_what_the_forwarder_dropped(tmp_path: Path, argument: str) -> None:
    with packet_link(parse_network(argument)[0], tmp_path) as link:
        up = udp_lost(link, 2000, down=False, rate=20_000.0)
        down = udp_lost(link, 2000, down=True, rate=20_000.0)
        stats = link.forwarder.stats()
    assert stats is not None
    for (sent, received), direction in ((up, "up"), (down, "down")):
        assert stats[direction]["lost"] == sent - received > 0


def test_duplicates_arrive_as_counted(tmp_path: Path) -> None:
    with packet_link(parse_network("rtt=2ms,dup=10%")[0], tmp_path) as link:
        sent, received = udp_lost(link, 2000, down=False, rate=20_000.0)
        stats = link.forwarder.stats()
    assert stats is not None
    assert received == sent + stats["up"]["duplicated"]
    assert stats["up"]["duplicated"] > 100


def test_a_full_queue_drops_what_it_cannot_hold(tmp_path: Path) -> None:
    with packet_link(parse_network("bw=1mbit,queue=50ms")[0], tmp_path) as link:
        sent, received = udp_lost(link, 500, down=False, rate=20_000.0)  # 20x the rate
        stats = link.forwarder.stats()
    assert stats is not None
    up = stats["up"]
    assert up["queue_drops"] == sent - received > 0
    assert up["queue_delay_max_s"] <= 0.05


def test_everything_it_made_is_gone_after_the_context(tmp_path: Path) -> None:
    with serving(Echo) as port:
        with through("net:rtt=10ms", port, tmp_path / "a") as (host, p, layer):
            assert isinstance(layer, PacketLayer) and layer.link and layer.relay
            ns, pids = layer.link.namespace, [layer.link.forwarder.pid, layer.relay.pid]
            assert namespace_exists(ns.name) and device_exists(ns.host_if)
            with connect(host, p) as sock:
                ping_pongs(sock, 2)
        assert not namespace_exists(ns.name) and not device_exists(ns.host_if)
        assert not any(psutil.pid_exists(pid) for pid in pids)
        assert layer.parameters()["forwarder_stats"]["up"]["packets"] > 0
        with (
            pytest.raises(RuntimeError, match="boom"),
            through("net:rtt=10ms", port, tmp_path / "b") as (_, _, layer),
        ):
            ns, pids = layer.link.namespace, [layer.link.forwarder.pid, layer.relay.pid]
            raise RuntimeError("boom")
        assert not namespace_exists(ns.name) and not device_exists(ns.host_if)
        assert not any(psutil.pid_exists(pid) for pid in pids)


def test_a_socket_inside_the_namespace_is_reachable_only_across_the_link(tmp_path: Path) -> None:
    with packet_link(parse_network("rtt=20ms")[0], tmp_path) as link:
        listener = far_socket(link, socket.SOCK_STREAM)
        listener.listen(1)
        with listener:
            start = time.perf_counter()
            with socket.create_connection((link.namespace.ns_addr, listener.getsockname()[1])):
                elapsed = time.perf_counter() - start
    assert elapsed >= 0.0195
