"""The docs cannot drift from the code: included code blocks match their files
(tests/docs_include.py), docs/architecture.md's layout lists every module and nothing else,
and every module path or dotted project name the docs mention exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from docs_include import COMMAND, includes, pages
from support import ROOT

GUIDE = ROOT / "docs" / "adding-a-transport.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


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


# --- docs/architecture.md's layout ------------------------------------------------------------

# Not walked: hidden folders (.git, .ci, a .venv), caches, and tests/, which the layout names
# as one folder (it mirrors the code's folders; each test module says what it covers).
SKIPPED_DIRS = {"__pycache__", "node_modules", "build", "dist"}
UNLISTED = {"tests", "results"}
ENTRY = re.compile(r"^(?P<indent>(?:│   |    )*)[├└]── (?P<name>\S+)")


def project_modules(root: Path = ROOT) -> set[str]:
    """Every .py file of the project, relative to `root`, tests/ aside."""
    found: set[str] = set()
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        folders = parts[:-1]
        if folders and folders[0] in UNLISTED:
            continue
        if any(p.startswith(".") or p in SKIPPED_DIRS or p.endswith(".egg-info") for p in folders):
            continue
        if any(
            (root.joinpath(*folders[: k + 1]) / "pyvenv.cfg").exists() for k in range(len(folders))
        ):
            continue
        found.add("/".join(parts))
    return found


def layout_entries(text: str) -> list[str]:
    """The paths the `## Layout` tree names, in order: `folder/` for a folder, `folder/name`
    for a file (an entry's name is its first word; its nesting gives its folder)."""
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    entries: list[str] = []
    folders: list[str] = []
    for line in block.splitlines():
        entry = ENTRY.match(line)
        if entry is None:
            continue
        depth = len(entry["indent"]) // 4
        folders = folders[:depth]
        entries.append("".join(folders) + entry["name"])
        if entry["name"].endswith("/"):
            folders.append(entry["name"])
    return entries


def test_layout_parsing() -> None:
    tree = [
        "## Layout",
        "```",
        ".",
        "├── a.py    x",
        "├── b/      y",
        "│   ├── c.py  z",
        "│   │         more of c.py's description",
        "│   └── d/",
        "│       └── e.py",
        "└── f.toml",
        "```",
    ]
    entries = layout_entries("\n".join(tree))
    assert entries == ["a.py", "b/", "b/c.py", "b/d/", "b/d/e.py", "f.toml"]


def test_the_architecture_layout_lists_every_module() -> None:
    """Each module has its line in the tree (a package's folder line stands for its
    __init__.py), and each line names a file or folder that exists."""
    listed = layout_entries(ARCHITECTURE.read_text(encoding="utf-8"))
    covered = set(listed) | {f"{e}__init__.py" for e in listed if e.endswith("/")}
    # a package missing shows as its folder: its line stands for its __init__.py
    missing = sorted(m.removesuffix("__init__.py") for m in project_modules() - covered)
    extra = [e for e in listed if not (ROOT / e).exists()]
    repeated = sorted({e for e in listed if listed.count(e) > 1})
    problems = []
    if missing:
        problems.append("add a line (under its folder) for each of: " + ", ".join(missing))
    if extra:
        problems.append("remove the lines of (no such file or folder): " + ", ".join(extra))
    if repeated:
        problems.append("list once: " + ", ".join(repeated))
    assert not problems, (
        f"{ARCHITECTURE.relative_to(ROOT)}'s layout tree is out of date; "
        + "; ".join(problems)
        + " (tests/ is one line: its modules are not listed)"
    )


# --- names the docs mention ---------------------------------------------------------------------

# Files of other projects that the docs name (docs/wire-protocol.md: LangChain's chat app).
ELSEWHERE = {"schemas.py", "callback.py"}
MODULE_PATH = re.compile(r"(?<![\w/.<>*{}-])((?:[\w-]+/)*[\w-]+\.py)\b")
PACKAGES = ("wire", "servers", "clients", "harness", "transports", "errors")
DOTTED = re.compile(rf"(?<![\w./-])(?:{'|'.join(PACKAGES)})(?:\.\w+)+")


def mentioned(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(page, match) for every match in the docs and the README."""
    return [
        (page.relative_to(ROOT).as_posix(), m.group(0))
        for page in pages()
        for m in pattern.finditer(page.read_text(encoding="utf-8"))
    ]


def test_every_module_path_the_docs_name_exists() -> None:
    """`path/to/module.py` exists from the project folder (or, written from a folder down,
    ends an existing path); a bare `name.py` is some module's name."""
    everything = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")}
    names = {Path(p).name for p in everything}
    gone = sorted(
        {
            f"{page}: {path}"
            for page, path in mentioned(MODULE_PATH)
            if path not in ELSEWHERE
            and not (
                (ROOT / path).is_file()
                or ("/" not in path and path in names)
                or any(p.endswith("/" + path) for p in everything)
            )
        }
    )
    assert not gone, "the docs name modules that do not exist: " + ", ".join(gone)


def defines(module: Path, names: list[str]) -> bool:
    """Whether `module` defines `names[0]` at its top level (in an `if` or `try` too), and,
    when it is a class, `names[1]` in its body."""
    body = ast.parse(module.read_text(encoding="utf-8")).body
    for name in names[:2]:
        found: ast.AST | None = None
        pending = list(body)
        while pending:
            node = pending.pop()
            if isinstance(node, ast.If | ast.Try):
                pending += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
                pending += [s for h in getattr(node, "handlers", []) for s in h.body]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if node.name == name:
                    found = node
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(
                    name in {n.id for n in ast.walk(t) if isinstance(n, ast.Name)} for t in targets
                ):
                    found = node
            elif isinstance(node, ast.Import | ast.ImportFrom) and any(
                (a.asname or a.name.split(".")[0]) == name for a in node.names
            ):
                found = node
        if found is None:
            return False
        if not isinstance(found, ast.ClassDef):
            return True
        body = found.body
    return True


def resolves(dotted: str) -> bool:
    """Whether a dotted project name names a module, or something a module defines."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:k])
        module = next(
            (m for m in (base.with_suffix(".py"), base / "__init__.py") if m.is_file()), None
        )
        if module is not None:
            return k == len(parts) or defines(module, parts[k:])
    return False


def test_every_project_name_the_docs_mention_exists() -> None:
    """`servers.streaming.framed_batches`, `harness.cli`: a module, or a name one defines."""
    gone = sorted(
        {
            f"{page}: {name}"
            for page, name in mentioned(DOTTED)
            if not name.endswith(".py") and not resolves(name)
        }
    )
    assert not gone, "the docs name things that do not exist: " + ", ".join(gone)
