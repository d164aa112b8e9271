"""Bucket policies and public access: Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus and the
Put/Get/DeletePublicAccessBlock settings."""

from __future__ import annotations

from quart import Response

from appliance.api.s3.authorize import PAB_CONFIG, POLICY_CONFIG, load_access
from appliance.api.s3.context import RequestContext
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.xml import XmlBuilder, local_name, parse_xml
from appliance.errors import (
    AccessDenied,
    EntityTooLarge,
    MalformedPolicy,
    MalformedXML,
    NoSuchBucketPolicy,
    NoSuchPublicAccessBlockConfiguration,
)
from appliance.service.iam_policy import MAX_BUCKET_POLICY_BYTES, Policy, parse_policy
from appliance.service.s3_acl import PublicAccessBlock

__all__ = [
    "delete_bucket_policy",
    "delete_public_access_block",
    "get_bucket_policy",
    "get_bucket_policy_status",
    "get_public_access_block",
    "put_bucket_policy",
    "put_public_access_block",
]

_PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _bucket(ctx: RequestContext) -> str:
    assert ctx.request.bucket is not None  # the routing table sends only bucket-level requests here
    return ctx.request.bucket


def check_resources(policy: Policy, bucket: str) -> None:
    """Every Resource of a bucket policy must be this bucket or objects in it, as S3 requires."""
    arn = f"arn:aws:s3:::{bucket}"
    for statement in policy.statements:
        for resource in statement.resources:
            if resource != arn and not resource.startswith(arn + "/"):
                raise MalformedPolicy(f"Policy has invalid resource {resource[:80]!r}")


async def put_bucket_policy(ctx: RequestContext) -> Response:
    bucket = _bucket(ctx)
    access = await load_access(ctx.services, bucket)  # NoSuchBucket before reading the body
    if access.bucket is None:
        await ctx.services.buckets.get_bucket(bucket)
    try:
        body = await ctx.read_small_body(MAX_BUCKET_POLICY_BYTES + 1)
    except EntityTooLarge:
        raise MalformedPolicy(f"Policy exceeds the maximum allowed document size ({MAX_BUCKET_POLICY_BYTES})") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPolicy("Policies must be valid UTF-8 JSON") from None
    policy = parse_policy(text, kind="bucket")
    check_resources(policy, bucket)
    if access.block.block_public_policy and policy.is_public:
        raise AccessDenied()  # S3 answers a public policy under BlockPublicPolicy this way
    await ctx.services.buckets.put_config(bucket, POLICY_CONFIG, text)
    return empty_response(204)


async def get_bucket_policy(ctx: RequestContext) -> Response:
    text = await ctx.services.buckets.get_config(_bucket(ctx), POLICY_CONFIG)
    if text is None:
        raise NoSuchBucketPolicy()
    return Response(text.encode("utf-8"), status=200, content_type="application/json")


async def delete_bucket_policy(ctx: RequestContext) -> Response:
    await ctx.services.buckets.delete_config(_bucket(ctx), POLICY_CONFIG)
    return empty_response(204)


async def get_bucket_policy_status(ctx: RequestContext) -> Response:
    text = await ctx.services.buckets.get_config(_bucket(ctx), POLICY_CONFIG)
    if text is None:
        raise NoSuchBucketPolicy()
    xml = XmlBuilder("PolicyStatus").leaf("IsPublic", parse_policy(text, kind="bucket").is_public)
    return xml_response(xml)


def parse_public_access_block(body: bytes) -> PublicAccessBlock:
    root = parse_xml(body, expected_root="PublicAccessBlockConfiguration")
    values = dict.fromkeys(_PAB_FIELDS, False)
    seen: set[str] = set()
    for child in root:
        name = local_name(child.tag)
        if name not in values or name in seen or len(child):
            raise MalformedXML()
        seen.add(name)
        text = (child.text or "").strip().lower()
        if text not in ("true", "false"):
            raise MalformedXML()
        values[name] = text == "true"
    return PublicAccessBlock(*(values[name] for name in _PAB_FIELDS))


async def put_public_access_block(ctx: RequestContext) -> Response:
    bucket = _bucket(ctx)
    await ctx.services.buckets.get_bucket(bucket)
    block = parse_public_access_block(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes))
    await ctx.services.buckets.put_config(bucket, PAB_CONFIG, block.to_json())
    return empty_response(200)


async def get_public_access_block(ctx: RequestContext) -> Response:
    stored = await ctx.services.buckets.get_config(_bucket(ctx), PAB_CONFIG)
    if stored is None:
        raise NoSuchPublicAccessBlockConfiguration()
    block = PublicAccessBlock.from_json(stored)
    xml = XmlBuilder("PublicAccessBlockConfiguration")
    xml.leaf("BlockPublicAcls", block.block_public_acls).leaf("IgnorePublicAcls", block.ignore_public_acls)
    xml.leaf("BlockPublicPolicy", block.block_public_policy)
    xml.leaf("RestrictPublicBuckets", block.restrict_public_buckets)
    return xml_response(xml)


async def delete_public_access_block(ctx: RequestContext) -> Response:
    await ctx.services.buckets.delete_config(_bucket(ctx), PAB_CONFIG)
    return empty_response(204)
