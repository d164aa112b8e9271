"""Multipart upload actions: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

from urllib.parse import quote

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.handlers.listing import encoder
from appliance.api.s3.handlers.objects import (
    cid_headers,
    stored_headers,
    user_meta,
    write_condition,
)
from appliance.api.s3.handlers.write_options import check_write_options
from appliance.api.s3.payload import parse_checksum_algorithm
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.tagging import parse_tag_header
from appliance.api.s3.xml import XmlBuilder, iso_date, local_name, parse_xml
from appliance.checksums import ALGORITHMS, FULL_OBJECT_ALGORITHMS
from appliance.errors import InvalidArgument, InvalidRequest, MalformedXML, MissingContentLength, NoSuchUpload
from appliance.model import CompletedUpload, UploadMeta
from appliance.service.multipart import MAX_PARTS, CompletedPart, parse_part_number

__all__ = [
    "abort_multipart_upload",
    "complete_multipart_upload",
    "create_multipart_upload",
    "list_multipart_uploads",
    "list_parts",
    "parse_complete",
    "upload_part",
]

MAX_LISTED = 1000


def _target(ctx: RequestContext) -> tuple[str, str]:
    bucket, key = ctx.request.bucket, ctx.request.key
    assert bucket is not None and key is not None
    return bucket, key


async def _upload(ctx: RequestContext) -> UploadMeta:
    bucket, key = _target(ctx)
    upload_id = ctx.request.arg("uploadId") or ""
    return await ctx.services.multipart.get(bucket, key, upload_id)


def _int_arg(ctx: RequestContext, name: str, default: int, high: int) -> int:
    text = ctx.request.arg(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise InvalidArgument(f"Provided {name} not an integer or within integer range.")
    return min(int(text), high)


async def create_multipart_upload(ctx: RequestContext) -> Response:
    bucket, key = _target(ctx)
    headers = ctx.request.headers
    check_write_options(headers)
    declared = headers.get("x-amz-checksum-algorithm")
    # An unknown algorithm is S3's InvalidRequest, the same answer PutObject gives for x-amz-sdk-checksum-algorithm.
    algorithm = parse_checksum_algorithm(declared) if declared is not None and declared.strip() else ""
    checksum_type = headers.get("x-amz-checksum-type", "").strip().upper()
    if checksum_type and checksum_type not in ("COMPOSITE", "FULL_OBJECT"):
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    if checksum_type and not algorithm:
        raise InvalidRequest(
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
        )
    if algorithm:
        default = "FULL_OBJECT" if algorithm == "crc64nvme" else "COMPOSITE"
        checksum_type = checksum_type or default
        if checksum_type == "FULL_OBJECT" and algorithm not in FULL_OBJECT_ALGORITHMS:
            raise InvalidRequest(
                f"The FULL_OBJECT checksum type cannot be used with the {algorithm.upper()} algorithm."
            )
        if checksum_type == "COMPOSITE" and algorithm == "crc64nvme":
            raise InvalidRequest("The COMPOSITE checksum type cannot be used with the CRC64NVME algorithm.")
    upload = await ctx.services.multipart.create(
        bucket,
        key,
        content_type=headers.get("content-type") or "binary/octet-stream",
        user_meta=user_meta(headers),
        headers=stored_headers(headers),
        owner=ctx.principal.account,
        checksum_algorithm=algorithm,
        tags=parse_tag_header(headers["x-amz-tagging"]) if "x-amz-tagging" in headers else (),
        checksum_type=checksum_type,
    )
    xml = XmlBuilder("InitiateMultipartUploadResult")
    xml.leaf("Bucket", bucket).leaf("Key", key).leaf("UploadId", upload.upload_id)
    response = xml_response(xml)
    if algorithm:
        response.headers["x-amz-checksum-algorithm"] = algorithm.upper()
        response.headers["x-amz-checksum-type"] = checksum_type
    return response


async def upload_part(ctx: RequestContext) -> Response:
    part_number = parse_part_number(ctx.request.arg("partNumber"))
    upload = await _upload(ctx)
    if ctx.request.content_length is None and "x-amz-decoded-content-length" not in ctx.request.headers:
        raise MissingContentLength()
    body = ctx.verified_body(ctx.services.s3.max_single_put_bytes)
    part = await ctx.services.multipart.upload_part(upload, part_number, body)
    out = {"ETag": f'"{part.etag}"'}
    for alg, value in part.checksums:
        out[f"x-amz-checksum-{alg}"] = value
    return empty_response(200, out)


_PART_CHECKSUMS = {f"Checksum{alg.upper()}": alg for alg in ALGORITHMS}


def parse_complete(body: bytes) -> list[CompletedPart]:
    """The parts of a CompleteMultipartUpload document; MalformedXML for anything S3 would refuse."""
    root = parse_xml(body, expected_root="CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for child in root:
        if local_name(child.tag) != "Part":
            raise MalformedXML()
        number: int | None = None
        etag: str | None = None
        sums: dict[str, str] = {}
        for field in child:
            name = local_name(field.tag)
            text = (field.text or "").strip()
            if len(field):
                raise MalformedXML()
            if name == "PartNumber":
                if not text.isascii() or not text.isdigit() or len(text) > 5:
                    raise MalformedXML()
                number = int(text)
            elif name == "ETag":
                etag = text
            elif name in _PART_CHECKSUMS:
                if not text or len(text) > 128:
                    raise MalformedXML()
                sums[_PART_CHECKSUMS[name]] = text
            elif not name.startswith("Checksum"):  # ChecksumType and algorithms we do not keep: not checked
                raise MalformedXML()
        if number is None or etag is None:
            raise MalformedXML()
        parts.append(CompletedPart(number, etag, tuple(sorted(sums.items()))))
        if len(parts) > MAX_PARTS:
            raise MalformedXML()
    if not parts:
        raise MalformedXML()
    return parts


def _expected_size(ctx: RequestContext) -> int | None:
    text = ctx.request.headers.get("x-amz-mp-object-size")
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 15:
        raise InvalidArgument("The x-amz-mp-object-size header must be a non-negative integer.")
    return int(text)


async def complete_multipart_upload(ctx: RequestContext) -> Response:
    bucket, key = _target(ctx)
    upload_id = ctx.request.arg("uploadId") or ""
    condition = write_condition(ctx.request.headers)
    size = _expected_size(ctx)
    # Its x-amz-checksum-<algorithm> is the object's (checked in complete), not the XML body's.
    body = await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes, checksum_headers=False)
    requested = parse_complete(body)
    try:
        upload = await ctx.services.multipart.get(bucket, key, upload_id)
    except NoSuchUpload:
        # A retry of a Complete that succeeded (its answer was lost) gets the same answer, as S3 gives.
        done = await ctx.services.multipart.completed(bucket, key, upload_id, requested)
        if done is None:
            raise
        return _completed_response(ctx, done)
    expected = None
    if upload.checksum_algorithm:
        expected = ctx.request.headers.get(f"x-amz-checksum-{upload.checksum_algorithm}")
    done = await ctx.services.multipart.complete(
        upload, requested, expected_checksum=expected, condition=condition, expected_size=size
    )
    return _completed_response(ctx, done)


def _completed_response(ctx: RequestContext, done: CompletedUpload) -> Response:
    meta = done.meta
    scheme = "https" if ctx.services.s3.tls_certfile else "http"
    host = ctx.request.header("host", "localhost")
    xml = XmlBuilder("CompleteMultipartUploadResult")
    xml.leaf("Location", f"{scheme}://{host}/{quote(meta.bucket)}/{quote(meta.key, safe='/')}")
    xml.leaf("Bucket", meta.bucket).leaf("Key", meta.key).leaf("ETag", f'"{meta.etag}"')
    for alg, value in meta.checksums:
        xml.leaf(f"Checksum{alg.upper()}", value)
    if done.checksum_type:
        xml.leaf("ChecksumType", done.checksum_type)
    response = xml_response(xml)
    for name, value in cid_headers(meta.cid).items():
        response.headers[name] = value
    if meta.version_id:
        response.headers["x-amz-version-id"] = meta.version_id
    return response


async def abort_multipart_upload(ctx: RequestContext) -> Response:
    upload = await _upload(ctx)
    await ctx.services.multipart.abort(upload)
    return empty_response(204)


def _owner(xml: XmlBuilder, name: str, owner: str) -> None:
    xml.open(name).leaf("ID", owner).leaf("DisplayName", owner).close(name)


async def list_parts(ctx: RequestContext) -> Response:
    upload = await _upload(ctx)
    limit = _int_arg(ctx, "max-parts", MAX_LISTED, MAX_LISTED)
    after = _int_arg(ctx, "part-number-marker", 0, MAX_PARTS)
    parts = await ctx.services.multipart.list_parts(upload, after=after, limit=limit + 1)
    truncated = len(parts) > limit
    parts = parts[:limit]
    xml = XmlBuilder("ListPartsResult")
    xml.leaf("Bucket", upload.bucket).leaf("Key", upload.key).leaf("UploadId", upload.upload_id)
    _owner(xml, "Initiator", upload.owner)
    _owner(xml, "Owner", upload.owner)
    xml.leaf("StorageClass", "STANDARD").leaf("PartNumberMarker", after)
    if parts:
        xml.leaf("NextPartNumberMarker", parts[-1].part_number)
    xml.leaf("MaxParts", limit).leaf("IsTruncated", truncated)
    if upload.checksum_algorithm:
        xml.leaf("ChecksumAlgorithm", upload.checksum_algorithm.upper())
        xml.leaf("ChecksumType", upload.checksum_type or "COMPOSITE")
    for part in parts:
        xml.open("Part").leaf("PartNumber", part.part_number).leaf("LastModified", iso_date(part.last_modified))
        xml.leaf("ETag", f'"{part.etag}"').leaf("Size", part.size)
        for alg, value in part.checksums:
            xml.leaf(f"Checksum{alg.upper()}", value)
        xml.close("Part")
    return xml_response(xml)


async def list_multipart_uploads(ctx: RequestContext) -> Response:
    bucket = ctx.request.bucket
    assert bucket is not None
    args = ctx.request
    encoding, enc = encoder(ctx)
    limit = _int_arg(ctx, "max-uploads", MAX_LISTED, MAX_LISTED)
    prefix = args.arg("prefix") or ""
    delimiter = args.arg("delimiter") or ""
    key_marker = args.arg("key-marker") or ""
    id_marker = args.arg("upload-id-marker") or ""
    uploads = await ctx.services.multipart.list_uploads(bucket)
    entries: list[UploadMeta] = []
    prefixes: list[str] = []
    truncated = False
    last_was_prefix = False
    skipping_marker_key = bool(key_marker) and bool(id_marker)
    # A key marker that is a common prefix a previous page returned: the keys under it were rolled up there.
    rolled_up = key_marker if delimiter and key_marker.endswith(delimiter) and not id_marker else ""
    for upload in uploads:
        if not upload.key.startswith(prefix):
            continue
        if rolled_up and upload.key.startswith(rolled_up):
            continue
        if key_marker:
            if upload.key < key_marker:
                continue
            if upload.key == key_marker:
                if not id_marker:
                    continue
                if skipping_marker_key:
                    if upload.upload_id == id_marker:
                        skipping_marker_key = False
                    continue
        common = None
        if delimiter:
            cut = upload.key.find(delimiter, len(prefix))
            if cut >= 0:
                common = upload.key[: cut + len(delimiter)]
        if common is not None and prefixes and prefixes[-1] == common:
            continue
        if len(entries) + len(prefixes) == limit:
            truncated = limit > 0  # max-uploads=0 is an empty, complete page, as ListObjects answers
            break
        last_was_prefix = common is not None
        if common is not None:
            prefixes.append(common)
        else:
            entries.append(upload)
    xml = XmlBuilder("ListMultipartUploadsResult")
    xml.leaf("Bucket", bucket).leaf("KeyMarker", enc(key_marker)).leaf("UploadIdMarker", id_marker)
    if truncated and last_was_prefix:  # the page ended on a common prefix: continue after everything under it
        xml.leaf("NextKeyMarker", enc(prefixes[-1])).leaf("NextUploadIdMarker", "")
    elif truncated and entries:
        xml.leaf("NextKeyMarker", enc(entries[-1].key)).leaf("NextUploadIdMarker", entries[-1].upload_id)
    xml.leaf("MaxUploads", limit).leaf("IsTruncated", truncated)
    if prefix:
        xml.leaf("Prefix", enc(prefix))
    if delimiter:
        xml.leaf("Delimiter", enc(delimiter))
    xml.leaf("EncodingType", encoding)
    for upload in entries:
        xml.open("Upload").leaf("Key", enc(upload.key)).leaf("UploadId", upload.upload_id)
        _owner(xml, "Initiator", upload.owner)
        _owner(xml, "Owner", upload.owner)
        xml.leaf("StorageClass", "STANDARD").leaf("Initiated", iso_date(upload.initiated))
        if upload.checksum_algorithm:
            xml.leaf("ChecksumAlgorithm", upload.checksum_algorithm.upper())
        xml.close("Upload")
    for common in prefixes:
        xml.open("CommonPrefixes").leaf("Prefix", enc(common)).close("CommonPrefixes")
    return xml_response(xml)
