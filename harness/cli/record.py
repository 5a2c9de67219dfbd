"""`bench.py record`: record real token timing from a live model into a trace file."""

from __future__ import annotations

import argparse
from pathlib import Path

from errors import UsageError
from harness.cli.common import PROJECT_ROOT, add_endpoint, add_max_tokens, add_out

NAME = "record"
HELP = "record a live model's token timing into a trace for exact replay"
DESCRIPTION = (
    "Stream each prompt from an OpenAI-compatible endpoint (one at a time, temperature 0) and "
    "write every content delta's text and arrival time to a JSON Lines trace. Replay it with "
    "`bench.py run --source trace:FILE`. The API key is read from OPENAI_API_KEY or "
    "TOKENWIRE_API_KEY; local servers need none."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_endpoint(
        parser,
        url_help="e.g. http://127.0.0.1:8080/v1",
        model_help="model name to ask for",
        required=True,
    )
    parser.add_argument(
        "--prompts",
        type=Path,
        default=PROJECT_ROOT / "scenarios" / "prompts.txt",
        metavar="FILE",
        help="one prompt per line, # for comments (default: scenarios/prompts.txt)",
    )
    add_max_tokens(parser, "cap per answer", default=64)
    add_out(parser, "trace file to write", metavar="FILE", required=True)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.measure.trace_recorder import run_record
    from harness.present.console import make_console

    try:
        lines = args.prompts.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(
            f"cannot read prompts file {args.prompts}: {exc.strerror or exc}"
        ) from None
    prompts = [p.strip() for p in lines if p.strip() and not p.strip().startswith("#")]
    if not prompts:
        raise UsageError(f"prompts file {args.prompts} holds no prompt")
    console = make_console()
    console.print(
        f"recording {len(prompts)} prompts from {args.model} at {args.base_url}", highlight=False
    )
    traced = run_record(args.base_url, args.model, prompts, args.max_tokens, args.out)
    tokens = sum(len(t.tokens) for t in traced)
    console.print(
        f"wrote {args.out}: {len(traced)} requests, {tokens} content deltas", highlight=False
    )
    return 0
