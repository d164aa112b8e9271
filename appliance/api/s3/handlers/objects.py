"""Object actions: PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from quart import Response

from appliance.api.s3.conditions import check_conditions, parse_range
from appliance.api.s3.context import RequestContext
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.tagging import parse_tag_header
from appliance.api.s3.usermeta import user_meta, wire_value  # user_meta is re-exported for the other handlers
from appliance.api.s3.xml import XmlBuilder, http_date
from appliance.errors import BackendError, InvalidArgument, MissingContentLength
from appliance.model import ObjectMeta
from appliance.service.objects import PutRequest

__all__ = [
    "delete_object",
    "get_object",
    "get_object_attributes",
    "head_object",
    "put_object",
    "stored_headers",
    "user_meta",
]

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# Standard headers stored with the object and returned on GET/HEAD.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
# GET query parameters that override response headers (signed requests only, which all of ours are).
OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
META_PREFIX = "x-amz-meta-"


def _wire(value: str) -> str:
    """A header value as Quart sends it (latin-1) that puts the client's original bytes back on the wire."""
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _key(ctx: RequestContext) -> tuple[str, str]:
    bucket, key = ctx.request.bucket, ctx.request.key
    assert bucket is not None and key is not None  # the routing table sends only object-level requests here
    return bucket, key


