"""Authorization of every S3 request: after authentication, before the handler. Builds the request facts, loads the
bucket's policy, ACL, ownership and public access settings, and asks the pure evaluator (service/iam_policy.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import unquote

from appliance.api.s3.actions import ACTIONS, ActionSpec, iam_action, object_arn, resource_arn
from appliance.api.s3.context import Origin, RequestContext, S3Services
from appliance.api.s3.request import S3Request
from appliance.api.s3.sigv4 import AuthContext
from appliance.errors import (
    AccessControlListNotSupported,
    AccessDenied,
    InvalidAccessKeyId,
    RequestError,
)
from appliance.model import ANONYMOUS, BucketMeta, Principal
from appliance.service.iam_policy import Decision, Policy, RequestFacts, evaluate, parse_policy
from appliance.service.s3_acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    DEFAULT_OWNERSHIP,
    DELETED_OWNERSHIP,
    Grant,
    PublicAccessBlock,
    acl_from_json,
    grants_allow,
)

__all__ = [
    "ACL_CONFIG",
    "ACL_HEADERS",
    "OWNERSHIP_CONFIG",
    "PAB_CONFIG",
    "POLICY_CONFIG",
    "BucketAccess",
    "Origin",
    "authorize_post",
    "denied_deletes",
    "authorize_request",
    "load_access",
    "principal_of",
    "requested_acl_is_public",
]

log = logging.getLogger("appliance.s3.authz")

POLICY_CONFIG = "policy"
ACL_CONFIG = "acl"
OWNERSHIP_CONFIG = "ownership"
PAB_CONFIG = "public-access-block"
ACCESS_CONFIGS = (POLICY_CONFIG, ACL_CONFIG, OWNERSHIP_CONFIG, PAB_CONFIG)

GRANT_HEADERS = (
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
)
ACL_HEADERS = ("x-amz-acl", *GRANT_HEADERS)
# Request headers offered to policy conditions as s3:<header name>.
_CONDITION_HEADERS = frozenset(
    {*ACL_HEADERS, "x-amz-copy-source", "x-amz-metadata-directive", "x-amz-server-side-encryption"}
)
_LIST_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
# Actions that write an object and accept an ACL in headers.
_ACL_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})


NO_BLOCK = PublicAccessBlock()


@dataclass(frozen=True, slots=True)
class BucketAccess:
    """A bucket's access settings, read in one go."""

    bucket: BucketMeta | None
    policy: Policy | None = None
    grants: tuple[Grant, ...] = ()
    ownership: str = DEFAULT_OWNERSHIP
    block: PublicAccessBlock = NO_BLOCK

    ownership_deleted: bool = False

    @property
    def acls_enabled(self) -> bool:
        return self.ownership != "BucketOwnerEnforced"


async def load_access(services: S3Services, bucket: str) -> BucketAccess:
    meta, configs = await services.buckets.access_configs(bucket, ACCESS_CONFIGS)
    if meta is None:
        return BucketAccess(None)
    text = configs.get(POLICY_CONFIG)
    return BucketAccess(
        bucket=meta,
        policy=parse_policy(text, kind="bucket") if text else None,
        grants=acl_from_json(configs.get(ACL_CONFIG), meta.owner),
        ownership=_ownership(configs.get(OWNERSHIP_CONFIG)),
        ownership_deleted=configs.get(OWNERSHIP_CONFIG) == DELETED_OWNERSHIP,
        block=PublicAccessBlock.from_json(configs.get(PAB_CONFIG)),
    )


def _ownership(stored: str | None) -> str:
    if stored == DELETED_OWNERSHIP:
        return "ObjectWriter"
    return stored or DEFAULT_OWNERSHIP


def principal_of(services: S3Services, auth: AuthContext | None) -> Principal:
    """The principal for a verified signature (None: an unsigned, anonymous request)."""
    if auth is None:
        return ANONYMOUS
    if services.policies is not None:
        found = services.policies.principal_for(auth.access_key)
        if found is not None:
            services.policies.record_use(auth.access_key, services.clock())
            return found[0]
    if services.identity.lookup_secret(auth.access_key) is None:
        raise InvalidAccessKeyId()  # the key went away between signature check and now
    owner = services.identity.owner_of(auth.access_key)
    return Principal(user="root", access_key=auth.access_key, account=owner, is_root=True)


