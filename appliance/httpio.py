"""What the HTTP clients of external daemons share (Kubo, IPFS-Cluster): bounded reads of a reply body."""

from __future__ import annotations

import httpx

from appliance.errors import BackendError

__all__ = ["read_limited"]


async def read_limited(response: httpx.Response, label: str, limit: int, *, head: bool = False) -> bytes:
    """The body, at most `limit` bytes; beyond that a BackendError naming `label`, or with `head` (error bodies)
    just its start."""
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > limit:
            if head:
                return bytes(body[:limit])
            raise BackendError(f"{label}: reply larger than {limit} bytes")
    return bytes(body)
