"""ACLs and object ownership: Get/PutBucketAcl, Get/PutObjectAcl, Put/Get/DeleteBucketOwnershipControls."""

from __future__ import annotations

from quart import Response

from appliance.api.s3.acl_xml import grants_from_headers, has_acl_headers, parse_acl, render_acl
from appliance.api.s3.authorize import ACL_CONFIG, OWNERSHIP_CONFIG, BucketAccess, load_access
from appliance.api.s3.context import RequestContext
from appliance.api.s3.render import empty_response, xml_response
from appliance.api.s3.request import S3Request
from appliance.api.s3.xml import XmlBuilder, local_name, parse_xml
from appliance.errors import (
    AccessControlListNotSupported,
    AccessDenied,
    InvalidArgument,
    InvalidBucketAclWithObjectOwnership,
    InvalidRequest,
    MalformedACLError,
    MalformedXML,
    NoSuchBucket,
    OwnershipControlsNotFoundError,
)
from appliance.model import BucketMeta
from appliance.service.s3_acl import (
    DEFAULT_OWNERSHIP,
    DELETED_OWNERSHIP,
    OWNERSHIP_SETTINGS,
    Grant,
    acl_from_json,
    acl_to_json,
    is_public_acl,
)

__all__ = [
    "apply_object_acl",
    "creation_settings",
    "delete_bucket_ownership_controls",
    "get_bucket_acl",
    "get_bucket_ownership_controls",
    "get_object_acl",
    "put_bucket_acl",
    "put_bucket_ownership_controls",
    "put_object_acl",
]


async def _access(ctx: RequestContext) -> tuple[BucketAccess, BucketMeta]:
    bucket = ctx.request.bucket
    assert bucket is not None  # the routing table sends only bucket- and object-level requests here
    access = await load_access(ctx.services, bucket)
    if access.bucket is None:
        raise NoSuchBucket(f"The specified bucket does not exist: {bucket[:80]}")
    return access, access.bucket


async def _requested(ctx: RequestContext, access: BucketAccess, owner: str, bucket_owner: str) -> tuple[Grant, ...]:
    """The new ACL from the headers or the body (not both); checked against ownership and public access block."""
    headers = grants_from_headers(ctx.request, owner, bucket_owner) if has_acl_headers(ctx.request) else None
    body = await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes)
    if headers is not None and body.strip():
        raise InvalidRequest("An ACL is given either in headers or in the body, not both")
    if headers is None and not body.strip():
        raise MalformedACLError("An ACL needs an x-amz-acl or x-amz-grant-* header or an AccessControlPolicy body")
    grants = headers if headers is not None else parse_acl(body, owner)
    if not access.acls_enabled and grants != (Grant("CanonicalUser", owner, "FULL_CONTROL"),):
        raise AccessControlListNotSupported()
    if access.block.block_public_acls and is_public_acl(grants):
        raise AccessDenied()
    return grants


async def get_bucket_acl(ctx: RequestContext) -> Response:
    access, bucket = await _access(ctx)
    grants = access.grants if access.acls_enabled else acl_from_json(None, bucket.owner)
    return xml_response(render_acl(bucket.owner, grants))


async def put_bucket_acl(ctx: RequestContext) -> Response:
    access, bucket = await _access(ctx)
    grants = await _requested(ctx, access, bucket.owner, bucket.owner)
    await ctx.services.buckets.put_config(bucket.name, ACL_CONFIG, acl_to_json(grants))
    return empty_response(200)


async def get_object_acl(ctx: RequestContext) -> Response:
    access, bucket = await _access(ctx)
    assert ctx.request.key is not None
    meta = await ctx.services.objects.head_object(bucket.name, ctx.request.key, ctx.request.arg("versionId"))
    # With ACLs disabled the bucket owner owns every object and holds the only grant.
    owner = meta.owner if access.acls_enabled and meta.owner else bucket.owner
    grants = acl_from_json(meta.acl, owner) if access.acls_enabled else acl_from_json(None, owner)
    return xml_response(render_acl(owner, grants))


