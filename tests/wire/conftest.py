"""Shared cases for the sans-I/O wire tests.

Values reach the test modules as fixtures (and, for per-token and per-stream parametrisation,
through `pytest_generate_tests`), so nothing imports this file by name.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

import pytest

Chunks = list[bytes]
Partitioner = Callable[[bytes, str], Iterator[tuple[str, Chunks]]]

TRICKY_TOKENS: list[str] = [
    "Hello",
    "\n",
    "\r\n",
    "\r",
    "\n\n",
    "a\nb",
    "line1\r\nline2",
    "cr\ronly",
    "data:",
    "data: [DONE]",
    "[DONE]",
    'data: {"i":0}\n\n',
    "id: 5",
    "event: end",
    ": comment",
    " leading",
    "  two leading spaces",
    " ",
    "\u2028",
    "x\u2028y",
    "\u2029",
    "\u0085",
    "\x0b\x0c\x1c\x1d\x1e",
    "😀",
    "👩‍💻",
    "🇯🇵",
    "e\u0301",
    "\ufeff",
    "日本語のテキスト",
    "한국어",
    "中文，标点。",
    '"}',
    '{"i":1,"t":"x"}',
    "\\",
    "\\n",
    "\t",
    "\x00",
    "null",
]

# Exactly 5,000 code points mixing every awkward class of character, so a transport sees
# multi-byte sequences, escapes and line-break look-alikes deep inside one message.
_LONG_UNIT = '日本語 👩‍💻 🇯🇵 \u2028\u2029\u0085 data: [DONE]\r\n\\"} ń '
LONG_TOKEN: str = (_LONG_UNIT * (5000 // len(_LONG_UNIT) + 1))[:5000]

RANDOM_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)

# (name, tokens, partition mode) of the streams the round trips cut: the tricky tokens at
# every split, one long token between two short ones at a handful of splits.
STREAM_CASES: list[tuple[str, list[str], str]] = [
    *(("tricky", TRICKY_TOKENS, m) for m in ("whole", "bytewise", "every_split", "random")),
    *(
        ("long", ["before", LONG_TOKEN, "after"], m)
        for m in ("whole", "bytewise", "some_splits", "random")
    ),
]


def split_at(data: bytes, cuts: list[int]) -> Chunks:
    """Cut `data` at the given offsets (sorted, distinct, strictly inside the data)."""
    bounds = [0, *cuts, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def random_partition(data: bytes, seed: int) -> Chunks:
    rng = random.Random(seed)
    if len(data) < 2:
        return [data]
    count = rng.randint(1, min(len(data) - 1, 40))
    return split_at(data, sorted(rng.sample(range(1, len(data)), count)))


def handful_of_cuts(data: bytes) -> list[int]:
    """A few two-way split points for long data: the edges, the middle, and cuts inside the
    first multi-byte UTF-8 sequences (continuation bytes are 0b10xxxxxx)."""
    inside = [k for k in range(1, len(data)) if data[k] & 0xC0 == 0x80][:6]
    edges = [1, 2, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1]
    return sorted({k for k in (*edges, *inside) if 0 < k < len(data)})


def partitions(data: bytes, mode: str) -> Iterator[tuple[str, Chunks]]:
    """Ways to deliver the same bytes, labelled for assertion messages.

    - `whole`: one read;
    - `bytewise`: one byte per read;
    - `every_split`: two reads, cut at every position;
    - `some_splits`: two reads, cut at `handful_of_cuts` (for long data);
    - `random`: many reads, cut at random positions (fixed seeds).
    """
    if mode == "whole":
        yield "whole", [data]
    elif mode == "bytewise":
        yield "bytewise", [data[k : k + 1] for k in range(len(data))]
    elif mode == "every_split":
        for k in range(1, len(data)):
            yield f"split@{k}", [data[:k], data[k:]]
    elif mode == "some_splits":
        for k in handful_of_cuts(data):
            yield f"split@{k}", [data[:k], data[k:]]
    elif mode == "random":
        for seed in RANDOM_SEEDS:
            yield f"random-seed{seed}", random_partition(data, seed)
    else:
        raise ValueError(f"unknown partition mode {mode!r}")


@pytest.fixture(name="tricky_tokens")
def fixture_tricky_tokens() -> list[str]:
    return list(TRICKY_TOKENS)


@pytest.fixture(name="long_token")
def fixture_long_token() -> str:
    return LONG_TOKEN


@pytest.fixture(name="partitions")
def fixture_partitions() -> Partitioner:
    return partitions


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_tokens" in metafunc.fixturenames:
        metafunc.parametrize(
            ("stream_tokens", "mode"),
            [(list(tokens), mode) for _, tokens, mode in STREAM_CASES],
            ids=[f"{name}-{mode}" for name, _, mode in STREAM_CASES],
        )
    if "tricky_token" in metafunc.fixturenames:
        metafunc.parametrize(
            "tricky_token",
            [*TRICKY_TOKENS, LONG_TOKEN],
            ids=[*(ascii(t)[:40] for t in TRICKY_TOKENS), "long5000"],
        )
