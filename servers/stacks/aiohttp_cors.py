"""CORS for the aiohttp stack, as Starlette's CORSMiddleware gives it to the other stacks
(`servers.access.install`), with the same origins, methods and headers (`access.CORS_*`):
aiohttp-cors is not installed, and these few rules are all the server needs of it."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from servers import access
from servers.settings import ServerSettings


def install_cors(app: web.Application, settings: ServerSettings) -> None:
    """Preflights answered in the outermost middleware, before the access rules (they carry no
    token); the CORS headers added to every HTTP answer's head, push streams' included."""
    origins, exposed = frozenset(settings.cors_origins), ", ".join(access.CORS_EXPOSED_HEADERS)
    safe = ("Accept", "Accept-Language", "Content-Language", "Content-Type")  # Starlette's
    allowed = sorted({*safe, *access.CORS_REQUEST_HEADERS})
    lowered = {h.lower() for h in allowed}
    asks = ("Method", "Headers", "Private-Network")
    preflight = {
        "Vary": ", ".join(["Origin", *(f"Access-Control-Request-{a}" for a in asks)]),
        "Access-Control-Allow-Methods": ", ".join(access.CORS_METHODS),
        "Access-Control-Max-Age": "600",
        "Access-Control-Allow-Headers": ", ".join(allowed),
    }

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("origin")
        method = request.headers.get("access-control-request-method")
        if request.method != "OPTIONS" or origin is None or method is None:
            return await handler(request)
        headers, asked = dict(preflight), request.headers.get("access-control-request-headers")
        if origin in origins:
            headers["Access-Control-Allow-Origin"] = origin
        requested = [] if asked is None else [h.lower().strip() for h in asked.split(",")]
        checks = {
            "origin": origin not in origins,
            "method": method not in access.CORS_METHODS,
            "headers": any(h not in lowered for h in requested),
            "private-network": "access-control-request-private-network" in request.headers,
        }
        failures = [name for name, failed in checks.items() if failed]
        text = "Disallowed CORS " + ", ".join(failures) if failures else "OK"
        return web.Response(text=text, status=400 if failures else 200, headers=headers)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        socket = request.headers.get("upgrade", "").lower() == "websocket"
        if socket or "Access-Control-Allow-Methods" in response.headers:
            return  # WebSockets have no CORS (their refusals neither); a preflight has its own
        origin = request.headers.get("origin")
        if origin is not None:
            response.headers["Access-Control-Expose-Headers"] = exposed
            if origin in origins:
                response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = ", ".join([*response.headers.getall("Vary", []), "Origin"])

    app.middlewares.insert(0, cors)  # outermost
    app.on_response_prepare.append(on_prepare)
