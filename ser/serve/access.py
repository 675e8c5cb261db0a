"""Who may use the server: the Host it is reached by, the page (Origin) a browser request
comes from, and the token.

- **Host.** A web page can make a browser connect to 127.0.0.1 under a name its author
  controls (DNS rebinding), and then read the answers as its own. Such a request carries that
  name in ``Host``; the server answers only to IP addresses, names without a dot
  (``localhost``, this machine's name), ``*.localhost``, this machine's own name, and the names
  given in ``allowed_hosts=`` (``*``: any).
- **Origin.** A browser says which page a request or a WebSocket comes from. Requests without
  ``Origin`` (curl, scripts) and pages of the server itself (same origin) pass, and so do the
  origins given in ``allowed_origins=`` (``*``: any), which also get CORS headers; any other
  page is refused, so a site the user happens to visit cannot open the microphone stream or
  post recordings to a server on their machine.
- **Token.** With ``token=``, every API request needs it: ``Authorization: Bearer <token>``;
  a WebSocket may also give it as the sub-protocol ``bearer.<token>`` (what a browser can send)
  or ``?token=``. The page's own files and the API description hold no data and stay open.

Refusals are JSON, ``{"error": ..., "status": 401|403}``; a refused WebSocket gets the same
as its handshake's HTTP answer (403), before it is accepted.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import socket
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

OPEN_PATHS = ("/", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/favicon.ico")
OPEN_PREFIXES = ("/static/", "/static-offline-docs/")   # the page's files, /docs' own assets
SUBPROTOCOL = "ser"                                       # what the server answers a browser's offer with
TOKEN_PREFIX = "bearer."                                  # the token as a sub-protocol: bearer.<token>
TOKEN_CHARS = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # what a sub-protocol may hold (RFC 6455)


def split_host(value: str) -> str:
    """``Host`` header -> the host name or address alone, lower case: ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def normalise_origin(origin: str) -> str:
    return origin.strip().lower().rstrip("/")


class Access:
    """The server's rules: ``token`` (None: no token), ``allowed_origins`` and
    ``allowed_hosts`` beyond the defaults (each may hold ``*``: any)."""

    def __init__(self, token: str | None = None, allowed_origins: Iterable[str] = (),
                 allowed_hosts: Iterable[str] = ()):
        self.token = token or None
        self.origins = {normalise_origin(o) for o in allowed_origins if o.strip()}
        self.hosts = {split_host(h).rstrip(".") for h in allowed_hosts if h.strip()}
        self.own_name = socket.gethostname().lower()

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header or "*" in self.hosts:
            return True
        host = split_host(host_header).rstrip(".")
        return (is_address(host) or "." not in host or host.endswith(".localhost")
                or host == self.own_name or host in self.hosts)

    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        if origin is None:
            return True  # not a browser's cross-site request (curl, scripts, a typed address)
        origin = normalise_origin(origin)
        if "*" in self.origins or origin in self.origins:
            return True
        netloc = urlsplit(origin).netloc if "://" in origin else ""
        return bool(netloc) and netloc == (host_header or "").strip().lower()

    def token_given(self, headers: dict[str, str], query: str, websocket: bool) -> bool:
        """True without a token; else the bearer header (a WebSocket: also ``bearer.<token>``
        among its sub-protocols, or ``?token=``) must hold it."""
        if not self.token:
            return True
        offered = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered.append(auth[7:])
        if websocket:
            protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
            offered += [p[len(TOKEN_PREFIX):] for p in protocols if p.startswith(TOKEN_PREFIX)]
            offered += parse_qs(query).get("token", [])
        want = self.token.encode()
        return any(hmac.compare_digest(given.encode(), want) for given in offered)

    def refusal(self, scope) -> tuple[int, str] | None:
        """``(status, message)`` when a request may not pass, else None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        host = headers.get("host")
        if not self.host_allowed(host):
            return 403, (f"This server does not answer to the name {split_host(host)!r} (the request's "
                         "Host): a web page may have pointed that name at this machine. Reach it by "
                         "its address or localhost, or start it with allowed_hosts=<name> if the "
                         "name is yours.")
        origin = headers.get("origin")
        if not self.origin_allowed(origin, host):
            return 403, (f"Requests from the page {origin!r} are refused: only the server's own "
                         "pages and the origins given with allowed_origins= may use it from a "
                         "browser (scripts and curl send no Origin and are not affected).")
        websocket = scope["type"] == "websocket"
        path = scope.get("path", "")
        open_path = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        preflight = scope["type"] == "http" and scope.get("method") == "OPTIONS"
        if not websocket and (open_path or preflight):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        if not self.token_given(headers, query, websocket):
            return (403 if websocket else 401), (
                "This server needs a bearer token: send the header 'Authorization: Bearer <token>' "
                "(the token the server was started with)" + ("; a browser's WebSocket can offer "
                                                              "the sub-protocol bearer.<token> instead"
                                                              if websocket else "") + ".")
        return None


def subprotocol(offered: Iterable[str]) -> str | None:
    """The sub-protocol a WebSocket is accepted with: ``ser`` when offered, else the offered
    ``bearer.<token>`` (a browser closes a connection whose answer names none it offered)."""
    offered = [p.strip() for p in offered]
    if SUBPROTOCOL in offered:
        return SUBPROTOCOL
    return next((p for p in offered if p.startswith(TOKEN_PREFIX)), None)


class Guard:
    """Pure ASGI middleware applying :class:`Access` to every HTTP request and WebSocket."""

    def __init__(self, app, access: Access):
        self.app, self.access = app, access

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        refused = self.access.refusal(scope)
        if refused is None:
            return await self.app(scope, receive, send)
        status, message = refused
        body = json.dumps({"error": message, "status": status}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # a server without the extension answers a close before accept with 403
            await send({"type": "websocket.close", "code": 1008})
