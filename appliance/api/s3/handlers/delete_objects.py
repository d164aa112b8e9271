"""DeleteObjects: the multi-object delete (POST ?delete), quiet and verbose."""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from quart import Response

from appliance.api.error_text import client_message, log_server_error
from appliance.api.s3.authorize import denied_deletes
from appliance.api.s3.context import RequestContext
from appliance.api.s3.error_map import s3_error_for
from appliance.api.s3.render import xml_response
from appliance.api.s3.xml import XmlBuilder, local_name, parse_xml
from appliance.errors import (
    DeleteMarkerError,
    InvalidArgument,
    InvalidRequest,
    KeyTooLongError,
    MalformedXML,
    NoSuchKey,
    NoSuchVersion,
    PreconditionFailed,
    RequestError,
    S3IpfsError,
)
from appliance.model import etag_matches

__all__ = ["MAX_DELETE_KEYS", "delete_objects", "parse_delete"]

MAX_DELETE_KEYS = 1000

log = logging.getLogger("appliance.s3")


def _text(element: Element) -> str:
    if len(element):
        raise MalformedXML()
    return element.text or ""


def parse_delete(body: bytes) -> tuple[bool, list[tuple[str, str | None, str | None]]]:
    """(quiet, [(key, version id, ETag condition)]) from a <Delete> document; MalformedXML for anything S3 would
    refuse. LastModifiedTime and Size (conditions of directory buckets only) are accepted and not evaluated."""
    root = parse_xml(body, expected_root="Delete")
    quiet = False
    entries: list[tuple[str, str | None, str | None]] = []
    for child in root:
        name = local_name(child.tag)
        if name == "Quiet":
            value = _text(child).strip().lower()
            if value not in ("true", "false"):
                raise MalformedXML()
            quiet = value == "true"
        elif name == "Object":
            key: str | None = None
            version: str | None = None
            etag: str | None = None
            for part in child:
                part_name = local_name(part.tag)
                if part_name == "Key":
                    key = _text(part)
                elif part_name == "VersionId":
                    version = _text(part)
                elif part_name == "ETag":
                    etag = _text(part)
                elif part_name not in ("LastModifiedTime", "Size"):
                    raise MalformedXML()
            if not key:
                raise MalformedXML()
            entries.append((key, version, etag))
            if len(entries) > MAX_DELETE_KEYS:
                raise MalformedXML()
        else:
            raise MalformedXML()
    if not entries:
        raise MalformedXML()
    return quiet, entries


def _has_integrity_header(headers: dict[str, str]) -> bool:
    return "content-md5" in headers or any(
        name.startswith("x-amz-checksum-") or name in ("x-amz-sdk-checksum-algorithm", "x-amz-trailer")
        for name in headers
        if name != "x-amz-checksum-mode"
    )


async def _failed_conditions(
    ctx: RequestContext, bucket: str, parsed: list[tuple[str, str | None, str | None]]
) -> dict[int, RequestError]:
    """The entries whose <ETag> condition fails (S3's per-key PreconditionFailed, or NoSuchKey when there is no
    object to compare with), by index. Checked just before the delete, not inside its transaction."""
    refused: dict[int, RequestError] = {}
    for index, (key, version, etag) in enumerate(parsed):
        if etag is None:
            continue
        try:
            current = await ctx.services.objects.head_object(bucket, key, version)
        except DeleteMarkerError:
            refused[index] = NoSuchKey("The specified key does not exist.")
            continue
        except (NoSuchKey, NoSuchVersion, InvalidArgument, KeyTooLongError) as error:
            refused[index] = error
            continue
        if not etag_matches(etag, current.etag):
            refused[index] = PreconditionFailed("At least one of the pre-conditions you specified did not hold.")
    return refused


async def delete_objects(ctx: RequestContext) -> Response:
    bucket = ctx.request.bucket
    assert bucket is not None
    if not _has_integrity_header(ctx.request.headers):
        raise InvalidRequest("Missing required header for this request: Content-MD5.")
    body = await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes)
    quiet, parsed = parse_delete(body)
    keys = [(key, version) for key, version, _ in parsed]
    denied = await denied_deletes(ctx, keys)
    # Conditions are evaluated only for the keys the caller may delete: a denied key reveals nothing of its ETag.
    refused = await _failed_conditions(
        ctx,
        bucket,
        [entry if index not in denied else (entry[0], entry[1], None) for index, entry in enumerate(parsed)],
    )
    allowed = [entry for index, entry in enumerate(keys) if index not in denied and index not in refused]
    results = await ctx.services.objects.delete_objects(bucket, allowed) if allowed else []
    xml = XmlBuilder("DeleteResult")
    for index in sorted(denied):  # refused per key, as S3 does, without touching the others
        key, version = keys[index]
        xml.open("Error").leaf("Key", key).leaf("VersionId", version)
        xml.leaf("Code", "AccessDenied").leaf("Message", "Access Denied").close("Error")
    for index, refusal in refused.items():
        key, version = keys[index]
        xml.open("Error").leaf("Key", key).leaf("VersionId", version)
        xml.leaf("Code", s3_error_for(refusal)[0]).leaf("Message", client_message(refusal)).close("Error")
    for result in results:
        if result.error is None:
            if not quiet:
                removed = result.removed
                xml.open("Deleted").leaf("Key", result.key).leaf("VersionId", result.version_id)
                if removed is not None and removed.delete_marker:
                    xml.leaf("DeleteMarker", True)
                    xml.leaf("DeleteMarkerVersionId", removed.version_id if result.version_id is None else None)
                xml.close("Deleted")
            continue
        error = result.error
        code, _ = s3_error_for(error) if isinstance(error, S3IpfsError) else ("InternalError", 500)
        if not isinstance(error, RequestError):  # the client reads a generic text; the log has the details
            log_server_error(log, ctx.request_id, f"DeleteObjects {bucket[:64]}/{result.key[:200]}", error)
        message = client_message(error)
        xml.open("Error").leaf("Key", result.key).leaf("VersionId", result.version_id)
        xml.leaf("Code", code).leaf("Message", message).close("Error")
    return xml_response(xml)
