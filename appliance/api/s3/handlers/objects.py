"""Object actions: PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from quart import Response

from appliance.api.s3.conditions import check_conditions, parse_range
from appliance.api.s3.context import RequestContext
from appliance.api.s3.handlers.write_options import check_read_options, check_write_options
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.tagging import parse_tag_header
from appliance.api.s3.usermeta import user_meta, wire_value  # user_meta is re-exported for the other handlers
from appliance.api.s3.xml import XmlBuilder, http_date
from appliance.errors import (
    BackendError,
    DeleteMarkerError,
    InvalidArgument,
    InvalidPartNumber,
    InvalidRequest,
    MissingContentLength,
    NoSuchKey,
    NotImplementedAction,
    PreconditionFailed,
)
from appliance.model import ObjectMeta, WriteCondition, etag_matches
from appliance.service.multipart import parse_part_number
from appliance.service.objects import PutRequest

__all__ = [
    "delete_object",
    "get_object",
    "get_object_attributes",
    "head_object",
    "put_object",
    "cid_headers",
    "stored_headers",
    "user_meta",
    "without_cid",
    "write_condition",
]

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# Standard headers stored with the object and returned on GET/HEAD.
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-website-redirect-location",  # kept and returned as S3 does (no website hosting serves it here)
)
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
# The object's CID is returned as x-amz-meta-cid: derived on every response, never kept as user metadata.
CID_META = "cid"


def _wire(value: str) -> str:
    """A header value as Quart sends it (latin-1) that puts the client's original bytes back on the wire."""
    return value.encode("utf-8", "surrogateescape").decode("latin-1")


def _key(ctx: RequestContext) -> tuple[str, str]:
    bucket, key = ctx.request.bucket, ctx.request.key
    assert bucket is not None and key is not None  # the routing table sends only object-level requests here
    return bucket, key


