"""Bucket versioning: Put/GetBucketVersioning and ListObjectVersions."""

from __future__ import annotations

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.handlers.listing import encoder
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.xml import XmlBuilder, iso_date, local_name, parse_xml
from appliance.errors import InvalidArgument, MalformedXML
from appliance.service.objects import check_version_id

__all__ = ["get_bucket_versioning", "list_object_versions", "put_bucket_versioning"]

_STATES = ("Enabled", "Suspended")


def parse_versioning(body: bytes) -> str:
    """The Status of a VersioningConfiguration document (MfaDelete may only be Disabled)."""
    root = parse_xml(body, expected_root="VersioningConfiguration")
    status: str | None = None
    for child in root:
        name, text = local_name(child.tag), (child.text or "").strip()
        if len(child):
            raise MalformedXML()
        if name == "Status":
            if text not in _STATES:
                raise MalformedXML()
            status = text
        elif name == "MfaDelete":
            if text not in ("Disabled", ""):
                raise InvalidArgument("MFA delete is not supported by this appliance.")
        else:
            raise MalformedXML()
    if status is None:
        raise MalformedXML()
    return status


async def put_bucket_versioning(ctx: RequestContext) -> Response:
    bucket = ctx.request.bucket
    assert bucket is not None
    await ctx.services.buckets.get_bucket(bucket)
    status = parse_versioning(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes))
    await ctx.services.buckets.put_config(bucket, "versioning", status)
    return empty_response(200)


async def get_bucket_versioning(ctx: RequestContext) -> Response:
    bucket = ctx.request.bucket
    assert bucket is not None
    status = await ctx.services.buckets.get_config(bucket, "versioning")
    xml = XmlBuilder("VersioningConfiguration")
    if status in _STATES:
        xml.leaf("Status", status)
    return xml_response(xml)


def _int_arg(ctx: RequestContext, name: str, default: int) -> int:
    text = ctx.request.arg(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise InvalidArgument(f"Provided {name} not an integer or within integer range.")
    return min(int(text), 1000)


async def list_object_versions(ctx: RequestContext) -> Response:
    bucket = ctx.request.bucket
    assert bucket is not None
    args = ctx.request
    encoding, enc = encoder(ctx)
    limit = _int_arg(ctx, "max-keys", 1000)
    prefix = args.arg("prefix") or ""
    delimiter = args.arg("delimiter") or ""
    key_marker = args.arg("key-marker") or ""
    version_marker = args.arg("version-id-marker") or ""
    if version_marker:
        if not key_marker:
            raise InvalidArgument("A version-id marker cannot be specified without a key marker.")
        check_version_id(version_marker)
    page = await ctx.services.objects.list_versions(
        bucket,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        version_id_marker=version_marker,
        max_keys=limit,
    )
    xml = XmlBuilder("ListVersionsResult")
    xml.leaf("Name", bucket).leaf("Prefix", enc(prefix)).leaf("KeyMarker", enc(key_marker))
    xml.leaf("VersionIdMarker", version_marker)
    if page.is_truncated:
        xml.leaf("NextKeyMarker", enc(page.next_key_marker)).leaf("NextVersionIdMarker", page.next_version_id_marker)
    xml.leaf("MaxKeys", limit)
    if delimiter:
        xml.leaf("Delimiter", enc(delimiter))
    xml.leaf("IsTruncated", page.is_truncated).leaf("EncodingType", encoding)
    for meta, latest in page.versions:
        tag = "DeleteMarker" if meta.delete_marker else "Version"
        xml.open(tag).leaf("Key", enc(meta.key)).leaf("VersionId", meta.shown_version).leaf("IsLatest", latest)
        xml.leaf("LastModified", iso_date(meta.last_modified))
        if not meta.delete_marker:
            xml.leaf("ETag", f'"{meta.etag}"').leaf("Size", meta.size).leaf("StorageClass", "STANDARD")
        owner = meta.owner
        xml.open("Owner").leaf("ID", owner).leaf("DisplayName", owner).close("Owner").close(tag)
    for common in page.common_prefixes:
        xml.open("CommonPrefixes").leaf("Prefix", enc(common)).close("CommonPrefixes")
    return xml_response(xml)
