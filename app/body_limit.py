"""ASGI middleware: a request body over the limit gets 413 before anything parses it.

Starlette's own limit (FastAPI's `max_body_size`) answers such requests in plain text
whatever the app sends, so the API keeps its JSON errors with this one instead.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body passes the limit; FastAPI answers it as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes (RLSERVE_MAX_BODY_BYTES)")


class BodySizeLimit:
    """Refuse a Content-Length over `max_bytes` at once; count a body without one as it arrives."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            error = BodyTooLarge(self.max_bytes)
            # The unread body is left to the server, which closes the connection after this reply.
            await JSONResponse({"detail": error.detail}, status_code=413)(scope, receive, send)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watch)
        except BodyTooLarge as error:
            # Raised outside a route's body parsing (e.g. a stream polling for disconnects).
            if not started:
                await JSONResponse({"detail": error.detail}, status_code=413)(scope, receive, send)