def stored_headers(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    stored = []
    for name in STORED_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "content-encoding":
            # aws-chunked describes this request's framing, not the object.
            value = ",".join(p.strip() for p in value.split(",") if p.strip().lower() != "aws-chunked")
            if not value:
                continue
        stored.append((name, value))
    return tuple(stored)


def _object_headers(meta: ObjectMeta, pin_state: str) -> dict[str, str]:
    headers = {
        "ETag": f'"{meta.etag}"',
        "Last-Modified": http_date(meta.last_modified),
        "Content-Type": _wire(meta.content_type),
        "Accept-Ranges": "bytes",
    }
    for name, value in meta.headers:
        headers[name] = _wire(value)
    for name, value in meta.user_meta:
        headers[META_PREFIX + name] = wire_value(value)
    headers["x-amz-meta-cid"] = meta.cid
    headers["x-ipfs-pin-status"] = pin_state
    if meta.tags:
        headers["x-amz-tagging-count"] = str(len(meta.tags))
    if meta.parts:
        headers["x-amz-mp-parts-count"] = str(len(meta.parts))
    if meta.version_id:
        headers["x-amz-version-id"] = meta.version_id
    return headers


async def put_object(ctx: RequestContext) -> Response:
    bucket, key = _key(ctx)
    headers = ctx.request.headers
    if ctx.request.content_length is None and "x-amz-decoded-content-length" not in headers:
        raise MissingContentLength()
    request = PutRequest(
        bucket=bucket,
        key=key,
        content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE,
        user_meta=user_meta(headers),
        headers=stored_headers(headers),
        owner=ctx.services.identity.owner_of(ctx.auth.access_key),
        tags=parse_tag_header(headers["x-amz-tagging"]) if "x-amz-tagging" in headers else (),
    )
    body = ctx.verified_body(ctx.services.s3.max_single_put_bytes)
    meta = await ctx.services.objects.put_object(request, body)
    pin_state = await ctx.services.objects.pin_state(meta.cid)
    out = {"ETag": f'"{meta.etag}"', "x-amz-meta-cid": meta.cid, "x-ipfs-pin-status": pin_state}
    if meta.version_id:
        out["x-amz-version-id"] = meta.version_id
    for alg, value in meta.checksums:
        out[f"x-amz-checksum-{alg}"] = value
    return empty_response(200, out)


def _checksum_headers(ctx: RequestContext, meta: ObjectMeta, headers: dict[str, str]) -> None:
    if ctx.request.header("x-amz-checksum-mode").upper() == "ENABLED":
        for alg, value in meta.checksums:
            headers[f"x-amz-checksum-{alg}"] = value
            headers["x-amz-checksum-type"] = "COMPOSITE" if "-" in value else "FULL_OBJECT"


async def _prepare(ctx: RequestContext) -> tuple[ObjectMeta, dict[str, str], tuple[int, int] | None]:
    bucket, key = _key(ctx)
    meta, pin_state = await ctx.services.objects.head_object_pin(bucket, key, ctx.request.arg("versionId"))
    check_conditions(ctx.request.headers, etag=meta.etag, last_modified=meta.last_modified, now=ctx.services.clock())
    span = parse_range(ctx.request.headers.get("range"), meta.size)
    headers = _object_headers(meta, pin_state)
    for param, header in OVERRIDES.items():
        value = ctx.request.arg(param)
        if value is not None:
            headers[header] = _wire(value)
    if span is None:
        _checksum_headers(ctx, meta, headers)
        headers["Content-Length"] = str(meta.size)
    else:
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{meta.size}"
        headers["Content-Length"] = str(last - first + 1)
    return meta, headers, span


async def head_object(ctx: RequestContext) -> Response:
    _, headers, span = await _prepare(ctx)
    return empty_response(200 if span is None else 206, headers)


async def _stream(first: bytes, rest: AsyncIterator[bytes], request_id: str, cid: str) -> AsyncIterator[bytes]:
    """The response body. An error after the headers went out cannot become an S3 error any more: it is logged with
    the request id and re-raised, so the server drops the connection before Content-Length is reached (the client
    sees a cut-off body, never a well-formed short one)."""
    sent = len(first)
    try:
        yield first
        async for piece in rest:
            sent += len(piece)
            yield piece
    except Exception as exc:
        log.error("request %s: GET of %s aborted after %d bytes: %s", request_id, cid, sent, exc)
        raise
    finally:
        aclose = getattr(rest, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


async def get_object(ctx: RequestContext) -> Response:
    meta, headers, span = await _prepare(ctx)
    first_byte, last_byte = span if span is not None else (0, meta.size - 1)
    length = last_byte - first_byte + 1
    status = 200 if span is None else 206
    if length <= 0:
        return empty_response(status, headers)
    content = ctx.services.objects.open_content(meta, first_byte, length)
    # Fetch the first piece before answering, so an unreachable IPFS node is a clean 503, not a cut-off 200.
    try:
        first = await anext(content)
    except StopAsyncIteration:
        raise BackendError(f"IPFS returned no data for {meta.cid} ({length} bytes expected)") from None
    except BaseException:
        aclose = getattr(content, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        raise
    response = Response(_stream(first, content, ctx.request_id, meta.cid), status=status)
    response.headers.remove("Content-Type")
    for name, value in headers.items():
        response.headers[name] = value
    return response


async def delete_object(ctx: RequestContext) -> Response:
    bucket, key = _key(ctx)
    version_id = ctx.request.arg("versionId")
    headers: dict[str, str] = {}
    if version_id is not None:
        removed = await ctx.services.objects.delete_version(bucket, key, version_id)
        headers["x-amz-version-id"] = version_id
        if removed is not None and removed.delete_marker:
            headers["x-amz-delete-marker"] = "true"
    else:
        removed = await ctx.services.objects.delete_object(bucket, key)
        if removed is not None and removed.delete_marker:  # a versioned bucket: the marker is the new current
            headers["x-amz-delete-marker"] = "true"
            headers["x-amz-version-id"] = removed.version_id
    return empty_response(204, headers)


def _header_int(ctx: RequestContext, name: str, default: int) -> int:
    text = ctx.request.header(name).strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidArgument(f"{name} must be a non-negative integer.")
    return int(text)


_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})


async def get_object_attributes(ctx: RequestContext) -> Response:
    bucket, key = _key(ctx)
    wanted = {a.strip() for a in ctx.request.header("x-amz-object-attributes").split(",") if a.strip()}
    if not wanted or not wanted <= _ATTRIBUTES:
        raise InvalidArgument("Invalid attribute name specified in x-amz-object-attributes.")
    meta = await ctx.services.objects.head_object(bucket, key, ctx.request.arg("versionId"))
    check_conditions(ctx.request.headers, etag=meta.etag, last_modified=meta.last_modified, now=ctx.services.clock())
    xml = XmlBuilder("GetObjectAttributesResponse")
    if "ETag" in wanted:
        xml.leaf("ETag", meta.etag)
    if "Checksum" in wanted and meta.checksums:
        xml.open("Checksum")
        for alg, value in meta.checksums:
            xml.leaf(f"Checksum{alg.upper()}", value)
        xml.close("Checksum")
    if "ObjectParts" in wanted and meta.parts:
        limit = min(_header_int(ctx, "x-amz-max-parts", 1000), 1000)
        marker = _header_int(ctx, "x-amz-part-number-marker", 0)
        numbered = list(enumerate(meta.parts, start=1))[marker : marker + limit]
        xml.open("ObjectParts").leaf("TotalPartsCount", len(meta.parts)).leaf("PartNumberMarker", marker)
        if numbered:
            xml.leaf("NextPartNumberMarker", numbered[-1][0])
        xml.leaf("MaxParts", limit).leaf("IsTruncated", marker + limit < len(meta.parts))
        for number, size in numbered:
            xml.open("Part").leaf("PartNumber", number).leaf("Size", size).close("Part")
        xml.close("ObjectParts")
    if "StorageClass" in wanted:
        xml.leaf("StorageClass", "STANDARD")
    if "ObjectSize" in wanted:
        xml.leaf("ObjectSize", meta.size)
    response = xml_response(xml)
    response.headers["Last-Modified"] = http_date(meta.last_modified)
    return response
