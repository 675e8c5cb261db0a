"""A cap on request bodies, checked while they arrive rather than after they are stored.

FastAPI parses a multipart upload completely (spooling it to disk) before the route sees it,
so a size check in the route would come after a client had filled the disk. This ASGI
middleware refuses a declared ``Content-Length`` over the limit at once and counts the bytes
of bodies that declare none, answering 413 with the JSON error body the other routes use.
"""

from __future__ import annotations

import json


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a body passes the limit; turned into a 413 response
    (here, or by the app's error handler when the form parser wrapped it)."""


def too_large_message(size: int, limit: int) -> str:
    return (f"The upload is larger than this server accepts ({size / 2**20:.1f} MiB > "
            f"{limit / 2**20:g} MiB). Send a shorter recording or a compressed one (flac, ogg, "
            "mp3), or start the server with a larger max_upload_mb=.")


class UploadLimit:
    """Pure ASGI middleware: HTTP bodies larger than ``limit`` bytes get 413."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self.refuse(send, int(declared))
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(too_large_message(seen, self.limit))
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self.refuse(send, seen)

    async def refuse(self, send, size: int) -> None:
        body = json.dumps({"status": 413, "error": too_large_message(size, self.limit)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
