"""Parse what S3 needs from an HTTP request: bucket and key (path-style or virtual-hosted), query, headers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from appliance.errors import InvalidArgument, InvalidURI, RequestHeaderSectionTooLarge

__all__ = ["S3Request", "parse_query", "parse_request"]


@dataclass(frozen=True, slots=True)
class S3Request:
    """One S3 request as the handlers see it. Strings decode the wire bytes as UTF-8 with surrogateescape, so
    `s.encode("utf-8", "surrogateescape")` gives the bytes the client sent (SigV4 needs them)."""

    method: str
    path: str
    bucket: str | None
    key: str | None
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    content_length: int | None
    virtual_host: bool

    def arg(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def has_arg(self, name: str) -> bool:
        return any(key == name for key, _ in self.query)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_query(raw: bytes) -> tuple[tuple[str, str], ...]:
    """Query pairs in request order; `+` stays a plus (S3 clients send spaces as %20)."""
    pairs = []
    for piece in raw.decode("latin-1").split("&"):
        if not piece:
            continue
        name, _, value = piece.partition("=")
        pairs.append((unquote(name, errors="surrogateescape"), unquote(value, errors="surrogateescape")))
    return tuple(pairs)


def _headers(raw_headers: Iterable[tuple[bytes, bytes]], limit: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    total = 0
    for raw_name, raw_value in raw_headers:
        total += len(raw_name) + len(raw_value) + 4
        if total > limit:
            raise RequestHeaderSectionTooLarge(f"Your request header section exceeds {limit} bytes.")
        name = raw_name.decode("latin-1").lower()
        value = _text(raw_value).strip()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _content_length(headers: dict[str, str]) -> int | None:
    text = headers.get("content-length")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise InvalidArgument("Content-Length must be a non-negative integer.")
    return int(text)


def _vhost_bucket(host: str, domains: Sequence[str]) -> str | None:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    for domain in domains:
        suffix = "." + domain.lower()
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def parse_request(
    *,
    method: str,
    raw_path: bytes,
    query_string: bytes,
    raw_headers: Iterable[tuple[bytes, bytes]],
    domains: Sequence[str],
    max_header_bytes: int,
) -> S3Request:
    """Split the request into bucket, key, query and headers. Raises InvalidURI for a path S3 cannot carry."""
    headers = _headers(raw_headers, max_header_bytes)
    raw_path = raw_path.split(b"?", 1)[0]
    if not raw_path.startswith(b"/"):
        raise InvalidURI()
    path = _text(unquote_to_bytes(raw_path))
    bucket = _vhost_bucket(headers.get("host", ""), domains)
    virtual = bucket is not None
    if bucket is not None:
        key: str | None = path[1:]
    else:
        first, _, rest = path[1:].partition("/")
        bucket = first or None
        key = rest
    if key == "":
        key = None
    for part in (bucket, key):
        if part is not None:
            try:
                part.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidURI("The bucket name or object key is not valid UTF-8.") from None
    return S3Request(
        method=method.upper(),
        path=path,
        bucket=bucket,
        key=key,
        query=parse_query(query_string),
        headers=headers,
        content_length=_content_length(headers),
        virtual_host=virtual,
    )
