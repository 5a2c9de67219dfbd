"""How tokenwire's generated locust User classes are named and tagged (no locust import
here: `bench.py load` names the classes on locust's command line without loading it)."""

from __future__ import annotations

from transports import Transport


def user_class_name(transport: Transport) -> str:
    """`SSE` -> `SSEUser`: the class to select on locust's command line."""
    return f"{transport.title}User"


def user_tags(transport: Transport) -> tuple[str, str]:
    """A User class's tags: the transport's name and its kind (`push`, `poll`, ...)."""
    return transport.name, str(transport.kind)