async def put_object_acl(ctx: RequestContext) -> Response:
    access, bucket = await _access(ctx)
    key = ctx.request.key
    assert key is not None
    version = ctx.request.arg("versionId")
    meta = await ctx.services.objects.head_object(bucket.name, key, version)
    owner = meta.owner or bucket.owner
    grants = await _requested(ctx, access, owner if access.acls_enabled else bucket.owner, bucket.owner)
    await ctx.services.objects.set_acl(bucket.name, key, acl_to_json(grants), version)
    return empty_response(200)


def creation_settings(request: S3Request, owner: str) -> list[tuple[str, str]]:
    """The bucket configs a CreateBucket's headers ask for. With ACLs disabled (the default, BucketOwnerEnforced)
    only a private ACL is accepted: InvalidBucketAclWithObjectOwnership otherwise, as S3."""
    ownership = request.headers.get("x-amz-object-ownership")
    if ownership is not None and ownership not in OWNERSHIP_SETTINGS:
        raise InvalidArgument("Invalid x-amz-object-ownership header")
    settings: list[tuple[str, str]] = []
    if ownership is not None:
        settings.append((OWNERSHIP_CONFIG, ownership))
    grants = grants_from_headers(request, owner) if has_acl_headers(request) else None
    if grants is not None and grants != acl_from_json(None, owner):
        if (ownership or DEFAULT_OWNERSHIP) == "BucketOwnerEnforced":
            raise InvalidBucketAclWithObjectOwnership()
        settings.append((ACL_CONFIG, acl_to_json(grants)))
    return settings


def parse_ownership(body: bytes) -> str:
    root = parse_xml(body, expected_root="OwnershipControls")
    rules = list(root)
    if len(rules) != 1 or local_name(rules[0].tag) != "Rule" or len(rules[0]) != 1:
        raise MalformedXML()
    (setting,) = list(rules[0])
    value = (setting.text or "").strip()
    if local_name(setting.tag) != "ObjectOwnership" or len(setting) or value not in OWNERSHIP_SETTINGS:
        raise MalformedXML()
    return value


async def put_bucket_ownership_controls(ctx: RequestContext) -> Response:
    _, bucket = await _access(ctx)
    setting = parse_ownership(await ctx.read_small_body(ctx.services.s3.max_xml_body_bytes))
    await ctx.services.buckets.put_config(bucket.name, OWNERSHIP_CONFIG, setting)
    return empty_response(200)


async def get_bucket_ownership_controls(ctx: RequestContext) -> Response:
    access, _ = await _access(ctx)
    if access.ownership_deleted:
        raise OwnershipControlsNotFoundError()
    xml = XmlBuilder("OwnershipControls").open("Rule").leaf("ObjectOwnership", access.ownership).close("Rule")
    return xml_response(xml)


async def delete_bucket_ownership_controls(ctx: RequestContext) -> Response:
    _, bucket = await _access(ctx)
    # Without a setting a bucket behaves as ObjectWriter (S3); the marker keeps it from reverting to the default.
    await ctx.services.buckets.put_config(bucket.name, OWNERSHIP_CONFIG, DELETED_OWNERSHIP)
    return empty_response(204)


_OBJECT_WRITES = frozenset({"PutObject", "CopyObject"})


async def apply_object_acl(ctx: RequestContext, action: str, access: BucketAccess | None, response: Response) -> None:
    """After a successful PutObject/CopyObject with ACL headers on a bucket with ACLs enabled: store the ACL with
    the new object (version). The object is private for the instant in between, never more open."""
    if action not in _OBJECT_WRITES or access is None or access.bucket is None or not access.acls_enabled:
        return
    if response.status_code != 200 or not has_acl_headers(ctx.request) or ctx.request.key is None:
        return
    grants = grants_from_headers(ctx.request, ctx.principal.account, access.bucket.owner)
    if grants is None:
        return
    version = response.headers.get("x-amz-version-id")
    await ctx.services.objects.set_acl(access.bucket.name, ctx.request.key, acl_to_json(grants), version)
