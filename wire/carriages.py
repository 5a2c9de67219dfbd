"""Carriages: how a transport delimits framed messages on the wire. A framing names the
carriages it can travel on (`wire.framing.Framing.carriages`); a transport names its one
carriage in the registry (`transports.py`), so neither `wire/` nor a framing ever names a
transport.

    EVENTS      Server-Sent Events: one `data:` field per message (`wire.sse`)
    LINES       a streamed HTTP body: one NDJSON line per message (`wire.ndjson`), or bare
                text for a framing without boundaries
    MESSAGES    WebSocket: one text message per message; WebTransport: one length-prefixed
                message per message on its stream (`wire.webtransport`)
    ENVELOPE    polling: the server's own batch envelope (`wire.poll`), whatever the framing
    DELIVERIES  webhooks: signed POST bodies of messages (`wire.webhook`)
"""

from __future__ import annotations

EVENTS = "events"
LINES = "lines"
MESSAGES = "messages"
ENVELOPE = "envelope"
DELIVERIES = "deliveries"
CARRIAGES = (EVENTS, LINES, MESSAGES, ENVELOPE, DELIVERIES)
