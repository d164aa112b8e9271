"""The S3 side of rate limiting: spend from the request's bucket, or answer 503 SlowDown with Retry-After."""

from __future__ import annotations

from appliance.api.s3.context import S3Services
from appliance.errors import SlowDown
from appliance.service.rate_table import retry_after_seconds

__all__ = ["throttle"]


def throttle(services: S3Services, access_key: str, client_ip: str) -> None:
    """Raise SlowDown when the request is over its rate: `access_key` once its signature verified, "" for an
    anonymous request or one whose authentication failed (those spend from the client address's bucket)."""
    limiter = services.limiter
    if limiter is None:
        return
    wait = limiter.check(access_key, client_ip)
    if wait > 0:
        raise SlowDown(retry_after=retry_after_seconds(wait))
