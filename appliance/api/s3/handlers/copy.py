"""CopyObject and UploadPartCopy: a copy references the same CID (no data moves) unless a byte range is asked for."""

from __future__ import annotations

from urllib.parse import unquote

from quart import Response

from appliance.api.s3.auth_owner import SOURCE_OWNER_HEADER, check_owner
from appliance.api.s3.conditions import check_conditions, parse_range
from appliance.api.s3.context import RequestContext
from appliance.api.s3.handlers.objects import (
    cid_headers,
    stored_headers,
    user_meta,
    without_cid,
    write_condition,
)
from appliance.api.s3.handlers.write_options import check_write_options
from appliance.api.s3.render import xml_response
from appliance.api.s3.tagging import parse_tag_header
from appliance.api.s3.xml import XmlBuilder, iso_date
from appliance.errors import InvalidArgument, InvalidRange, InvalidRequest, NotModified, PreconditionFailed
from appliance.model import ObjectMeta
from appliance.service.multipart import parse_part_number
from appliance.service.objects import check_version_id

__all__ = ["copy_object", "parse_copy_source", "upload_part_copy"]

_COPY_CONDITIONS = {
    "x-amz-copy-source-if-match": "if-match",
    "x-amz-copy-source-if-none-match": "if-none-match",
    "x-amz-copy-source-if-modified-since": "if-modified-since",
    "x-amz-copy-source-if-unmodified-since": "if-unmodified-since",
}


def parse_copy_source(value: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id or None) of an x-amz-copy-source header: '/bucket/key' or 'bucket/key',
    URL-encoded, optionally followed by '?versionId=<id>'."""
    path, _, query = value.strip().partition("?")
    version: str | None = None
    if query:
        name, _, version = query.partition("=")
        if name != "versionId" or not version:
            raise InvalidArgument("Invalid version id specified")
        check_version_id(version)
    decoded = unquote(path, errors="strict").removeprefix("/")
    bucket, sep, key = decoded.partition("/")
    if not sep or not bucket or not key:
        raise InvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
    return bucket, key, version


async def _source(ctx: RequestContext) -> ObjectMeta:
    try:
        bucket, key, version = parse_copy_source(ctx.request.header("x-amz-copy-source"))
    except UnicodeDecodeError:
        raise InvalidArgument("Copy Source is not valid UTF-8.") from None
    source_owner = ctx.request.headers.get(SOURCE_OWNER_HEADER)
    if source_owner is not None:
        await check_owner(ctx.services, bucket, source_owner)
    meta = await ctx.services.objects.head_object(bucket, key, version)
    wanted = {
        plain: ctx.request.headers[name] for name, plain in _COPY_CONDITIONS.items() if name in ctx.request.headers
    }
    try:
        check_conditions(wanted, etag=meta.etag, last_modified=meta.last_modified, now=ctx.services.clock())
    except NotModified:
        raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.") from None
    return meta


async def copy_object(ctx: RequestContext) -> Response:
    bucket, key = ctx.request.bucket, ctx.request.key
    assert bucket is not None and key is not None
    headers = ctx.request.headers
    check_write_options(headers)
    condition = write_condition(headers)  # the destination's If-Match / If-None-Match: *, as on PutObject
    source = await _source(ctx)
    directive = headers.get("x-amz-metadata-directive", "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise InvalidArgument(f"Unknown metadata directive {directive[:20]!r}.")
    if (source.bucket, source.key) == (bucket, key) and directive == "COPY":
        raise InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself without changing the "
            "object's metadata, storage class, website redirect location or encryption attributes."
        )
    if directive == "REPLACE":
        content_type = headers.get("content-type") or "binary/octet-stream"
        meta_pairs, stored = user_meta(headers), stored_headers(headers)
    else:
        content_type, meta_pairs, stored = source.content_type, without_cid(source.user_meta), source.headers
    owner = ctx.principal.account
    tag_directive = headers.get("x-amz-tagging-directive", "COPY").strip().upper()
    if tag_directive not in ("COPY", "REPLACE"):
        raise InvalidArgument(f"Unknown tagging directive {tag_directive[:20]!r}.")
    tags = source.tags if tag_directive == "COPY" else parse_tag_header(headers.get("x-amz-tagging", ""))
    copied = await ctx.services.objects.copy_object(
        source,
        bucket,
        key,
        content_type=content_type,
        user_meta=meta_pairs,
        headers=stored,
        owner=owner,
        tags=tags,
        condition=condition,
    )
    xml = XmlBuilder("CopyObjectResult")
    xml.leaf("ETag", f'"{copied.etag}"').leaf("LastModified", iso_date(copied.last_modified))
    for alg, value in copied.checksums:
        xml.leaf(f"Checksum{alg.upper()}", value)
    response = xml_response(xml)
    for name, value in cid_headers(copied.cid).items():
        response.headers[name] = value
    if copied.version_id:
        response.headers["x-amz-version-id"] = copied.version_id
    if source.version_id:
        response.headers["x-amz-copy-source-version-id"] = source.version_id
    return response


async def upload_part_copy(ctx: RequestContext) -> Response:
    bucket, key = ctx.request.bucket, ctx.request.key
    assert bucket is not None and key is not None
    part_number = parse_part_number(ctx.request.arg("partNumber"))
    upload = await ctx.services.multipart.get(bucket, key, ctx.request.arg("uploadId") or "")
    source = await _source(ctx)
    range_header = ctx.request.headers.get("x-amz-copy-source-range")
    span = None
    if range_header is not None:
        span = parse_range(range_header, source.size)
        if span is None:
            raise InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last.")
    if span is None and "-" not in source.etag:
        # The whole of a plain object: its CID and MD5 are the part's. No data moves.
        part = await ctx.services.multipart.add_existing_part(upload, part_number, source)
    else:
        first, last = span if span is not None else (0, source.size - 1)
        if source.size == 0:
            raise InvalidRange(object_size=0)
        part = await ctx.services.multipart.upload_part_from(
            upload, part_number, ctx.services.objects.open_content(source, first, last - first + 1)
        )
    xml = XmlBuilder("CopyPartResult")
    xml.leaf("ETag", f'"{part.etag}"').leaf("LastModified", iso_date(part.last_modified))
    for alg, value in part.checksums:
        xml.leaf(f"Checksum{alg.upper()}", value)
    response = xml_response(xml)
    if source.version_id:
        response.headers["x-amz-copy-source-version-id"] = source.version_id
    return response
