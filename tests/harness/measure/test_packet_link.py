"""The packet emulator's model (`link.py`), without packets: delay, jitter kept in order,
independent and bursty loss at their long-run rates, the rate queue's spacing, tail drops
and bound, reordering and duplication as counted; and `net:` arguments resolved into the
forwarder's two directions."""

from __future__ import annotations

import pytest

from errors import ScenarioError
from harness.measure.paths import parse_path
from harness.measure.paths.net.emulator import link_specs
from harness.measure.paths.net.link import Link, LinkSpec, queue_bytes
from harness.measure.paths.net.spec import PROFILES, parse_network


def dues(link: Link, count: int, gap_s: float = 0.001, size: int = 100) -> list[list[float]]:
    return [[d.due for d in link.admit(1.0 + k * gap_s, size)] for k in range(count)]


def test_a_packet_is_due_after_the_one_way_delay() -> None:
    link = Link(LinkSpec(delay_s=0.02))
    (delivery,) = link.admit(5.0, 1500)
    assert delivery.due == pytest.approx(5.02) and delivery.in_order
    assert (link.counts.packets, link.counts.bytes, link.counts.delivered) == (1, 1500, 1)


def test_no_impairment_means_due_at_once() -> None:
    link = Link(LinkSpec())
    assert [d.due for d in link.admit(3.0, 60)] == [3.0]


def test_jitter_spreads_the_delay_but_never_reorders() -> None:
    link = Link(LinkSpec(delay_s=0.02, jitter_s=0.01, seed=7))
    times = [d[0] for d in dues(link, 2000, gap_s=0.0005)]
    assert times == sorted(times)
    delays = [t - (1.0 + k * 0.0005) for k, t in enumerate(times)]
    assert min(delays) >= 0.01 - 1e-9
    assert max(delays) - min(delays) > 0.01


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_independent_loss_at_its_rate(seed: int) -> None:
    link = Link(LinkSpec(loss=0.02, seed=seed))
    dues(link, 100_000)
    assert 0.018 <= link.counts.lost / 100_000 <= 0.022
    assert link.counts.delivered == 100_000 - link.counts.lost


def test_gilbert_elliott_loss_comes_in_bursts_of_the_mean_length() -> None:
    link = Link(LinkSpec(loss=0.02, burst=4, seed=3))
    lost = [not d for d in dues(link, 200_000)]
    bursts, run = [], 0
    for was_lost in lost:
        if was_lost:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert 0.017 <= sum(lost) / len(lost) <= 0.023
    assert 3.5 <= sum(bursts) / len(bursts) <= 4.5
    independent = Link(LinkSpec(loss=0.02, seed=3))
    assert independent._loss.__class__.__name__ == "Bernoulli"


def test_the_rate_spaces_packets_by_their_size() -> None:
    link = Link(LinkSpec(rate_bps=12e6, queue_bytes=10**6))
    sent = [link.admit(1.0, 1500)[0].due for _ in range(5)]  # five at once: 1 ms each
    assert sent == pytest.approx([1.001, 1.002, 1.003, 1.004, 1.005])
    assert link.counts.queue_delay_max_s == pytest.approx(0.004)


def test_a_full_queue_drops_and_bounds_the_delay() -> None:
    link = Link(LinkSpec(rate_bps=12e6, queue_bytes=queue_bytes(12e6, 0.01)))  # 15,000 B
    out = [link.admit(1.0, 1500) for _ in range(30)]
    assert sum(1 for o in out if o) == 10  # 10 x 1500 B fill the 15,000 B queue
    assert link.counts.queue_drops == 20
    assert link.counts.queue_delay_max_s <= 0.01 + 1e-9
    assert link.admit(2.0, 1500)  # drained a second later: accepted again


