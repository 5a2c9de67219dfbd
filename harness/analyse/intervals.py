"""Confidence intervals for summary figures: a bootstrap over streams.

A run's figures come from streams, and the samples of one stream (its inter-token gaps,
its tokens' added delays) are not independent of each other: a stream that started in a
busy moment is late throughout. So the unit resampled is the stream (a cluster
bootstrap): each resample draws the run's streams with replacement, pools the samples of
the streams drawn (a stream drawn twice counts twice), and computes the figure again. The
interval is the 2.5th to 97.5th percentile of those figures (95% by default).

Resampling is seeded from the figure's name, so the same records give the same interval
every time (a saved run's report and its re-analysis agree). Pooled percentiles are
computed from each resample's weights without copying samples (`Pooled`), exactly as
numpy's percentile of the repeated samples would be. A figure of many samples gets fewer
resamples (`resamples_for`), never fewer than `MIN_RESAMPLES`.

This is the interval of a run of one round. The streams of one run share its server process
and its stretch of the machine's time, so it holds the noise within a run, not what varies
between runs; a repeated run's intervals are over its rounds (`harness.analyse.replications`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
MIN_RESAMPLES = 200
WORK = 200_000_000  # per figure: resamples x (streams x blocks), past it fewer resamples
CHUNK_CELLS = 4_000_000  # resamples x samples weighed at once (memory: 8 bytes each)
QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval [lo, hi] for one figure."""

    lo: float
    hi: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def overlaps(self, other: Interval) -> bool:
        return self.lo <= other.hi and other.lo <= self.hi

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


