"""Intervals over rounds: known answers. Student's t over three rounds 1, 2 and 3;
Welch's interval as scipy's own Welch test gives it; a side of one round borrows the
other side's spread (a prediction interval)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from harness.analyse.replications import replication_interval, welch, welch_interval


def test_three_rounds_give_students_t_with_two_degrees_of_freedom() -> None:
    found = replication_interval(2.0, [1.0, 2.0, 3.0])
    assert found is not None
    half = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, 2) x s / sqrt(n), s = 1
    assert found.lo == pytest.approx(2.0 - half) and found.hi == pytest.approx(2.0 + half)


def test_too_few_rounds_or_a_missing_one_give_no_interval() -> None:
    assert replication_interval(2.0, [2.0]) is None
    assert replication_interval(2.0, [1.0, None, 3.0]) is None
    assert replication_interval(None, [1.0, 3.0]) is None


def test_welchs_interval_is_scipys() -> None:
    base, other = [0.20, 0.25, 0.18], [2.21, 2.30, 2.19, 2.26]
    difference = sum(other) / len(other) - sum(base) / len(base)
    found = welch_interval(difference, base, other)
    expected = stats.ttest_ind(other, base, equal_var=False).confidence_interval(0.95)
    assert found is not None
    assert found.lo == pytest.approx(expected.low) and found.hi == pytest.approx(expected.high)
    assert found.contains(2.0) and not found.contains(0.0)


def test_one_round_borrows_the_other_sides_spread() -> None:
    base = [1.0, 2.0, 3.0]  # mean 2, s = 1
    found = welch_interval(1.0, base, [3.0])
    half = 4.302653 * math.sqrt(1 / 3 + 1)  # t(0.975, 2) x s x sqrt(1/3 + 1/1)
    assert found is not None
    assert found.lo == pytest.approx(1.0 - half) and found.hi == pytest.approx(1.0 + half)
    assert welch_interval(1.0, [2.0], [3.0]) is None  # no spread anywhere
    assert welch_interval(1.0, base, [None]) is None


def test_rounds_without_any_spread_give_the_difference_itself() -> None:
    found = welch_interval(0.0, [1.0, 1.0, 1.0], [1.0, 1.0])
    assert found is not None and found.lo == found.hi == 0.0


def test_welchs_p_value_is_scipys() -> None:
    base, other = [0.20, 0.25, 0.18], [0.26, 0.30, 0.19, 0.28]
    difference = sum(other) / len(other) - sum(base) / len(base)
    found = welch(difference, base, other)
    assert found is not None
    expected = stats.ttest_ind(other, base, equal_var=False).pvalue
    assert found.p_value() == pytest.approx(expected)
