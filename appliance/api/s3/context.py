"""What a handler receives: the parsed request, who signed it, the services, and the request body stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from appliance.api.access import ListenerAccess
from appliance.api.s3.payload import VerifiedBody
from appliance.api.s3.request import S3Request
from appliance.api.s3.sigv4 import AuthContext
from appliance.checksums import ALGORITHMS
from appliance.components import PolicySource
from appliance.config import AuthConfig, S3Config
from appliance.errors import RequestTimeout
from appliance.model import ANONYMOUS, Principal
from appliance.service.audit import Auditor
from appliance.service.buckets import BucketService
from appliance.service.identity import Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.service.ratelimit import RateLimiter

__all__ = ["LOCAL", "Origin", "RequestContext", "S3Services", "timed"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: the resolved client address ("" unknown) and whether it came over TLS."""

    client_ip: str = ""
    secure: bool = False


LOCAL = Origin()


@dataclass(frozen=True, slots=True)
class S3Services:
    """Everything the S3 handlers need, built by the composition root (one per worker process)."""

    objects: ObjectService
    buckets: BucketService
    multipart: MultipartService
    identity: Identity
    s3: S3Config
    auth: AuthConfig
    clock: Callable[[], float] = field(default=time.time)
    access: ListenerAccess = field(default_factory=ListenerAccess)  # allow/deny lists, trusted proxies
    limiter: RateLimiter | None = None  # None: rate limiting off
    # The IAM users and their policies; None: the root key is the only identity (it may do everything).
    policies: PolicySource | None = None
    # One record per state-changing or denied request (dispatch in app.py); no-op unless the daemon gives one.
    auditor: Auditor = field(default_factory=lambda: Auditor(None))

    def lookup_secret(self, access_key: str) -> str | None:
        """The secret SigV4 checks a signature with: an IAM user's key, or the root key."""
        if self.policies is not None:
            found = self.policies.principal_for(access_key)
            if found is not None:
                return found[1]
        return self.identity.lookup_secret(access_key)


async def timed(source: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """`source` with a deadline on every read: a client that stops sending gets RequestTimeout."""
    iterator = aiter(source)
    while True:
        try:
            async with asyncio.timeout(seconds):
                piece = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout() from None
        yield piece


@dataclass(slots=True)
class RequestContext:
    """One request on its way through a handler."""

    request: S3Request
    services: S3Services
    auth: AuthContext
    body: AsyncIterator[bytes]
    request_id: str
    principal: Principal = ANONYMOUS
    origin: Origin = LOCAL

    def verified_body(self, max_size: int, *, checksum_headers: bool = True) -> VerifiedBody:
        """The request body with every declared digest, signature and length checked as it streams.
        `checksum_headers=False`: the x-amz-checksum-<algorithm> headers describe something else (the object a
        CompleteMultipartUpload makes), not this body, so they are not checked against it."""
        headers = self.request.headers
        if not checksum_headers:
            headers = {k: v for k, v in headers.items() if k.removeprefix("x-amz-checksum-") not in ALGORITHMS}
        return VerifiedBody(
            timed(self.body, self.services.s3.body_read_timeout),
            auth=self.auth,
            headers=headers,
            content_length=self.request.content_length,
            max_size=max_size,
        )

    async def read_small_body(self, max_size: int, *, checksum_headers: bool = True) -> bytes:
        """A verified body small enough to hold (XML documents), at most `max_size` bytes."""
        parts = []
        async for piece in self.verified_body(max_size, checksum_headers=checksum_headers):
            parts.append(piece)
        return b"".join(parts)
