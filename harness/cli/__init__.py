"""`bench.py` subcommands, one module each: `NAME`, `HELP`, `add_arguments(parser)` and
`run(args, argv) -> exit status`. Adding a command means adding a module and listing it in
`COMMANDS`; bench.py itself only parses and dispatches."""

from __future__ import annotations

from types import ModuleType

from harness.cli import run, serve

COMMANDS: tuple[ModuleType, ...] = (run, serve)