def requested_acl_is_public(request: S3Request) -> bool:
    canned = request.headers.get("x-amz-acl", "")
    if canned in ("public-read", "public-read-write", "authenticated-read"):
        return True
    return any(g in request.headers.get(h, "") for h in GRANT_HEADERS for g in (ALL_USERS, AUTHENTICATED_USERS))


def _context(request: S3Request, auth: AuthContext | None, action: str) -> dict[str, str]:
    context: dict[str, str] = {}
    if action in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        for arg, key in _LIST_KEYS:
            value = request.arg(arg)
            if value is not None:
                context[key] = value
    for name in _CONDITION_HEADERS.intersection(request.headers):
        context[f"s3:{name}"] = request.headers[name]
    version = request.arg("versionId")
    if version is not None:
        context["s3:versionid"] = version
    if auth is not None:
        context["s3:authtype"] = "REST-QUERY-STRING" if auth.presigned else "REST-HEADER"
        context["s3:signatureversion"] = "AWS4-HMAC-SHA256" if auth.scope else "AWS"
    return context


async def _object_grants(services: S3Services, bucket: str, key: str, version: str | None) -> tuple[Grant, ...]:
    try:
        meta = await services.objects.head_object(bucket, key, version)
    except RequestError:
        return ()
    return acl_from_json(meta.acl, meta.owner)


async def _decide(
    services: S3Services,
    facts: RequestFacts,
    *,
    spec: ActionSpec,
    access: BucketAccess,
    key: str | None,
    version: str | None,
) -> Decision:
    principal = facts.principal
    owner = access.bucket.owner if access.bucket is not None else ""
    same_account = not owner or principal.account == owner
    policies = services.policies.policies_for(principal) if services.policies and not principal.anonymous else ()
    policy = access.policy
    if policy is not None and access.block.restrict_public_buckets and not same_account and policy.is_public:
        policy = policy.without_public_grants()  # only the owner's account may use a public policy's grants
    decision = evaluate(facts, policies, policy, acl_allows=False, same_account=same_account)
    if decision.allowed or decision.explicit_deny or not access.acls_enabled or not spec.permission:
        return decision
    grants = access.grants
    if spec.acl_target == "object" and access.bucket is not None and key is not None:
        grants = await _object_grants(services, access.bucket.name, key, version)
    # The owner's rights come from its identity policies: its own full-control grant is no way around them.
    usable = [g for g in grants if not (same_account and g.kind == "CanonicalUser")]
    ignore_public = access.block.ignore_public_acls
    if not grants_allow(usable, principal, spec.permission, ignore_public=ignore_public):
        return decision
    return evaluate(facts, policies, policy, acl_allows=True, same_account=same_account)


def _facts(
    services: S3Services, origin: Origin, principal: Principal, action: str, resource: str, *, context: dict[str, str]
) -> RequestFacts:
    return RequestFacts(
        action=action,
        resource=resource,
        principal=principal,
        source_ip=origin.client_ip,
        secure_transport=origin.secure,
        current_time=services.clock(),
        context=context,
    )


def _deny(decision: Decision, principal: Principal, action: str, resource: str) -> None:
    if not decision.allowed:
        log.info("denied %s %s for %r: %s", action, resource[:300], principal.user or "anonymous", decision.reason)
        raise AccessDenied()


def _copy_source(request: S3Request) -> tuple[str, str, str | None] | None:
    raw = request.headers.get("x-amz-copy-source", "")
    path, _, query = raw.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        return None  # the handler answers the malformed header
    version = query.removeprefix("versionId=") if query.startswith("versionId=") else None
    return bucket, key, version


