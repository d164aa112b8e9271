"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import quote_plus

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.render import xml_response
from appliance.api.s3.xml import XmlBuilder, iso_date
from appliance.errors import InvalidArgument
from appliance.model import ListPage

__all__ = ["encoder", "list_objects", "list_objects_v2"]

MAX_KEYS = 1000


def _max_keys(ctx: RequestContext) -> int:
    text = ctx.request.arg("max-keys")
    if text is None:
        return MAX_KEYS
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise InvalidArgument("Provided max-keys not an integer or within integer range.")
    return min(int(text), MAX_KEYS)


def encoder(ctx: RequestContext) -> tuple[str | None, Callable[[str], str]]:
    encoding = ctx.request.arg("encoding-type")
    if encoding is None:
        return None, _identity
    if encoding.lower() != "url":
        raise InvalidArgument("Invalid Encoding Method specified in Request.")
    return "url", _url_encode


def _identity(value: str) -> str:
    return value


def _url_encode(value: str) -> str:
    return quote_plus(value, safe="/")


def _encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(b"s3ipfs:" + marker.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        if not raw.startswith(b"s3ipfs:"):
            raise ValueError(token)
        return raw[len(b"s3ipfs:") :].decode("utf-8")
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidArgument("The continuation token provided is incorrect.") from None


async def _page(ctx: RequestContext, *, start_after: str, max_keys: int) -> ListPage:
    bucket = ctx.request.bucket
    assert bucket is not None
    return await ctx.services.objects.list_objects(
        bucket,
        prefix=ctx.request.arg("prefix") or "",
        delimiter=ctx.request.arg("delimiter") or "",
        start_after=start_after,
        max_keys=max_keys,
    )


def _entries(xml: XmlBuilder, page: ListPage, enc: Callable[[str], str], *, owner: bool) -> None:
    for obj in page.objects:
        xml.open("Contents").leaf("Key", enc(obj.key)).leaf("LastModified", iso_date(obj.last_modified))
        xml.leaf("ETag", f'"{obj.etag}"').leaf("Size", obj.size)
        if owner:
            xml.open("Owner").leaf("ID", obj.owner).leaf("DisplayName", obj.owner).close("Owner")
        xml.leaf("StorageClass", "STANDARD").close("Contents")
    for prefix in page.common_prefixes:
        xml.open("CommonPrefixes").leaf("Prefix", enc(prefix)).close("CommonPrefixes")


async def list_objects(ctx: RequestContext) -> Response:
    encoding, enc = encoder(ctx)
    max_keys = _max_keys(ctx)
    marker = ctx.request.arg("marker") or ""
    page = await _page(ctx, start_after=marker, max_keys=max_keys)
    args = ctx.request
    xml = XmlBuilder("ListBucketResult")
    xml.leaf("Name", args.bucket).leaf("Prefix", enc(args.arg("prefix") or "")).leaf("Marker", enc(marker))
    if page.is_truncated and page.next_marker is not None:
        xml.leaf("NextMarker", enc(page.next_marker))
    xml.leaf("MaxKeys", max_keys)
    delimiter = args.arg("delimiter")
    if delimiter:
        xml.leaf("Delimiter", enc(delimiter))
    xml.leaf("IsTruncated", page.is_truncated).leaf("EncodingType", encoding)
    _entries(xml, page, enc, owner=True)
    return xml_response(xml)


async def list_objects_v2(ctx: RequestContext) -> Response:
    encoding, enc = encoder(ctx)
    max_keys = _max_keys(ctx)
    args = ctx.request
    token = args.arg("continuation-token")
    start_after = args.arg("start-after") or ""
    position = _decode_token(token) if token is not None else start_after
    fetch_owner = (args.arg("fetch-owner") or "").lower() == "true"
    page = await _page(ctx, start_after=position, max_keys=max_keys)
    xml = XmlBuilder("ListBucketResult")
    xml.leaf("Name", args.bucket).leaf("Prefix", enc(args.arg("prefix") or ""))
    xml.leaf("ContinuationToken", token)
    if page.is_truncated and page.next_marker is not None:
        xml.leaf("NextContinuationToken", _encode_token(page.next_marker))
    xml.leaf("KeyCount", len(page.objects) + len(page.common_prefixes)).leaf("MaxKeys", max_keys)
    delimiter = args.arg("delimiter")
    if delimiter:
        xml.leaf("Delimiter", enc(delimiter))
    xml.leaf("IsTruncated", page.is_truncated)
    if start_after:
        xml.leaf("StartAfter", enc(start_after))
    xml.leaf("EncodingType", encoding)
    _entries(xml, page, enc, owner=fetch_owner)
    return xml_response(xml)
