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

import contextlib
import os
import select
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
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

# Skipped where the emulator cannot run (not root, no /dev/net/tun), except in CI, where a
# missing emulator must fail the run, not hide it.
pytestmark = pytest.mark.skipif(
    emulator_unavailable() is not None and not os.environ.get("CI"),
    reason=f"packet emulator: {emulator_unavailable()}",
)


@contextlib.contextmanager
def udp_echo(port: int) -> Iterator[list[int]]:
    """A UDP echo on 127.0.0.1:`port` (a thread); yields its count of datagrams."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.05)
    count = [0]
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            count[0] += 1
            sock.sendto(data, addr)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield count
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 1.0)[0])


def _count_replies(sock: socket.socket, quiet_s: float = 0.5) -> int:
    """Replies until none came for `quiet_s`."""
    got = 0
    while select.select([sock], [], [], quiet_s)[0]:
        sock.recv(64)
        got += 1
    return got


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
    assert "2000000 bytes arrived of 2000000" in check.detail, check.detail
    assert check.measured > 0, check.detail  # real retransmissions, counted by the kernel


def test_a_download_under_loss_arrives_whole(tmp_path: Path) -> None:
    with serving(Blob) as port, through("net:rtt=10ms,loss=3%", port, tmp_path) as (h, p, layer):
        _, received = download(h, p)
    figures = layer.parameters()  # the final statistics, written as the helpers stopped
    lost = figures["forwarder_stats"]["down"]["lost"]
    relay = figures["relay_stats"]
    assert received == MB
    assert lost > 0
    # every data segment the link dropped was sent again by the splice's TCP (ACKs dropped
    # on the way up cost nothing; the download is all data downwards)
    assert relay["client_retransmits"] >= lost * 0.9, (relay, lost)
    assert relay["retransmits_per_connection"] == [relay["client_retransmits"]]


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


def test_udp_crosses_to_a_server_on_loopback_and_back(tmp_path: Path) -> None:
    """The splice carries UDP to the upstream's port of the same number: every echo that
    arrives crossed the link twice, and the ones missing are exactly the forwarder's drops."""
    with (
        serving(Echo) as port,
        udp_echo(port) as echoed,
        through("net:rtt=20ms,loss=5%", port, tmp_path) as (host, p, layer),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        start = time.perf_counter()
        sock.sendto(b"first", (host, p))
        first = sock.recv(64) if _answered(sock) else b""
        rtt = time.perf_counter() - start
        received = int(first == b"first")
        for k in range(400):  # paced: a burst would overflow the sockets' receive buffers
            sock.sendto(k.to_bytes(4, "big"), (host, p))
            time.sleep(0.001)
            received += _count_replies(sock, quiet_s=0.0)
        received += _count_replies(sock)
    figures = layer.parameters()
    up, down = figures["forwarder_stats"]["up"], figures["forwarder_stats"]["down"]
    udp = figures["relay_stats"]["udp"]
    assert up["lost"] > 0 and down["lost"] > 0
    assert received == 401 - up["lost"] - down["lost"]
    assert udp["datagrams_up"] == 401 - up["lost"] == echoed[0]
    assert udp["flows"] == 1
    if first:
        assert rtt >= 0.0195


def test_the_probe_sends_the_urls_host_through_an_emulated_path() -> None:
    from harness.cli.probe import through_path
    from harness.probe.request import build_request

    request = build_request(
        "http://127.0.0.1:8123/v1/sse",
        method=None,
        data=None,
        headers=(),
        env_headers=(),
        environ={},
    )
    with through_path(request, "net:rtt=1ms") as moved:
        assert moved.target.host.startswith("10.214.")  # the emulator's far end
        assert moved.target.host_header == "127.0.0.1:8123"  # the URL's own Host