def test_reordered_packets_skip_the_delay_and_are_counted() -> None:
    link = Link(LinkSpec(delay_s=0.05, reorder=0.1, seed=5))
    out = [link.admit(1.0 + k * 0.001, 100)[0] for k in range(5000)]
    early = [(k, d) for k, d in enumerate(out) if not d.in_order]
    assert len(early) == link.counts.reordered
    assert 400 <= len(early) <= 600
    assert all(d.due == pytest.approx(1.0 + k * 0.001) for k, d in early)  # no delay
    in_order = [d.due for d in out if d.in_order]
    assert in_order == sorted(in_order)


def test_duplicates_arrive_twice_and_are_counted() -> None:
    link = Link(LinkSpec(delay_s=0.01, duplicate=0.05, seed=9))
    copies = [len(d) for d in dues(link, 10_000)]
    assert copies.count(2) == link.counts.duplicated
    assert 400 <= link.counts.duplicated <= 600
    assert link.counts.delivered == 10_000 + link.counts.duplicated


def test_the_same_seed_draws_the_same() -> None:
    spec = LinkSpec(delay_s=0.01, jitter_s=0.005, loss=0.1, seed=11)
    assert dues(Link(spec), 500) == dues(Link(spec), 500)


def test_net_arguments_become_two_directions() -> None:
    spec, _ = parse_network("4g,loss=1%,burst=3,reorder=0.5%,dup=0.1%,queue=200ms,seed=4")
    specs = link_specs(spec)
    up, down = specs["up"], specs["down"]
    assert up.rate_bps == PROFILES["4g"].spec.up_bps
    assert down.rate_bps == PROFILES["4g"].spec.down_bps
    assert up.delay_s == down.delay_s == pytest.approx(0.03)
    assert (up.loss, up.burst, up.reorder, up.duplicate) == pytest.approx((0.01, 3, 0.005, 0.001))
    down_bps = PROFILES["4g"].spec.down_bps
    assert down_bps is not None and down.queue_bytes == int(down_bps / 8 * 0.2)
    assert up.seed != down.seed
    assert link_specs(parse_network("rtt=10ms")[0])["up"].rate_bps is None


@pytest.mark.parametrize(
    ("argument", "named"),
    [
        ("net:rtt=40ms,shaper=tbf", "relay:"),
        ("relay:rtt=40ms,loss=1%,burst=3", "net:"),
        ("net:rtt=40ms,burst=3", "burst"),
        ("net:rtt=40ms,loss=1%,burst=0.5", "burst"),
        ("net:rtt=40ms,queue=100ms", "queue"),
        ("net:bw=1mbit,queue=0", "queue"),
        ("net:rtt=40ms,reorder=100%", "reorder"),
        ("net:rtt=40ms,dup=x", "dup"),
        ("relay:loss=1%", "loss"),
    ],
)
def test_bad_arguments_name_the_parameter_in_one_line(argument: str, named: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_path(argument)
    message = str(caught.value)
    assert "\n" not in message and named in message and "allowed" in message


def test_bursty_loss_beyond_what_its_bursts_can_give_is_refused() -> None:
    assert parse_network("loss=60%,burst=2")[0].loss == 0.6  # at most 2/3
    with pytest.raises(ScenarioError, match="burst"):
        parse_network("loss=70%,burst=2")
    link = Link(LinkSpec(loss=0.6, burst=2, seed=2))
    dues(link, 50_000)
    assert 0.58 <= link.counts.lost / 50_000 <= 0.62


def test_directions_and_uses_draw_apart() -> None:
    """Up's loss draws are not down's jitter draws (each generator has its own seed)."""
    specs = link_specs(parse_network("rtt=20ms,jitter=10ms,loss=50%")[0])
    up, down = Link(specs["up"]), Link(specs["down"])
    up_lost = [not d for d in dues(up, 200)]
    down_lost = [not d for d in dues(down, 200)]
    assert up_lost != down_lost
    assert up._rng.random() != up._loss.rng.random()


def test_loss_without_delay_is_fine_for_packets() -> None:
    spec, _ = parse_network("loss=1%")
    assert spec.loss == 0.01 and spec.rtt_s == 0
