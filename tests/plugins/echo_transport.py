"""A throwaway seventh transport, `echo`, in three modules of its own: its server side
(`echo_server.py`: a router that streams a generation as NDJSON lines), its client side
(`echo_client.py`: the exchange logic) and this registry entry. Nothing else in the project
names it.

The tests register it on a copy of the registry (`TRANSPORTS.with_transport(ECHO)`), or for
whole `bench.py` runs, whose server and clients are other processes, through the variable
`TOKENWIRE_TRANSPORTS=tests.plugins.echo_transport:ECHO`, which every process reads. The
entry names its two sides as strings, as the built-in ones do: this module is imported
while the registry is being made, so it may import nothing that reads the registry."""

from __future__ import annotations

from transports import Capabilities, Kind, Transport
from wire import carriages

ECHO = Transport(
    name="echo",
    kind=Kind.PUSH,
    title="Echo",
    endpoint="POST /test/echo?framing=NAME (JSON body; NDJSON lines back)",
    server="tests.plugins.echo_server:echo_router",
    client="tests.plugins.echo_client:echo_exchange",
    colour="#000000",
    # no resume request; leaving cancels the generation; no reader in the browser's page
    capabilities=Capabilities(resume=False, cancel_on_disconnect=True, browser=False),
    carriage=carriages.LINES,  # framings that travel as streamed lines travel over echo
)