def without_cid(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """User metadata without a `cid` entry (rows written before it was dropped on PUT may hold one)."""
    return tuple(pair for pair in pairs if pair[0] != CID_META)


def cid_headers(cid: str) -> dict[str, str]:
    """The CID as S3-on-IPFS clients read it (x-amz-meta-cid) and as our own header."""
    return {META_PREFIX + CID_META: cid, "x-ipfs-cid": cid}


def write_condition(headers: dict[str, str]) -> WriteCondition | None:
    """The conditional write of a PutObject / CompleteMultipartUpload, as S3 accepts it: If-None-Match only as `*`,
    not together with If-Match (NotImplemented otherwise, as S3 answers)."""
    if_match, if_none_match = headers.get("if-match"), headers.get("if-none-match")
    if if_none_match is None:
        return None if if_match is None else WriteCondition(if_match=if_match)
    if if_none_match.strip() != "*" or if_match is not None:
        raise NotImplementedAction("A header you provided implies functionality that is not implemented")
    return WriteCondition(if_none_match=True)


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
    headers.update(cid_headers(meta.cid))
    headers["x-ipfs-pin-status"] = pin_state
    if meta.tags:
        headers["x-amz-tagging-count"] = str(len(meta.tags))
    if meta.version_id:
        headers["x-amz-version-id"] = meta.version_id
    return headers


async def put_object(ctx: RequestContext) -> Response:
    bucket, key = _key(ctx)
    headers = ctx.request.headers
    if ctx.request.content_length is None and "x-amz-decoded-content-length" not in headers:
        raise MissingContentLength()
    check_write_options(headers)
    request = PutRequest(
        bucket=bucket,
        key=key,
        content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE,
        user_meta=user_meta(headers),
        headers=stored_headers(headers),
        owner=ctx.principal.account,
        tags=parse_tag_header(headers["x-amz-tagging"]) if "x-amz-tagging" in headers else (),
        condition=write_condition(headers),
    )
    body = ctx.verified_body(ctx.services.s3.max_single_put_bytes)
    meta = await ctx.services.objects.put_object(request, body)
    pin_state = await ctx.services.objects.pin_state(meta.cid)
    out = {"ETag": f'"{meta.etag}"', **cid_headers(meta.cid), "x-ipfs-pin-status": pin_state}
    if meta.version_id:
        out["x-amz-version-id"] = meta.version_id
    for alg, value in meta.checksums:
        out[f"x-amz-checksum-{alg}"] = value
        out["x-amz-checksum-type"] = "FULL_OBJECT"  # a single PUT's checksum is of the whole object
    return empty_response(200, out)


def _checksum_headers(ctx: RequestContext, checksums: tuple[tuple[str, str], ...], headers: dict[str, str]) -> None:
    if ctx.request.header("x-amz-checksum-mode").upper() == "ENABLED":
        for alg, value in checksums:
            headers[f"x-amz-checksum-{alg}"] = value
            headers["x-amz-checksum-type"] = "COMPOSITE" if "-" in value else "FULL_OBJECT"


def _part_span(meta: ObjectMeta, number: int) -> tuple[tuple[int, int] | None, tuple[tuple[str, str], ...]]:
    """The (first, last) bytes of part `number` and its checksums; a plain object is its own part 1, as in S3.
    InvalidPartNumber (416) for a part the object does not have."""
    if not meta.parts:
        if number != 1:
            raise InvalidPartNumber()
        return ((0, meta.size - 1) if meta.size else None), meta.checksums
    first = 0
    for index, (part_number, size) in enumerate(meta.numbered_parts):
        if part_number == number:
            sums = meta.part_checksums[index] if index < len(meta.part_checksums) else ()
            return ((first, first + size - 1) if size else None), sums
        first += size
    raise InvalidPartNumber()


async def _prepare(ctx: RequestContext) -> tuple[ObjectMeta, dict[str, str], tuple[int, int] | None]:
    bucket, key = _key(ctx)
    check_read_options(ctx.request.headers)
    part_text = ctx.request.arg("partNumber")
    part_number = None if part_text is None else parse_part_number(part_text)
    if part_number is not None and "range" in ctx.request.headers:
        raise InvalidRequest("Cannot specify both Range header and partNumber query parameter.")
    meta, pin_state = await ctx.services.objects.head_object_pin(bucket, key, ctx.request.arg("versionId"))
    check_conditions(ctx.request.headers, etag=meta.etag, last_modified=meta.last_modified, now=ctx.services.clock())
    checksums = meta.checksums
    if part_number is None:
        span = parse_range(ctx.request.headers.get("range"), meta.size)
    else:
        span, checksums = _part_span(meta, part_number)
    headers = _object_headers(meta, pin_state)
    for param, header in OVERRIDES.items():
        value = ctx.request.arg(param)
        if value is not None:
            headers[header] = _wire(value)
    if part_number is not None and meta.parts:
        headers["x-amz-mp-parts-count"] = str(len(meta.parts))  # S3 sends it only for a part of a multipart object
    if span is None:
        _checksum_headers(ctx, checksums, headers)
        headers["Content-Length"] = str(meta.size if part_number is None else 0)
    else:
        first, last = span
        if part_number is not None:
            _checksum_headers(ctx, checksums, headers)
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
    if_match = ctx.request.headers.get("if-match")
    if if_match is not None:
        # A conditional delete (S3's If-Match on DeleteObject): NoSuchKey when there is nothing (or a delete marker)
        # to compare with, 412 when the ETag differs. Checked just before the delete, not inside its transaction.
        try:
            current = await ctx.services.objects.head_object(bucket, key, version_id)
        except DeleteMarkerError:
            raise NoSuchKey(f"The specified key does not exist: {key[:200]}") from None
        if not etag_matches(if_match, current.etag):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.")
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


def _lenient_int(ctx: RequestContext, name: str, default: int) -> int:
    """An integer header GetObjectAttributes takes; S3 ignores a value that is not one, so do we."""
    text = ctx.request.header(name).strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > 9:
        return default
    return int(text)


_ATTRIBUTES = frozenset({"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"})
MAX_LISTED_PARTS = 1000


def _object_parts(ctx: RequestContext, xml: XmlBuilder, meta: ObjectMeta) -> None:
    """ObjectParts of a multipart object: one page of its parts after x-amz-part-number-marker."""
    limit = min(_lenient_int(ctx, "x-amz-max-parts", MAX_LISTED_PARTS), MAX_LISTED_PARTS)
    marker = _lenient_int(ctx, "x-amz-part-number-marker", 0)
    after = [(i, n, size) for i, (n, size) in enumerate(meta.numbered_parts) if n > marker]
    page = after[:limit]
    xml.open("ObjectParts").leaf("PartsCount", len(meta.parts)).leaf("PartNumberMarker", marker)
    if page:
        xml.leaf("NextPartNumberMarker", page[-1][1])
    xml.leaf("MaxParts", limit).leaf("IsTruncated", len(after) > limit)
    for index, number, size in page:
        xml.open("Part")
        for alg, value in meta.part_checksums[index] if index < len(meta.part_checksums) else ():
            xml.leaf(f"Checksum{alg.upper()}", value)
        xml.leaf("PartNumber", number).leaf("Size", size).close("Part")
    xml.close("ObjectParts")


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
        xml.leaf("ChecksumType", "COMPOSITE" if "-" in meta.checksums[0][1] else "FULL_OBJECT")
        xml.close("Checksum")
    if "ObjectParts" in wanted and meta.parts:
        _object_parts(ctx, xml, meta)
    if "StorageClass" in wanted:
        xml.leaf("StorageClass", "STANDARD")
    if "ObjectSize" in wanted:
        xml.leaf("ObjectSize", meta.size)
    response = xml_response(xml)
    response.headers["Last-Modified"] = http_date(meta.last_modified)
    if meta.version_id:
        response.headers["x-amz-version-id"] = meta.version_id
    return response
