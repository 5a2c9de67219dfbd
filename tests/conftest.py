"""Shared fixtures: real tokenwire servers as subprocesses on loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import serve

from harness.measure.server_process import ServerProcess
from servers.sources.corpus import corpus_tokens
from servers.sources.spec import SourceSpec

# Fast, and long enough that every stream wraps the whole corpus: every tricky token
# (CRLF, U+2028, emoji, CJK, "data: [DONE]") crosses every transport.
FULL_CORPUS = SourceSpec(
    preset="chat", ttft_ms=5, tokens_per_s=4000, tokens_per_response=len(corpus_tokens()) + 20
)


@pytest.fixture(scope="session")
def corpus_spec() -> SourceSpec:
    return FULL_CORPUS


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "server", FULL_CORPUS)


@pytest.fixture(scope="session")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Drops a stream nobody reads or polls for 0.3 s; a push reader that left has 0.5 s to
    resume."""
    spec = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=20, tokens_per_response=400)
    args = ("--idle-timeout-s", "0.3", "--resume-grace-s", "0.5")
    yield from serve(tmp_path_factory, "impatient", spec, *args)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "server.log"
