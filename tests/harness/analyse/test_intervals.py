"""Confidence intervals by bootstrap over streams, and ties: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analyse import intervals
from harness.analyse.intervals import Interval, pooled_intervals, ratio_interval
from harness.analyse.ranking import ranked


def brute_force(groups: list[list[float]], name: str) -> dict[str, tuple[float, float]]:
    """The same resamples, each pooled by repeating its streams' samples."""
    draws = intervals.stream_draws(
        len(groups),
        intervals.resamples_for(intervals.Pooled.of(groups).work),
        intervals.rng_for(name),
    )
    figures: dict[str, list[float]] = {"p50": [], "p90": [], "p99": [], "mean": []}
    for row in draws:
        pooled = np.concatenate([np.repeat(g, c) for g, c in zip(groups, row, strict=True) if c])
        for key, q in intervals.QUANTILES.items():
            figures[key].append(float(np.percentile(pooled, q)))
        figures["mean"].append(float(pooled.mean()))
    ends = {k: np.percentile(v, [2.5, 97.5]) for k, v in figures.items()}
    return {k: (float(lo), float(hi)) for k, (lo, hi) in ends.items()}


def test_weighted_resamples_equal_repeating_the_streams_samples() -> None:
    rng = np.random.default_rng(1)
    groups = [list(rng.exponential(5, size=rng.integers(1, 30))) for _ in range(40)]
    fast = pooled_intervals(groups, "ttft_ms")
    for key, (lo, hi) in brute_force(groups, "ttft_ms").items():
        assert fast[key].lo == pytest.approx(lo) and fast[key].hi == pytest.approx(hi), key


def test_the_same_samples_give_the_same_interval() -> None:
    groups = [[float(k), float(k) + 1] for k in range(20)]
    assert pooled_intervals(groups, "x") == pooled_intervals(groups, "x")


def test_fewer_than_two_streams_have_no_interval() -> None:
    assert pooled_intervals([[1.0, 2.0, 3.0]], "x") == {}
    assert pooled_intervals([[1.0], []], "x") == {}
    assert ratio_interval([1.0], [1.0], "x") is None


def test_a_95_percent_interval_of_the_mean_covers_the_true_mean_about_95_times_in_100() -> None:
    """Known answer: 200 runs of 30 streams, each stream's samples around its own level
    (stream levels ~ N(10, 2), samples ~ N(level, 1)); the true mean is 10."""
    rng = np.random.default_rng(7)
    covered = 0
    for run in range(200):
        levels = rng.normal(10, 2, size=30)
        groups = [list(rng.normal(level, 1, size=20)) for level in levels]
        covered += pooled_intervals(groups, f"run{run}")["mean"].contains(10.0)
    assert 180 <= covered <= 199  # 95% of 200 is 190; a percentile bootstrap runs a bit low


def test_streams_not_samples_set_the_width() -> None:
    """Samples within a stream move together: 40 streams of 500 near-equal samples carry
    about 40 samples' worth of information, and the interval of the mean is as wide as 40
    independent draws would make it (1.96 x sd / sqrt(40)), not 20,000."""
    rng = np.random.default_rng(3)
    levels = rng.normal(0, 1, size=40)
    groups = [list(level + rng.normal(0, 0.01, size=500)) for level in levels]
    half = pooled_intervals(groups, "x")["mean"].half_width
    expected = 1.96 * float(np.std(levels)) / np.sqrt(40)
    assert expected * 0.75 < half < expected * 1.25


def test_a_ratio_over_streams_resamples_numerator_and_denominator_together() -> None:
    """Bytes per token where every stream has 10 bytes per token: no spread at all."""
    tokens = [float(t) for t in range(1, 30)]
    interval = ratio_interval([10 * t for t in tokens], tokens, "bytes")
    assert interval == Interval(10.0, 10.0)


def test_overlapping_intervals_tie_and_apart_they_do_not() -> None:
    near = {
        "sse": (344.0, Interval(340.0, 349.0)),
        "chunked": (345.0, Interval(341.0, 350.0)),
        "websocket": (348.0, Interval(343.0, 352.0)),
        "short_poll": (400.0, Interval(390.0, 410.0)),
    }
    tie = ranked(near)
    assert tie is not None and tie.tied and set(tie.leaders) == {"sse", "chunked", "websocket"}
    apart = ranked({"sse": (10.0, Interval(9.0, 11.0)), "chunked": (20.0, Interval(19.0, 21.0))})
    assert apart is not None and apart.leaders == ("sse",) and not apart.tied
    higher = ranked(
        {"sse": (10.0, Interval(9.0, 11.0)), "chunked": (20.0, Interval(19.0, 21.0))}, "higher"
    )
    assert higher is not None and higher.leaders == ("chunked",)


def test_equal_values_tie_without_intervals_and_all_equal_is_no_verdict() -> None:
    assert ranked({"a": (0.0, None), "b": (0.0, None)}) is None
    one = ranked({"a": (1.0, None), "b": (1.0, None), "c": (2.0, None)})
    assert one is not None and set(one.leaders) == {"a", "b"}
    assert ranked({"a": (1.0, None), "b": (None, None)}) is None
