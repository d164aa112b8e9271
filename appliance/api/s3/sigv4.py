"""AWS Signature Version 4 request authentication for S3 (Authorization header and presigned URLs); pure, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from appliance.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    ExpiredPresignedRequest,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestError,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "MAX_PRESIGN_EXPIRY",
    "STREAMING_PAYLOAD",
    "STREAMING_PAYLOAD_TRAILER",
    "STREAMING_UNSIGNED_PAYLOAD_TRAILER",
    "UNSIGNED_PAYLOAD",
    "AuthContext",
    "authenticate",
    "canonical_request",
    "derive_signing_key",
    "sign_string",
    "string_to_sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600  # S3's limit for X-Amz-Expires
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_PAYLOAD_CONSTANTS = frozenset(
    {UNSIGNED_PAYLOAD, STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER}
)
_UNSUPPORTED_MECHANISM = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who signed a request and what the body verifier needs to check chunk signatures."""

    access_key: str
    region: str
    amz_date: str
    scope: str
    signing_key: bytes
    seed_signature: str
    content_sha256: str
    presigned: bool

    def __repr__(self) -> str:  # keep the signing key out of logs and tracebacks
        return f"AuthContext(access_key={self.access_key!r}, scope={self.scope!r}, presigned={self.presigned})"


def derive_signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign_string(signing_key: bytes, string: str) -> str:
    """The lower-case hex HMAC-SHA256 of a string to sign."""
    return hmac.new(signing_key, string.encode("utf-8"), hashlib.sha256).hexdigest()


def _uri_encode(value: str, safe: str) -> str:
    # surrogateescape keeps undecodable bytes of the request path as the bytes the client sent.
    return quote(value.encode("utf-8", "surrogateescape"), safe=safe)


def _trimall(value: str) -> str:
    return " ".join(value.split())


