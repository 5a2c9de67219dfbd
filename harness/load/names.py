"""How tokenwire's generated locust User classes are named and tagged (no locust import
here: `bench.py load` names the classes on locust's command line without loading it), and
which transports have one."""

from __future__ import annotations

from dataclasses import replace

from errors import UsageError
from harness.measure.scenario import Scenario
from transports import TRANSPORTS, Transport


def with_users(scenario: Scenario) -> Scenario:
    """The scenario's transports that locust's blocking clients can run: `all` without
    those over QUIC (they have no QUIC client); one named on its own is a UsageError."""
    quic = scenario.quic_transports()
    if quic and scenario.transports == TRANSPORTS.names():
        return replace(scenario, transports=tuple(t for t in TRANSPORTS.names() if t not in quic))
    if quic:
        raise UsageError(
            f"the load test's users are blocking clients (locust), which have no QUIC client "
            f"for {', '.join(quic)}: drop it (bench.py run --rate measures open-loop load "
            "over it)"
        )
    return scenario


def user_class_name(transport: Transport) -> str:
    """`SSE` -> `SSEUser`: the class to select on locust's command line."""
    return f"{transport.title}User"


def user_tags(transport: Transport) -> tuple[str, str]:
    """A User class's tags: the transport's name and its kind (`push`, `poll`, ...)."""
    return transport.name, str(transport.kind)
