"""AWS Signature Version 2 (HMAC-SHA1) for S3: the `Authorization: AWS key:sig` header and presigned URLs with
AWSAccessKeyId/Signature/Expires, which boto3 still produces by default for `generate_presigned_url`. Pure, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from appliance.api.s3.sigv4 import UNSIGNED_PAYLOAD, AuthContext
from appliance.errors import (
    AccessDenied,
    ExpiredPresignedRequest,
    InvalidAccessKeyId,
    InvalidArgument,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

__all__ = ["authenticate_v2", "is_v2", "string_to_sign_v2"]

# Query parameters that are part of the signed resource (S3's list, sorted on use).
_SIGNED_SUBRESOURCES = frozenset(
    {
        "acl",
        "cors",
        "delete",
        "lifecycle",
        "location",
        "logging",
        "notification",
        "partNumber",
        "policy",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)


def is_v2(query: Sequence[tuple[str, str]], headers: Mapping[str, str]) -> bool:
    """Whether the request is signed with Signature Version 2."""
    if headers.get("authorization", "").startswith("AWS "):
        return True
    names = {name for name, _ in query}
    return "authorization" not in headers and "AWSAccessKeyId" in names and "Signature" in names


def string_to_sign_v2(
    *, method: str, resource: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str], date: str
) -> str:
    """The V2 string to sign. `resource` is '/bucket' + the raw (still percent-encoded) request path."""
    amz = sorted((name, value.strip()) for name, value in headers.items() if name.startswith("x-amz-"))
    subs = sorted((name, value) for name, value in query if name in _SIGNED_SUBRESOURCES)
    if subs:
        resource += "?" + "&".join(f"{name}={value}" if value else name for name, value in subs)
    lines = [method, headers.get("content-md5", ""), headers.get("content-type", ""), date]
    return "\n".join(lines) + "\n" + "".join(f"{name}:{value}\n" for name, value in amz) + resource


def _check(secret: str | None, string: str, signature: str) -> None:
    if secret is None:
        raise InvalidAccessKeyId()
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), string.encode("utf-8"), hashlib.sha1).digest())
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise SignatureDoesNotMatch()


def _context(access_key: str, presigned: bool) -> AuthContext:
    # V2 signs no payload: the body is checked only by Content-MD5 / x-amz-checksum-* when the client sends them.
    return AuthContext(access_key, "", "", "", b"", "", UNSIGNED_PAYLOAD, presigned)


def authenticate_v2(
    *,
    method: str,
    resource: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew_seconds: int = 900,
    max_presign_expiry_seconds: int = 604800,
) -> AuthContext:
    """Verify a V2-signed request; raises an AuthError subclass or InvalidArgument. A presigned URL whose Expires
    lies more than `max_presign_expiry_seconds` ahead is refused: V2 URLs carry no signing time, so the cap that
    SigV4 puts on X-Amz-Expires is applied to what is left of their lifetime."""
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    auth = headers.get("authorization")
    if auth is not None:
        access_key, sep, signature = auth[4:].strip().rpartition(":")
        if not sep or not access_key or not signature:
            raise AccessDenied("The Authorization header is malformed: expected 'AWS AccessKeyId:Signature'.")
        stamp = headers.get("x-amz-date") or headers.get("date")
        try:
            when = parsedate_to_datetime(stamp) if stamp else None
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is None or when.tzinfo is None:
            raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header.")
        if abs(now - when) > timedelta(seconds=max_skew_seconds):
            raise RequestTimeTooSkewed()
        date = "" if "x-amz-date" in headers else headers.get("date", "")
        string = string_to_sign_v2(method=method, resource=resource, query=query, headers=headers, date=date)
        _check(lookup_secret(access_key), string, signature)
        return _context(access_key, False)
    params = {name: value for name, value in query if name in ("AWSAccessKeyId", "Signature", "Expires")}
    if len(params) != 3:
        raise AccessDenied("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters.")
    expires = params["Expires"]
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        raise InvalidArgument("Expires must be a number of seconds since the epoch.")
    if int(expires) < now.timestamp():
        raise ExpiredPresignedRequest("Request has expired.")
    if int(expires) - now.timestamp() > max_presign_expiry_seconds:
        raise AccessDenied(
            f"Expires lies more than {max_presign_expiry_seconds} seconds ahead; presigned URLs on this endpoint "
            "may live at most that long (auth.max_presign_expiry_seconds)."
        )
    string = string_to_sign_v2(method=method, resource=resource, query=query, headers=headers, date=expires)
    _check(lookup_secret(params["AWSAccessKeyId"]), string, params["Signature"])
    return _context(params["AWSAccessKeyId"], True)
