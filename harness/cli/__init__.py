"""`bench.py` subcommands, one module each: `NAME`, `HELP`, `add_arguments(parser)` and
`run(args, argv) -> exit status`. Adding a command means adding a module and listing it in
`COMMANDS`; bench.py itself only parses and dispatches."""

from __future__ import annotations

from types import ModuleType

from harness.cli import (
    baseline,
    capacity,
    check,
    compare,
    llm_server,
    load,
    probe,
    record,
    report,
    run,
    serve,
)

COMMANDS: tuple[ModuleType, ...] = (
    run,
    serve,
    record,
    llm_server,
    report,
    compare,
    load,
    check,
    baseline,
    probe,
    capacity,
)
