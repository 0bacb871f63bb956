"""Absolute URLs the API hands out (SBOM download links, slash redirects).

They name the server's configured public address (``packyard serve
--public-address``, else the address it listens on: what ``packyard env`` tells
clients), never the request's ``Host`` header: a client that sends ``Host:
evil.example`` must not make the server hand out, or redirect to, links to another
site. An app created without a public address (tests, benchmarks) names the address
its server listens on (``scope["server"]``), which no client can forge either.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


def public_base(configured: str | None, scope: Scope) -> str:
    """``scheme://host[:port]`` of this server, without a trailing slash."""
    if configured:
        return configured
    scheme = str(scope.get("scheme", "http"))
    server = scope.get("server") or ("127.0.0.1", None)
    host, port = str(server[0]), server[1]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default_port) else f"{scheme}://{host}:{port}"


class SlashRedirect:
    """The router's answer for an unmatched path: Starlette's trailing-slash redirect,
    to the public address rather than to the ``Host`` header, else ``not_found``.

    Installed as the router's ``default`` with its own ``redirect_slashes`` off, so it
    costs nothing on matched requests.
    """

    def __init__(self, routes: list[BaseRoute], public_url: str | None, not_found: ASGIApp) -> None:
        self.routes = routes
        self.public_url = public_url
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            probe = {**scope, "path": other}
            if any(route.matches(probe)[0] is not Match.NONE for route in self.routes):
                location = public_base(self.public_url, scope) + quote(
                    other, safe="/:@!$&'()*+,;=~"
                )
                query = scope.get("query_string", b"")
                if query:
                    location += "?" + query.decode("latin-1")
                await RedirectResponse(location)(scope, receive, send)
                return
        await self.not_found(scope, receive, send)
