"""The client kinds by name: the one registry of who can read a phase's streams
(`scenario.client`, `bench.py run --client`). Each is a `ClientKind` (`kinds.py`).

`harness.measure.browser.capability.CLIENTS` lists the same names for scenario validation
and the CLI's choices, which must not import the kinds themselves (they are not light:
Chromium's session, the asyncio driver); tests/harness/measure/test_client_kinds.py checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from errors import ScenarioError
from harness.measure.browser.client import BROWSER
from harness.measure.run.kinds import ClientKind
from harness.measure.run.python_clients import PYTHON

CLIENT_KINDS: Mapping[str, ClientKind] = MappingProxyType(
    {kind.name: kind for kind in (PYTHON, BROWSER)}
)


def client_kind(name: str) -> ClientKind:
    """The kind named `name`; ScenarioError (one line) for a name no kind has."""
    try:
        return CLIENT_KINDS[name]
    except KeyError:
        allowed = ", ".join(CLIENT_KINDS)
        raise ScenarioError(f"unknown client {name!r}; allowed: {allowed}") from None
