"""Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging."""

from __future__ import annotations

import json

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.tagging import MAX_BUCKET_TAGS, parse_tagging, render_tagging
from appliance.errors import NoSuchTagSet, NotImplementedAction

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


async def _only_current(ctx: RequestContext, bucket: str, key: str) -> None:
    """Tags of a noncurrent version are read-only here: changing them is refused rather than misapplied."""
    version_id = ctx.request.arg("versionId")
    if version_id is None:
        return
    current = await ctx.services.objects.head_object(bucket, key)
    if current.shown_version != version_id:
        await ctx.services.objects.head_object(bucket, key, version_id)  # NoSuchVersion when it does not exist
        raise NotImplementedAction("Changing the tags of a noncurrent version is not supported.")


async def put_object_tagging(ctx: RequestContext) -> Response:
    bucket, key = _object(ctx)
    await _only_current(ctx, bucket, key)
    await ctx.services.objects.head_object(bucket, key)  # NoSuchKey before reading the body
    tags = parse_tagging(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes))
    await ctx.services.objects.set_tags(bucket, key, tags)
    return empty_response(200)


async def get_object_tagging(ctx: RequestContext) -> Response:
    bucket, key = _object(ctx)
    meta = await ctx.services.objects.head_object(bucket, key, ctx.request.arg("versionId"))
    return xml_response(render_tagging(meta.tags))


async def delete_object_tagging(ctx: RequestContext) -> Response:
    bucket, key = _object(ctx)
    await _only_current(ctx, bucket, key)
    await ctx.services.objects.set_tags(bucket, key, ())
    return empty_response(204)


async def put_bucket_tagging(ctx: RequestContext) -> Response:
    bucket = _bucket(ctx)
    await ctx.services.buckets.get_bucket(bucket)
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
