"""Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging."""

from __future__ import annotations

import json

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.tagging import MAX_BUCKET_TAGS, parse_tagging, render_tagging
from appliance.errors import InvalidRequest, NoSuchTagSet

__all__ = [
    "delete_bucket_tagging",
    "delete_object_tagging",
    "get_bucket_tagging",
    "get_object_tagging",
    "put_bucket_tagging",
    "put_object_tagging",
]


def _object(ctx: RequestContext) -> tuple[str, str]:
    bucket, key = ctx.request.bucket, ctx.request.key
    assert bucket is not None and key is not None
    return bucket, key


def _bucket(ctx: RequestContext) -> str:
    assert ctx.request.bucket is not None
    return ctx.request.bucket


async def put_object_tagging(ctx: RequestContext) -> Response:
    bucket, key = _object(ctx)
    version_id = ctx.request.arg("versionId")
    await ctx.services.objects.head_object(bucket, key, version_id)  # NoSuchKey before reading the body
    tags = parse_tagging(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes))
    meta = await ctx.services.objects.set_tags(bucket, key, tags, version_id)
    return empty_response(200, {"x-amz-version-id": meta.version_id} if meta.version_id else None)


async def get_object_tagging(ctx: RequestContext) -> Response:
    bucket, key = _object(ctx)
    meta = await ctx.services.objects.head_object(bucket, key, ctx.request.arg("versionId"))
    return xml_response(render_tagging(meta.tags))


async def delete_object_tagging(ctx: RequestContext) -> Response:
    bucket, key = _object(ctx)
    meta = await ctx.services.objects.set_tags(bucket, key, (), ctx.request.arg("versionId"))
    return empty_response(204, {"x-amz-version-id": meta.version_id} if meta.version_id else None)


def _require_integrity_header(headers: dict[str, str]) -> None:
    """PutBucketTagging must carry Content-MD5 or a checksum (boto3 now sends x-amz-checksum-crc32 instead of
    Content-MD5), as in S3; the body verifier then checks it (BadDigest)."""
    if "content-md5" in headers or "x-amz-trailer" in headers:
        return
    if any(name.startswith("x-amz-checksum-") and name != "x-amz-checksum-mode" for name in headers):
        return
    raise InvalidRequest("Missing required header for this request: Content-MD5 OR x-amz-checksum-*")


async def put_bucket_tagging(ctx: RequestContext) -> Response:
    bucket = _bucket(ctx)
    await ctx.services.buckets.get_bucket(bucket)
    _require_integrity_header(ctx.request.headers)
    tags = parse_tagging(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes), limit=MAX_BUCKET_TAGS)
    await ctx.services.buckets.put_config(bucket, "tagging", json.dumps(tags))
    return empty_response(204)


async def get_bucket_tagging(ctx: RequestContext) -> Response:
    stored = await ctx.services.buckets.get_config(_bucket(ctx), "tagging")
    if stored is None:
        raise NoSuchTagSet()
    tags = tuple((str(k), str(v)) for k, v in json.loads(stored))
    return xml_response(render_tagging(tags))


async def delete_bucket_tagging(ctx: RequestContext) -> Response:
    await ctx.services.buckets.delete_config(_bucket(ctx), "tagging")
    return empty_response(204)
