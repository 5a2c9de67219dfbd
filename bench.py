#!/usr/bin/env python3
"""tokenwire: how should tokens get from the model to the user? Measure it.

Run `python bench.py COMMAND --help` for each command's flags.
"""

from __future__ import annotations

import argparse
import sys

from errors import UserError
from harness.cli import COMMANDS
from harness.cli.common import Parser


def build_parser() -> Parser:
    parser = Parser(
        prog="bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        sub = commands.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args, argv))
    except UserError as exc:
        message = str(exc)
        print(message if message.startswith("bench.py") else f"bench.py: error: {message}",
              file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        print("bench.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
