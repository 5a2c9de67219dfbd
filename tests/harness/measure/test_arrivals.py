"""Open-loop arrival schedules: known answers for constant, the rate recovered for poisson."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from harness.measure.arrivals import arrival_offsets


def test_constant_arrivals_are_exactly_k_over_rate() -> None:
    assert arrival_offsets(5, 20.0, "constant", seed=1) == [0.0, 0.05, 0.1, 0.15, 0.2]
    offsets = arrival_offsets(1000, 7.0, "constant", seed=3)
    assert offsets == [k / 7.0 for k in range(1000)]


def test_poisson_gaps_recover_the_rate() -> None:
    rate = 50.0
    offsets = arrival_offsets(20_001, rate, "poisson", seed=1)
    gaps = np.diff(offsets)
    assert offsets[0] == 0.0
    assert all(b > a for a, b in pairwise(offsets))  # strictly increasing
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.03)  # the mean's sd is ~0.7%
    # exponential gaps: as spread as they are long (a constant schedule's spread is 0)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_the_same_seed_gives_the_same_schedule() -> None:
    first = arrival_offsets(100, 10.0, "poisson", seed=7)
    assert first == arrival_offsets(100, 10.0, "poisson", seed=7)
    assert first != arrival_offsets(100, 10.0, "poisson", seed=8)
    assert arrival_offsets(50, 10.0, "poisson", seed=7) == first[:50]  # a prefix, for any n


def test_edge_counts_and_bad_arguments() -> None:
    assert arrival_offsets(0, 5.0, "poisson", seed=1) == []
    assert arrival_offsets(1, 5.0, "poisson", seed=1) == [0.0]
    for rate in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="rate must be a positive finite number"):
            arrival_offsets(3, rate, "constant", seed=1)
    with pytest.raises(ValueError, match="unknown arrivals 'bursty'; allowed: poisson, constant"):
        arrival_offsets(3, 5.0, "bursty", seed=1)
