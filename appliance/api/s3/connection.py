"""Request-body back-pressure for Quart: stop reading from the ASGI server while the app has not consumed what it got.

Quart's Body buffers every received piece without limit, so a slow consumer (IPFS add) would let a fast client fill
memory. BoundedBody tracks the unread bytes; the connection waits for room before asking hypercorn for more, and
hypercorn (small max_app_queue_size) then stops reading the socket: TCP flow control does the rest."""

from __future__ import annotations

import asyncio

from hypercorn.typing import ASGIReceiveCallable
from quart.asgi import ASGIHTTPConnection
from quart.wrappers import Request
from quart.wrappers.request import Body

__all__ = ["HIGH_WATER", "BackpressureConnection", "BoundedBody", "StreamingRequest"]

HIGH_WATER = 1024 * 1024  # unread body bytes held per request before reading pauses


class BoundedBody(Body):
    """Quart's Body plus a 'room' event that is clear while more than HIGH_WATER bytes wait unread."""

    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(expected_content_length, max_content_length)
        self._room = asyncio.Event()
        self._room.set()

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        finally:
            self._room.set()

    def append(self, data: bytes) -> None:
        super().append(data)
        if len(self._data) >= HIGH_WATER:
            self._room.clear()

    async def wait_for_room(self) -> None:
        await self._room.wait()


class StreamingRequest(Request):
    body_class = BoundedBody


class BackpressureConnection(ASGIHTTPConnection):
    """Reads the next body message only when the request's buffer has room."""

    async def handle_messages(self, request: Request, receive: ASGIReceiveCallable) -> None:
        body = request.body
        while True:
            if isinstance(body, BoundedBody):
                await body.wait_for_room()
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                return
