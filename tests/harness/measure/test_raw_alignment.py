"""`raw` pieces aligned to the source's tokens by cumulative length
(`harness.measure.run.joining.join`): a token counts as received with the piece that
brought its last character."""

from __future__ import annotations

import itertools

import pytest

from clients.interface import StreamResult
from harness.measure.run.joining import join, received_tokens
from harness.measure.run.timelines import Timeline
from wire.raw import AS_SENT, AS_SSE_DATA

TOKENS = ["He", "llo", " 日本", "😀", "", " a\r\nb", " end"]
EMIT = [1000 * (k + 1) for k in range(len(TOKENS))]


def timeline(tokens: list[str] = TOKENS) -> Timeline:
    return Timeline(
        tokens=len(tokens), emit_ns=list(EMIT[: len(tokens)]), texts=list(tokens), error=None
    )


def pieces_result(pieces: list[str], form: str = AS_SENT) -> StreamResult:
    """One piece per read, read k stamped 10_000 + k."""
    result = StreamResult("chunked", "s", scheduled_ns=0, pieces=form)
    for k, piece in enumerate(pieces):
        result.indices.append(k)
        result.recv_ns.append(10_000 + k)
        result.texts.append(piece)
        result.chunk_sizes.append(1)
    result.end_ns = 20_000
    return result


def cut(text: str, cuts: tuple[int, ...]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def expected_stamps(pieces: list[str]) -> list[int]:
    """Per token: the stamp of the piece holding its last character (an empty token: the
    piece that completed the token before it, or the first piece)."""
    ends = list(itertools.accumulate(len(p) for p in pieces))
    stamps = []
    for end in itertools.accumulate(len(t) for t in TOKENS):
        stamps.append(10_000 + next(k for k, e in enumerate(ends) if e >= end))
    return stamps


TEXT = "".join(TOKENS)


@pytest.mark.parametrize("cuts", [(), *((k,) for k in range(1, len(TEXT))), (1, 2, 3, 9, 10)])
def test_any_cut_aligns_every_token(cuts: tuple[int, ...]) -> None:
    pieces = cut(TEXT, cuts)
    record = join(0, 0, pieces_result(pieces), timeline())
    assert record.token_index == list(range(len(TOKENS)))
    assert record.recv_ns == expected_stamps(pieces)
    assert record.emit_ns == EMIT
    assert record.text_mismatches == 0
    assert record.token_bytes == [len(t.encode()) for t in TOKENS]
    assert sum(record.chunk_sizes) == len(TOKENS)
    assert len(record.chunk_sizes) == len(set(record.recv_ns))


def test_character_by_character() -> None:
    pieces = list(TEXT)
    got = received_tokens(pieces_result(pieces), timeline())
    assert got.texts == TOKENS
    assert got.chunk_sizes == [1, 1, 1, 2, 1, 1]  # the empty token shares 😀's read


def test_a_stream_cut_short_loses_the_tokens_whose_end_never_came() -> None:
    record = join(0, 0, pieces_result(["Hel", "lo 日"]), timeline())
    assert record.token_index == [0, 1]  # " 日本" lacks its last character
    assert record.text_mismatches == 0


def test_extra_text_is_a_mismatch() -> None:
    record = join(0, 0, pieces_result([TEXT, "!"]), timeline())
    assert record.token_index == list(range(len(TOKENS)))
    assert record.text_mismatches == 1


def test_a_duplicate_shifts_what_follows_into_mismatches() -> None:
    """What raw cannot tell: a repeated piece is no duplicate, only text out of place."""
    record = join(0, 0, pieces_result(["He", "He", "llo 日本😀 a\r\nb end"]), timeline())
    assert len(record.token_index) == len(set(record.token_index))  # no duplicate counted
    assert record.text_mismatches > 0


def test_sse_pieces_align_by_the_form_text_takes_on_sse() -> None:
    """Over SSE a CR or CRLF arrives as LF: the lengths follow that form, and the token that
    lost its CR is a mismatch, not a loss."""
    sent = "".join(TOKENS).replace("\r\n", "\n")
    record = join(0, 0, pieces_result([sent[:5], sent[5:]], form=AS_SSE_DATA), timeline())
    assert record.token_index == list(range(len(TOKENS)))
    assert record.text_mismatches == 1


def test_without_a_timeline_pieces_stay_as_they_came() -> None:
    result = pieces_result(["ab", "c"])
    record = join(0, 0, result, None)
    assert record.token_index == [0, 1] and record.error_kind == "timeline"


def test_tokens_with_boundaries_are_untouched() -> None:
    result = pieces_result(["He", "llo"])
    result.pieces = None
    got = received_tokens(result, timeline())
    assert got.indices is result.indices and got.texts is result.texts