async def authorize_request(
    services: S3Services,
    request: S3Request,
    action: str,
    principal: Principal,
    auth: AuthContext | None,
    *,
    origin: Origin,
) -> BucketAccess | None:
    """AccessDenied unless the caller may do `action` here; AccessControlListNotSupported for ACL headers on a bucket
    with ACLs disabled. Returns the bucket's access settings it read (None for service-level requests)."""
    spec = ACTIONS[action]
    access: BucketAccess | None = None
    acl_write = action in _ACL_WRITES and any(name in request.headers for name in ACL_HEADERS)
    # Root needs nothing from the bucket unless it sends an ACL: its requests skip the extra store read.
    if request.bucket is not None and (not principal.is_root or acl_write):
        access = await load_access(services, request.bucket)
    if principal.is_root:
        decision = Decision(True, False, "root")
    else:
        resource = resource_arn(action, request)
        name = iam_action(action, request)
        facts = _facts(services, origin, principal, name, resource, context=_context(request, auth, action))
        decision = await _decide(
            services,
            facts,
            spec=spec,
            access=access or BucketAccess(None),
            key=request.key,
            version=request.arg("versionId"),
        )
        _deny(decision, principal, name, resource)
    if access is not None and access.bucket is not None and acl_write:
        _check_acl_headers(request, access)
    if action in ("CopyObject", "UploadPartCopy") and not principal.is_root:
        source = _copy_source(request)
        if source is not None:
            bucket, key, version = source
            source_access = await load_access(services, bucket)
            name = "s3:GetObjectVersion" if version else "s3:GetObject"
            facts = _facts(services, origin, principal, name, object_arn(bucket, key), context={})
            decision = await _decide(
                services, facts, spec=ACTIONS["GetObject"], access=source_access, key=key, version=version
            )
            _deny(decision, principal, name, object_arn(bucket, key))
    return access


def _check_acl_headers(request: S3Request, access: BucketAccess) -> None:
    present = [h for h in ACL_HEADERS if h in request.headers]
    if not present:
        return
    # S3 accepts only bucket-owner-full-control here; "private" is accepted too because common clients (rclone,
    # s3cmd) send it by default, and for the bucket's own writes it means the same: the owner has full control.
    owner_only = present == ["x-amz-acl"] and request.headers["x-amz-acl"] in ("bucket-owner-full-control", "private")
    if not access.acls_enabled and not owner_only:
        raise AccessControlListNotSupported()
    if access.block.block_public_acls and requested_acl_is_public(request):
        raise AccessDenied()


async def authorize_post(services: S3Services, origin: Origin, access_key: str, bucket: str, key: str) -> Principal:
    """A browser POST upload, whose signature is in its form: the signer needs s3:PutObject on the key. Returns the
    signer."""
    auth_principal = principal_of_key(services, access_key)
    if auth_principal.is_root:
        return auth_principal
    facts = _facts(services, origin, auth_principal, "s3:PutObject", object_arn(bucket, key), context={})
    access = await load_access(services, bucket)
    decision = await _decide(services, facts, spec=ACTIONS["PostObject"], access=access, key=key, version=None)
    _deny(decision, auth_principal, "s3:PutObject", object_arn(bucket, key))
    return auth_principal


def principal_of_key(services: S3Services, access_key: str) -> Principal:
    if services.policies is not None:
        found = services.policies.principal_for(access_key)
        if found is not None:
            return found[0]
    owner = services.identity.owner_of(access_key)
    return Principal(user="root", access_key=access_key, account=owner, is_root=True)


async def denied_deletes(ctx: RequestContext, entries: list[tuple[str, str | None]]) -> set[int]:
    """DeleteObjects: the indexes of the (key, version) entries the caller may not delete (s3:DeleteObject or
    s3:DeleteObjectVersion on each key, as S3 checks them one by one)."""
    principal = ctx.principal
    bucket = ctx.request.bucket
    if principal.is_root or bucket is None:
        return set()
    access = await load_access(ctx.services, bucket)
    denied = set()
    for index, (key, version) in enumerate(entries):
        name = "s3:DeleteObjectVersion" if version else "s3:DeleteObject"
        facts = _facts(ctx.services, ctx.origin, principal, name, object_arn(bucket, key), context={})
        decision = await _decide(
            ctx.services, facts, spec=ACTIONS["DeleteObject"], access=access, key=key, version=version
        )
        if not decision.allowed:
            denied.add(index)
    return denied
