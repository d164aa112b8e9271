"""Bucket actions: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation."""

from __future__ import annotations

import re

from quart import Response

from appliance.api.s3.context import RequestContext
from appliance.api.s3.handlers.acl import creation_settings
from appliance.api.s3.render import XML_TYPE, empty_response, xml_response
from appliance.api.s3.xml import S3_NS, XmlBuilder, iso_date, local_name, parse_xml
from appliance.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    InvalidArgument,
    InvalidLocationConstraint,
    MalformedXML,
    NotImplementedAction,
)

__all__ = ["create_bucket", "delete_bucket", "get_bucket_location", "head_bucket", "list_buckets"]

_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}|EU")
_BUCKET_TOKEN = re.compile(r"[a-z0-9.-]{1,63}")  # the token is the last bucket name of the previous page


def _bucket(ctx: RequestContext) -> str:
    bucket = ctx.request.bucket
    assert bucket is not None  # the routing table sends only bucket-level requests here
    return bucket


MAX_BUCKETS = 10_000


def _max_buckets(ctx: RequestContext) -> int:
    text = ctx.request.arg("max-buckets")
    if text is None:
        return MAX_BUCKETS
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:6]) <= MAX_BUCKETS:
        raise InvalidArgument(f"max-buckets must be an integer between 1 and {MAX_BUCKETS}.")
    return int(text)


async def list_buckets(ctx: RequestContext) -> Response:
    """ListBuckets with its pagination (max-buckets, continuation-token), prefix and bucket-region filters."""
    limit = _max_buckets(ctx)
    prefix = ctx.request.arg("prefix") or ""
    region = ctx.request.arg("bucket-region")
    token = ctx.request.arg("continuation-token")
    if token is not None and not _BUCKET_TOKEN.fullmatch(token):
        raise InvalidArgument("The continuation token provided is incorrect.")
    caller = ctx.principal
    buckets = [
        b
        for b in await ctx.services.buckets.list_buckets()
        if (caller.is_root or b.owner == caller.account)  # a user sees its own buckets; root sees all
        and b.name.startswith(prefix)
        and (region is None or b.region == region)
        and (token is None or b.name > token)
    ]
    page, more = buckets[:limit], len(buckets) > limit
    owner = caller.account
    xml = XmlBuilder("ListAllMyBucketsResult")
    xml.open("Owner").leaf("ID", owner).leaf("DisplayName", owner).close("Owner")
    xml.open("Buckets")
    for bucket in page:
        xml.open("Bucket").leaf("Name", bucket.name).leaf("CreationDate", iso_date(bucket.created))
        xml.leaf("BucketRegion", bucket.region).close("Bucket")
    xml.close("Buckets")
    if more:
        xml.leaf("ContinuationToken", page[-1].name)
    if prefix:
        xml.leaf("Prefix", prefix)
    return xml_response(xml)


async def _location_constraint(ctx: RequestContext) -> str | None:
    request = ctx.request
    if not request.content_length and "x-amz-decoded-content-length" not in request.headers:
        return None
    body = await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes)
    if not body.strip():
        return None
    root = parse_xml(body, expected_root="CreateBucketConfiguration")
    region: str | None = None
    for child in root:
        if local_name(child.tag) == "LocationConstraint":
            if len(child):
                raise MalformedXML()
            region = (child.text or "").strip() or None
    if region is not None and not _REGION.fullmatch(region):
        raise InvalidLocationConstraint(f"The specified location-constraint is not valid: {region[:40]!r}.")
    return region


LEGACY_REGION = "us-east-1"


async def create_bucket(ctx: RequestContext) -> Response:
    """CreateBucket. Re-creating a bucket you own answers 200 on a us-east-1 endpoint (S3's legacy behaviour there)
    and BucketAlreadyOwnedByYou (409) elsewhere; a bucket another owner holds is BucketAlreadyExists (409)."""
    bucket = _bucket(ctx)
    if ctx.request.header("x-amz-bucket-object-lock-enabled").strip().lower() == "true":
        # A bucket the client believes is WORM-protected must not be created without that protection.
        raise NotImplementedAction("Object Lock is not implemented.")
    region = await _location_constraint(ctx)
    owner = ctx.principal.account
    settings = creation_settings(ctx.request, owner)  # x-amz-acl, x-amz-grant-*, x-amz-object-ownership
    try:
        await ctx.services.buckets.create_bucket(bucket, region=region, owner=owner)
    except BucketAlreadyOwnedByYou:
        existing = await ctx.services.buckets.get_bucket(bucket)
        if existing.owner != owner:
            raise BucketAlreadyExists() from None
        if ctx.services.s3.region != LEGACY_REGION:
            raise
    for name, value in settings:
        await ctx.services.buckets.put_config(bucket, name, value)
    return empty_response(200, {"Location": f"/{bucket}"})


async def head_bucket(ctx: RequestContext) -> Response:
    bucket = await ctx.services.buckets.get_bucket(_bucket(ctx))
    # A bucket name here is never an access point alias; SDKs read the header as a boolean.
    return empty_response(200, {"x-amz-bucket-region": bucket.region, "x-amz-access-point-alias": "false"})


async def delete_bucket(ctx: RequestContext) -> Response:
    await ctx.services.buckets.delete_bucket(_bucket(ctx))
    return empty_response(204)


async def get_bucket_location(ctx: RequestContext) -> Response:
    bucket = await ctx.services.buckets.get_bucket(_bucket(ctx))
    # us-east-1 is reported as an empty constraint, as S3 does.
    region = "" if bucket.region == "us-east-1" else bucket.region
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{S3_NS}">{region}</LocationConstraint>'
    return Response(body.encode("utf-8"), status=200, content_type=XML_TYPE)
