"""The docs cannot drift from the code: included code blocks match their files
(tests/docs_include.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_include import COMMAND, includes, pages
from support import ROOT

GUIDE = ROOT / "docs" / "adding-a-transport.md"


# --- included code --------------------------------------------------------------------------


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_included_code_is_its_file(page: Path) -> None:
    stale = [f"line {i.line}: {i.target}" for i in includes(page) if i.stale]
    assert not stale, (
        f"{page.relative_to(ROOT)} shows code that differs from its file "
        f"({'; '.join(stale)}); update it with: {COMMAND}"
    )


FENCE = re.compile(r"^```(?P<language>\S*)")


def test_every_python_block_of_the_guide_is_included() -> None:
    """No hand-copied code: each Python block of the transport guide is a file that tests
    import and run, or a named region of one."""
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    opened = False
    hand_written = []
    for k, line in enumerate(lines):
        if (fence := FENCE.match(line)) is None:
            continue
        if not opened and fence["language"] == "python":
            previous = lines[k - 1].strip() if k else ""
            if not previous.startswith("<!-- include: "):
                hand_written.append(k + 1)
        opened = not opened
    assert not hand_written, (
        f"{GUIDE.relative_to(ROOT)}: the Python blocks at lines {hand_written} are not included "
        "from a file; put the code in a file a test runs and include it "
        "(see tests/docs_include.py)"
    )


def test_the_guide_shows_the_echo_transport_whole() -> None:
    shown = {i.target for i in includes(GUIDE)}
    for part in ("echo_transport.py", "echo_server.py", "echo_client.py"):
        assert f"tests/plugins/{part}" in shown