def canonical_request(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    """The SigV4 canonical request; `path` is decoded and encoded once, S3-style (no normalisation)."""
    pairs = sorted((_uri_encode(k, "-_.~"), _uri_encode(v, "-_.~")) for k, v in query)
    lines = [
        method.upper(),
        _uri_encode(path or "/", "-_.~/"),
        "&".join(f"{k}={v}" for k, v in pairs),
        *(f"{name}:{_trimall(headers.get(name, ''))}" for name in signed_headers),
        "",
        ";".join(signed_headers),
        payload_hash,
    ]
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The SigV4 string to sign for a canonical request."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@dataclass(frozen=True, slots=True)
class _Credential:
    access_key: str
    date: str
    region: str


# AWS's wording differs between the Authorization header and the presigned query; both come from one parser.
_HEADER_PREFIX = "The authorization header is malformed; "
_QUERY_PREFIX = "Error parsing the X-Amz-Credential parameter; "


def _parse_credential(value: str, error: type[RequestError], expected_region: str | None) -> _Credential:
    prefix = _QUERY_PREFIX if error is AuthorizationQueryParametersError else _HEADER_PREFIX
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise error(
            prefix + 'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    access_key, date, region, service, terminal = parts
    if not re.fullmatch(r"[0-9]{8}", date):
        raise error(
            f"{prefix}incorrect date format {_quoted(date, 16)}. "
            'This date in the credential must be in the format "yyyyMMdd".'
        )
    if expected_region is not None and region != expected_region:
        # S3 names the region the endpoint expects, so a client can retry with the right scope.
        raise error(f"{prefix}the region '{region[:64]}' is wrong; expecting '{expected_region}'")
    if service != "s3":
        raise error(f'{prefix}incorrect service {_quoted(service, 32)}. This endpoint belongs to "s3".')
    if terminal != "aws4_request":
        raise error(f'{prefix}incorrect terminal {_quoted(terminal, 32)}. This endpoint uses "aws4_request".')
    return _Credential(access_key, date, region)


def _quoted(value: str, limit: int) -> str:
    return '"' + value[:limit].replace('"', "'") + '"'


def _parse_amz_date(value: str) -> datetime | None:
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse_signed_headers(value: str, error: type[RequestError]) -> list[str]:
    names = value.split(";")
    if not all(_HEADER_NAME.fullmatch(n) for n in names):
        raise error("SignedHeaders must be a ';'-separated list of lower-case header names.")
    if "host" not in names:
        raise error("The 'host' header must be signed.")
    return names


def _check_unsigned_amz_headers(headers: Mapping[str, str], signed: Sequence[str]) -> None:
    unsigned = sorted(n for n in headers if n.startswith("x-amz-") and n not in signed)
    if unsigned:
        raise AccessDenied(f"There were headers present in the request which were not signed: {', '.join(unsigned)}")


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _parse_authorization(value: str) -> tuple[str, str, str]:
    """(credential, signed headers, signature) from an `AWS4-HMAC-SHA256 Credential=…` header value."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == "AWS" or algorithm.startswith("AWS4-"):
            raise InvalidRequest(_UNSUPPORTED_MECHANISM)
        raise AuthorizationHeaderMalformed("The authorization header is malformed; expecting AWS4-HMAC-SHA256.")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep or key not in ("Credential", "SignedHeaders", "Signature") or key in fields:
            raise AuthorizationHeaderMalformed(
                "The authorization header is malformed; expecting Credential=…, SignedHeaders=…, Signature=…."
            )
        fields[key] = val.strip()
    if len(fields) != 3:
        raise AuthorizationHeaderMalformed(
            "The authorization header is missing Credential, SignedHeaders or Signature."
        )
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"]


def _request_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    if "x-amz-date" in headers:
        when = _parse_amz_date(headers["x-amz-date"].strip())
    elif "date" in headers:
        try:
            when = _utc(parsedate_to_datetime(headers["date"])).astimezone(UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
    else:
        when = None
    if when is None:
        raise AccessDenied("AWS authentication requires a valid Date or x-amz-date header.")
    return when.strftime("%Y%m%dT%H%M%SZ"), when


def _verify(
    *,
    access_key: str,
    secret: str | None,
    cred: _Credential,
    amz_date: str,
    canonical: str,
    signature: str,
) -> tuple[str, bytes]:
    if secret is None:
        raise InvalidAccessKeyId()
    scope = f"{cred.date}/{cred.region}/s3/aws4_request"
    key = derive_signing_key(secret, cred.date, cred.region)
    expected = sign_string(key, string_to_sign(amz_date, scope, canonical))
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
        raise SignatureDoesNotMatch()
    return scope, key


def _header_auth(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew: int,
    region: str | None,
) -> AuthContext:
    cred_text, signed_text, signature = _parse_authorization(headers["authorization"])
    cred = _parse_credential(cred_text, AuthorizationHeaderMalformed, region)
    signed = _parse_signed_headers(signed_text, AuthorizationHeaderMalformed)
    if not _SIGNATURE.fullmatch(signature):
        raise AuthorizationHeaderMalformed("The signature must be 64 lower-case hexadecimal characters.")
    amz_date, when = _request_time(headers)
    if cred.date != amz_date[:8]:
        raise AuthorizationHeaderMalformed(
            _HEADER_PREFIX + "Invalid credential date. Date is not the same as X-Amz-Date."
        )
    if abs(now - when) > timedelta(seconds=max_skew):
        raise RequestTimeTooSkewed()
    content_sha256 = headers.get("x-amz-content-sha256")
    if content_sha256 is None:
        raise InvalidRequest("Missing required header for this request: x-amz-content-sha256")
    content_sha256 = content_sha256.strip()
    if content_sha256 not in _PAYLOAD_CONSTANTS and not _SHA256_HEX.fullmatch(content_sha256):
        raise InvalidArgument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value."
        )
    _check_unsigned_amz_headers(headers, signed)
    canonical = canonical_request(
        method=method, path=path, query=query, headers=headers, signed_headers=signed, payload_hash=content_sha256
    )
    scope, key = _verify(
        access_key=cred.access_key,
        secret=lookup_secret(cred.access_key),
        cred=cred,
        amz_date=amz_date,
        canonical=canonical,
        signature=signature,
    )
    return AuthContext(cred.access_key, cred.region, amz_date, scope, key, signature, content_sha256, False)


def _presigned_auth(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew: int,
    max_expiry: int,
    region: str | None,
) -> AuthContext:
    params: dict[str, str] = {}
    for name, value in query:
        if name in _PRESIGN_PARAMS:
            if name in params:
                raise AuthorizationQueryParametersError(f"The {name} query parameter is repeated.")
            params[name] = value
    missing = [name for name in _PRESIGN_PARAMS if name not in params]
    if missing:
        raise AuthorizationQueryParametersError()
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise AuthorizationQueryParametersError('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256".')
    cred = _parse_credential(params["X-Amz-Credential"], AuthorizationQueryParametersError, region)
    signed = _parse_signed_headers(params["X-Amz-SignedHeaders"], AuthorizationQueryParametersError)
    signature = params["X-Amz-Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise AuthorizationQueryParametersError("X-Amz-Signature must be 64 lower-case hexadecimal characters.")
    amz_date = params["X-Amz-Date"]
    when = _parse_amz_date(amz_date)
    if when is None:
        raise AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"."
        )
    if cred.date != amz_date[:8]:
        raise AuthorizationQueryParametersError(
            f'Invalid credential date "{cred.date}". This date is not the same as X-Amz-Date: "{amz_date[:8]}".'
        )
    expires = _presign_expires(params["X-Amz-Expires"], max_expiry)
    if when - now > timedelta(seconds=max_skew):
        raise RequestTimeTooSkewed()
    if expires == 0 or now > when + timedelta(seconds=expires):
        raise ExpiredPresignedRequest()
    _check_unsigned_amz_headers(headers, signed)
    content_sha256 = UNSIGNED_PAYLOAD
    if "x-amz-content-sha256" in signed and "x-amz-content-sha256" in headers:
        content_sha256 = headers["x-amz-content-sha256"].strip()
    unsigned_query = [(k, v) for k, v in query if k != "X-Amz-Signature"]
    canonical = canonical_request(
        method=method,
        path=path,
        query=unsigned_query,
        headers=headers,
        signed_headers=signed,
        payload_hash=content_sha256,
    )
    scope, key = _verify(
        access_key=cred.access_key,
        secret=lookup_secret(cred.access_key),
        cred=cred,
        amz_date=amz_date,
        canonical=canonical,
        signature=signature,
    )
    return AuthContext(cred.access_key, cred.region, amz_date, scope, key, signature, content_sha256, True)


def _presign_expires(text: str, max_expiry: int) -> int:
    """X-Amz-Expires in seconds, checked with S3's messages (AuthorizationQueryParametersError, 400); a week is
    S3's limit, `max_expiry` the appliance's (auth.max_presign_expiry_seconds), whichever is lower."""
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    expires = int(text)
    if expires < 0:
        raise AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRY:
        raise AuthorizationQueryParametersError(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less "
            f"than {MAX_PRESIGN_EXPIRY} seconds"
        )
    if expires > max_expiry:
        raise AuthorizationQueryParametersError(
            f"X-Amz-Expires must be less than {max_expiry} seconds on this endpoint (auth.max_presign_expiry_seconds)"
        )
    return expires


def authenticate(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    max_skew_seconds: int = 900,
    max_presign_expiry_seconds: int = 604800,
    region: str | None = None,
) -> AuthContext:
    """Verify a SigV4-signed S3 request (Authorization header or presigned query) and say who signed it.

    `region`: the region this endpoint serves; a credential scope naming another is refused as S3 does
    (AuthorizationHeaderMalformed / AuthorizationQueryParametersError). None accepts any region.

    `path` is the decoded request path, `query` the decoded (name, value) pairs in request order, `headers`
    lower-case names to values (repeated headers joined with ","). Raises an AuthError subclass, InvalidRequest
    or InvalidArgument; messages never contain secrets or expected signatures.
    """
    now = _utc(now)
    presigned = any(name == "X-Amz-Algorithm" for name, _ in query)
    if "authorization" in headers:
        if presigned:
            raise InvalidArgument(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization "
                "header should be specified."
            )
        return _header_auth(
            method=method,
            path=path,
            query=query,
            headers=headers,
            lookup_secret=lookup_secret,
            now=now,
            max_skew=max_skew_seconds,
            region=region,
        )
    if presigned:
        return _presigned_auth(
            method=method,
            path=path,
            query=query,
            headers=headers,
            lookup_secret=lookup_secret,
            now=now,
            max_skew=max_skew_seconds,
            max_expiry=max_presign_expiry_seconds,
            region=region,
        )
    names = {name for name, _ in query}
    if "AWSAccessKeyId" in names and "Signature" in names:
        raise InvalidRequest(_UNSUPPORTED_MECHANISM)
    raise AccessDenied()