def resamples_for(samples: int) -> int:
    """`RESAMPLES`, fewer for a figure of many samples (`WORK`), at least `MIN_RESAMPLES`."""
    return max(MIN_RESAMPLES, min(RESAMPLES, WORK // max(samples, 1)))


def rng_for(name: str) -> np.random.Generator:
    """The seeded generator of one figure: the same name, the same draws."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def stream_draws(streams: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each stream is drawn, per resample (resamples x streams): `streams`
    draws with replacement each, counted per stream."""
    picks = rng.integers(0, streams, size=(resamples, streams))
    picks += np.arange(resamples)[:, None] * streams  # each resample its own range of counts
    return np.bincount(picks.ravel(), minlength=resamples * streams).reshape(resamples, streams)


def bounds(figures: np.ndarray, level: float = LEVEL) -> Interval | None:
    """The middle `level` of resampled figures (NaN left out); None when none is finite."""
    figures = figures[np.isfinite(figures)]
    if figures.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(figures, [tail, 100 - tail])
    return Interval(float(lo), float(hi))


def pooled_resamples(
    groups: Sequence[Sequence[float]],
    name: str,
    resamples: int | None = None,
) -> dict[str, np.ndarray]:
    """The pooled p50, p90, p99 and mean of the samples of every stream (one group per
    stream; a group of one for a per-stream figure such as TTFT), once per resample of the
    streams. Empty when fewer than two streams have samples (nothing to resample)."""
    groups = [g for g in groups if len(g)]
    if len(groups) < 2:
        return {}
    pooled = Pooled.of(groups)
    count = resamples or resamples_for(pooled.work)
    draws = stream_draws(len(groups), count, rng_for(name))
    figures: dict[str, list[np.ndarray]] = {k: [] for k in (*QUANTILES, "mean")}
    rows = max(1, CHUNK_CELLS // max(pooled.blocks.shape[1], pooled.block))
    for start in range(0, count, rows):
        chunk = draws[start : start + rows].astype(float)
        figures["mean"].append(chunk @ pooled.sums / (chunk @ pooled.counts))
        for key, q in QUANTILES.items():
            figures[key].append(pooled.quantile(chunk, q))
    return {k: np.concatenate(parts) for k, parts in figures.items()}


def pooled_intervals(
    groups: Sequence[Sequence[float]], name: str, level: float = LEVEL
) -> dict[str, Interval]:
    """The intervals of `pooled_resamples`' figures."""
    return {
        k: bound
        for k, figures in pooled_resamples(groups, name).items()
        if (bound := bounds(figures, level)) is not None
    }


MIN_BLOCK = 64  # sorted samples per block of `Pooled`, at least
MAX_BLOCKS = 256  # blocks of `Pooled`, at most (more samples: larger blocks)


def block_size(samples: int) -> int:
    """Sorted samples per block of `Pooled`: at most `MAX_BLOCKS` blocks."""
    return max(MIN_BLOCK, -(-samples // MAX_BLOCKS))


def pooled_work(streams: int, samples: int) -> int:
    """`Pooled.work` of `streams` streams holding `samples` samples, without pooling them."""
    return streams * -(-samples // block_size(samples))


@dataclass(frozen=True, slots=True)
class Pooled:
    """The streams' samples sorted once, each with its stream's number, and how many of
    each stream's samples fall in each block of `block` consecutive sorted samples. A
    resample weights each sample by the times its stream was drawn; its weighted
    percentile is found by block first (one matrix product for every block and resample),
    then within the one block that holds it: exact, without weighing every sample."""

    values: np.ndarray  # sorted
    owner: np.ndarray  # the stream of each sorted sample
    blocks: np.ndarray  # streams x blocks: each stream's samples in each block
    sums: np.ndarray  # per stream: the sum of its samples
    counts: np.ndarray  # per stream: its samples
    block: int  # sorted samples per block

    @classmethod
    def of(cls, groups: Sequence[Sequence[float]]) -> Pooled:
        values = np.concatenate([np.asarray(g, dtype=float) for g in groups])
        owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        order = np.argsort(values, kind="stable")
        values, owner = values[order], owner[order]
        block = block_size(values.size)
        cells = owner * -(-values.size // block) + np.arange(values.size) // block
        shape = (len(groups), -(-values.size // block))
        blocks = np.bincount(cells, minlength=shape[0] * shape[1]).reshape(shape).astype(float)
        sums = np.bincount(owner, weights=values, minlength=len(groups))
        counts = np.bincount(owner, minlength=len(groups)).astype(float)
        return cls(values, owner, blocks, sums, counts, block)

    @property
    def work(self) -> int:
        """What one resample costs, in the units of `WORK`."""
        return int(self.blocks.size)

    def quantile(self, draws: np.ndarray, q: float) -> np.ndarray:
        """Per resample (a row of `draws`: times each stream was drawn), numpy's linear
        interpolation percentile `q` of the samples each repeated as often as its stream
        was drawn."""
        in_blocks = np.cumsum(draws @ self.blocks, axis=1)  # resample x block: cumulative
        total = in_blocks[:, -1]
        position = (total - 1) * q / 100
        below = np.floor(position)
        low = self._kth(draws, in_blocks, below)
        high = self._kth(draws, in_blocks, np.minimum(below + 1, total - 1))
        result: np.ndarray = low + (position - below) * (high - low)
        return result

    def _kth(self, draws: np.ndarray, in_blocks: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Per resample, the k-th (from 0) of its weighted samples."""
        rows = np.arange(draws.shape[0])
        block = (in_blocks <= k[:, None]).sum(axis=1)  # the first block past k samples
        before = np.where(block > 0, in_blocks[rows, np.maximum(block - 1, 0)], 0.0)
        index = block[:, None] * self.block + np.arange(self.block)  # the block's samples
        inside = index < self.values.size
        index = np.minimum(index, self.values.size - 1)
        weights = np.where(inside, draws[rows[:, None], self.owner[index]], 0.0)
        reached = np.cumsum(weights, axis=1) + before[:, None]
        step = (reached <= k[:, None]).sum(axis=1)  # the first sample past k
        found: np.ndarray = self.values[index[rows, step]]
        return found


def ratio_resamples(
    numerators: Sequence[float],
    denominators: Sequence[float],
    name: str,
    resamples: int | None = None,
) -> np.ndarray | None:
    """sum(numerators) / sum(denominators) over the streams of each resample (NaN where a
    resample's denominators sum to 0); None with fewer than two streams."""
    top = np.asarray(numerators, dtype=float)
    bottom = np.asarray(denominators, dtype=float)
    if top.size < 2:
        return None
    count = resamples or resamples_for(top.size)
    draws = stream_draws(top.size, count, rng_for(name))
    below = draws @ bottom
    with np.errstate(divide="ignore", invalid="ignore"):
        figures: np.ndarray = np.where(below > 0, (draws @ top) / below, np.nan)
    return figures


def ratio_interval(
    numerators: Sequence[float],
    denominators: Sequence[float],
    name: str,
    level: float = LEVEL,
) -> Interval | None:
    """The interval of sum(numerators) / sum(denominators) over streams (bytes per token,
    tokens per second of the window: give each stream window / streams), resampling
    streams. None with fewer than two streams."""
    figures = ratio_resamples(numerators, denominators, name)
    return None if figures is None else bounds(figures, level)


def median_interval(values: Sequence[float], name: str, level: float = LEVEL) -> Interval | None:
    """The interval of the median of one value per stream."""
    return pooled_intervals([[v] for v in values], name, level).get("p50")
