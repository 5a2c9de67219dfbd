"""Server settings that are not part of any one request: lifetimes, limits and test aids.

Every field is also a command-line flag of `python -m servers.run` and `bench.py serve`
(`--idle-timeout-s 30`), generated from the field itself, so a new setting is one line here.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from typing import Any


def setting(default: float | int, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True, slots=True)
class ServerSettings:
    idle_timeout_s: float = setting(
        30.0, "a stream that nobody reads or polls for this long is cancelled"
    )
    retention_s: float = setting(600.0, "a finished stream's timeline stays fetchable this long")
    max_long_poll_wait_s: float = setting(60.0, "the longest `wait` a long poll may ask for")
    resume_grace_s: float = setting(
        5.0, "a push stream whose reader left waits this long for a resume before it is cancelled"
    )
    # limits: each refusal is a 4xx JSON error naming the setting
    max_body_bytes: int = setting(1 << 20, "the largest request body accepted (413 beyond)")
    max_prompt_chars: int = setting(100_000, "the longest prompt accepted (400 beyond)")
    max_tokens_limit: int = setting(65_536, "the largest max_tokens a request may ask for")
    max_active_streams: int = setting(
        10_000, "generations running at once; more are refused with 503 and Retry-After"
    )
    request_timeout_s: float = setting(
        10.0, "a request head or body that has not arrived whole by then is dropped"
    )
    max_model_name_chars: int = setting(256, "the longest `model` name a chat request may give")
    # test aids for the regression check: a deliberate slowdown and deliberate bloat
    inject_delay_ms: float = setting(0.0, "test aid: hold every token this long after the source")
    inject_pad_bytes: int = setting(0, "test aid: pad every token message with this many bytes")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("server settings")
        for f in fields(ServerSettings):
            default = f.default if f.default is not MISSING else None
            group.add_argument(
                "--" + f.name.replace("_", "-"),
                type=type(default),
                default=default,
                help=f"{f.metadata['help']} (default {default})",
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServerSettings:
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    def to_args(self) -> list[str]:
        """Flags that reproduce these settings where they differ from the defaults."""
        default = ServerSettings()
        return [
            arg
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
            for arg in ("--" + f.name.replace("_", "-"), str(getattr(self, f.name)))
        ]
