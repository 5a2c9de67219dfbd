"""A transport is named in one place: no module outside its own (`servers/<name>.py`,
`clients/<name>.py`), the registry (`transports.py`) and tests writes a transport's name as
a string. Everything else reads the registry, so a new transport, or one a user brings
(`TOKENWIRE_TRANSPORTS`), reaches every part of the project without an edit there.

The same words also name other things: the ASGI scope type and the HTTP `Upgrade` value
`websocket`, the transfer coding `chunked`, and the formats `bench.py probe` reads from
someone else's endpoint (`--kind sse`). Those places are listed below, each with the
meaning it has there; a new one must be added with its reason, or read the registry."""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

from transports import BUILTIN

NAMES = frozenset(BUILTIN.names())
OWN_MODULES = {"servers/polling.py", "servers/webhook.py", "transports.py"} | {
    f"{side}/{name}.py" for side in ("servers", "clients") for name in NAMES
}
# (module, the name as a string there): what it means there, since it is no transport
OTHER_MEANINGS = {
    ("servers/access.py", "websocket"): "the ASGI scope type of a WebSocket connection",
    ("servers/access.py", "chunked"): "the transfer coding",
    ("harness/measure/browser/request_log.py", "websocket"): "the ASGI scope type",
    ("servers/stacks/asgi_app.py", "websocket"): "the ASGI scope type",
    ("servers/stacks/aiohttp_server.py", "websocket"): "the value of the Upgrade header",
    ("servers/stacks/aiohttp_cors.py", "websocket"): "the value of the Upgrade header",
    ("servers/stacks/flask_app.py", "websocket"): "the value of the Upgrade header",
    ("clients/ws_io.py", "websocket"): "the value of the Upgrade header",
    ("harness/probe/request.py", "sse"): "a format probe reads (--kind), not a transport",
    ("harness/probe/request.py", "websocket"): "a format probe reads (--kind)",
    ("harness/probe/decode.py", "sse"): "a format probe reads",
    ("harness/probe/decode.py", "websocket"): "a format probe reads",
    ("harness/probe/analyse.py", "websocket"): "a format probe reads",
    ("harness/probe/read.py", "websocket"): "how probe reaches the endpoint",
}


def project_modules() -> list[Path]:
    skipped = {"tests", ".git", "node_modules", "results"}
    return sorted(p for p in ROOT.rglob("*.py") if not skipped & set(p.relative_to(ROOT).parts))


def named_transports(path: Path) -> set[str]:
    """The transport names written as whole string constants in a module (docstrings and
    comments aside: they explain, they do not decide)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in NAMES
        and id(node) not in docstrings
    }


def test_no_module_outside_a_transports_own_names_it() -> None:
    found = []
    for path in project_modules():
        where = str(path.relative_to(ROOT))
        if where in OWN_MODULES:
            continue
        found += [
            f"{where}: {name!r}"
            for name in sorted(named_transports(path))
            if (where, name) not in OTHER_MEANINGS
        ]
    assert not found, "transport names outside the registry:\n" + "\n".join(found)


def test_page_js_names_no_transport() -> None:
    """The browser page reads by reader, as the registry says which reader each uses."""
    page = (ROOT / "harness" / "measure" / "browser" / "page.js").read_text()
    for name in NAMES:
        assert f'"{name}"' not in page and f"{name}:" not in page, name


def test_the_allowed_other_meanings_are_still_there() -> None:
    """An entry of OTHER_MEANINGS that no longer applies is removed, not kept."""
    for module, name in OTHER_MEANINGS:
        assert name in named_transports(ROOT / module), (module, name)
