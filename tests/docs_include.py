"""Code in the docs that cannot drift: fenced blocks included from files that tests run.

In a Markdown page, a marker line names the file (or a region of it) that the fenced block
right below it holds:

    <!-- include: tests/plugins/echo_server.py -->
    ```python
    ...the whole file...
    ```

    <!-- include: transports.py#websocket -->
    ```python
    ...the lines between `# region websocket` and `# endregion` in transports.py...
    ```

Paths are relative to the project folder. A region starts at a `# region NAME` line (words
may follow the name: say where it is shown) and ends at the next `# endregion`; its lines
are dedented, a region's trailing comma is dropped (an element of a tuple shows as an
expression) and region marker lines are never shown. This script rewrites every included
block from its file:

    python tests/docs_include.py            # update the blocks in docs/*.md and README.md
    python tests/docs_include.py --check    # only say which are stale (exit status 1)

and tests/test_docs.py fails while any block differs from its file, printing that command.
It needs nothing but the standard library.
"""

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python tests/docs_include.py"
MARKER = re.compile(r"^<!-- include: (?P<path>[^#\s]+)(?:#(?P<region>[\w-]+))? -->$")
REGION = re.compile(r"^\s*# region (?P<name>[\w-]+)(?:\s.*)?$")
END_REGION = re.compile(r"^\s*# endregion\s*$")
LANGUAGES = {".py": "python", ".toml": "toml", ".js": "js", ".sh": "sh"}


class IncludeError(Exception):
    """A marker that cannot be honoured: no such file or region, no fenced block below it."""


def pages(root: Path = ROOT) -> list[Path]:
    """The pages whose included blocks are kept up to date."""
    return [*sorted((root / "docs").glob("*.md")), root / "README.md"]


@dataclass(frozen=True, slots=True)
class Include:
    """One included block of a page: its marker's line (from 1), what it names, what the
    page holds now (`shown`) and what the file holds (`source`)."""

    page: Path
    line: int
    target: str  # path, or path#region
    fence: str  # the block's opening fence line, as the page has it
    language: str
    shown: str
    source: str
    start: int  # index of the block's first content line in the page's lines
    end: int  # index of its closing fence

    @property
    def stale(self) -> bool:
        return self.shown != self.source or self.fence != f"```{self.language}"


def source_of(target: str, root: Path = ROOT) -> str:
    """The text an include marker names: the whole file, or one region of it, without the
    region marker lines."""
    path, _, region = target.partition("#")
    file = root / path
    if not file.is_file():
        raise IncludeError(f"{path} does not exist")
    lines = file.read_text(encoding="utf-8").splitlines()
    if region:
        starts = [
            i for i, line in enumerate(lines) if (m := REGION.match(line)) and m["name"] == region
        ]
        if len(starts) != 1:
            found = "no" if not starts else f"{len(starts)}"
            raise IncludeError(f"{path} has {found} `# region {region}` line (needs one)")
        ends = [i for i in range(starts[0] + 1, len(lines)) if END_REGION.match(lines[i])]
        if not ends:
            raise IncludeError(f"{path}: `# region {region}` has no `# endregion` after it")
        lines = lines[starts[0] + 1 : ends[0]]
    kept = [line for line in lines if not REGION.match(line) and not END_REGION.match(line)]
    text = textwrap.dedent("\n".join(kept)).strip("\n")
    if region and text.endswith(","):  # an element of a tuple shows as an expression, which
        text = text[:-1]  # `ruff format` leaves as it is (it formats the docs' code too)
    return text + "\n"


def includes(page: Path, root: Path = ROOT) -> list[Include]:
    """Every included block of `page`, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Include] = []
    for i, line in enumerate(lines):
        marker = MARKER.match(line.strip())
        if marker is None:
            continue
        where = f"{page.relative_to(root)}:{i + 1}"
        opening = lines[i + 1] if i + 1 < len(lines) else ""
        if not opening.startswith("```"):
            raise IncludeError(f"{where}: an include marker needs a fenced block on the next line")
        end = next((k for k in range(i + 2, len(lines)) if lines[k] == "```"), None)
        if end is None:
            raise IncludeError(f"{where}: the fenced block below the include marker never closes")
        target = marker["path"] + (f"#{marker['region']}" if marker["region"] else "")
        try:
            source = source_of(target, root)
        except IncludeError as exc:
            raise IncludeError(f"{where}: {exc}") from None
        if any(line.startswith("```") for line in source.splitlines()):
            raise IncludeError(f"{where}: {target} holds a ``` line, which would end the block")
        language = LANGUAGES.get(Path(marker["path"]).suffix, "")
        shown = "".join(f"{line}\n" for line in lines[i + 2 : end])
        found.append(Include(page, i + 1, target, opening, language, shown, source, i + 2, end))
    return found


def updated(page: Path, root: Path = ROOT) -> str:
    """The page's text with every included block rewritten from its file."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for include in reversed(includes(page, root)):  # from the end: indices stay valid
        block = [f"```{include.language}", *include.source.splitlines()]
        lines[include.start - 1 : include.end] = block
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = [i for page in pages() for i in includes(page) if i.stale]
    said = "differs from" if check else "updated from"
    for include in stale:
        print(f"{include.page.relative_to(ROOT)}:{include.line}: {said} {include.target}")
    if check:
        if stale:
            print(f"update them with: {COMMAND}")
        return 1 if stale else 0
    for page in sorted({i.page for i in stale}):
        page.write_text(updated(page), encoding="utf-8")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except IncludeError as exc:
        sys.exit(f"docs_include: {exc}")
