"""S3 access control lists as data: grants, canned ACLs, ownership settings and what a grant allows (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from appliance.errors import BackendError, InvalidArgument
from appliance.model import Principal

__all__ = [
    "ALL_USERS",
    "AUTHENTICATED_USERS",
    "CANNED",
    "DEFAULT_OWNERSHIP",
    "DELETED_OWNERSHIP",
    "GROUPS",
    "MAX_GRANTS",
    "LOG_DELIVERY",
    "OWNERSHIP_SETTINGS",
    "PERMISSIONS",
    "Grant",
    "PublicAccessBlock",
    "acl_from_json",
    "acl_to_json",
    "canned_grants",
    "grants_allow",
    "is_public_acl",
    "permission_for",
]

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
PERMISSIONS = ("FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
CANNED = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
)
# Since April 2023 S3 creates buckets with ACLs disabled (BucketOwnerEnforced); a bucket with no stored setting
# (also every bucket made before this version) behaves the same: nobody had ACLs before, so nothing changes.
OWNERSHIP_SETTINGS = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")
DEFAULT_OWNERSHIP = "BucketOwnerEnforced"
DELETED_OWNERSHIP = "-"  # stored after DeleteBucketOwnershipControls: behaves as ObjectWriter, Get finds nothing
MAX_GRANTS = 100  # S3's limit per ACL

GranteeKind = Literal["CanonicalUser", "Group"]


@dataclass(frozen=True, slots=True)
class Grant:
    kind: GranteeKind
    grantee: str  # a canonical id, or a group URI
    permission: str

    def matches(self, principal: Principal) -> bool:
        if self.kind == "Group":
            return self.grantee == ALL_USERS or (self.grantee == AUTHENTICATED_USERS and not principal.anonymous)
        return not principal.anonymous and self.grantee == principal.account

    @property
    def public(self) -> bool:
        return self.kind == "Group" and self.grantee in (ALL_USERS, AUTHENTICATED_USERS)


@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    def to_json(self) -> str:
        return json.dumps(
            [self.block_public_acls, self.ignore_public_acls, self.block_public_policy, self.restrict_public_buckets]
        )

    @classmethod
    def from_json(cls, text: str | None) -> PublicAccessBlock:
        if text is None:
            return cls()
        try:
            a, b, c, d = (bool(x) for x in json.loads(text))
        except (ValueError, TypeError) as exc:
            raise BackendError(f"corrupt public access block in the metadata store: {exc}") from exc
        return cls(a, b, c, d)


def canned_grants(name: str, owner: str, bucket_owner: str = "") -> tuple[Grant, ...]:
    """The grants of a canned ACL for a resource owned by `owner` (objects: in a bucket of `bucket_owner`)."""
    if name not in CANNED:
        raise InvalidArgument(f"Invalid canned ACL: {name[:64]!r}")
    grants = [Grant("CanonicalUser", owner, "FULL_CONTROL")]
    if name == "public-read":
        grants.append(Grant("Group", ALL_USERS, "READ"))
    elif name == "public-read-write":
        grants += [Grant("Group", ALL_USERS, "READ"), Grant("Group", ALL_USERS, "WRITE")]
    elif name == "authenticated-read":
        grants.append(Grant("Group", AUTHENTICATED_USERS, "READ"))
    elif name == "log-delivery-write":
        grants += [Grant("Group", LOG_DELIVERY, "WRITE"), Grant("Group", LOG_DELIVERY, "READ_ACP")]
    elif name in ("bucket-owner-read", "bucket-owner-full-control") and bucket_owner and bucket_owner != owner:
        grants.append(Grant("CanonicalUser", bucket_owner, "READ" if name == "bucket-owner-read" else "FULL_CONTROL"))
    return tuple(grants)


def grants_allow(grants: Sequence[Grant], principal: Principal, permission: str, *, ignore_public: bool) -> bool:
    """Whether a grant in `grants` gives `principal` `permission` (FULL_CONTROL gives every one)."""
    for grant in grants:
        if ignore_public and grant.public:
            continue
        if grant.permission in (permission, "FULL_CONTROL") and grant.matches(principal):
            return True
    return False


def is_public_acl(grants: Sequence[Grant]) -> bool:
    return any(grant.public for grant in grants)


def acl_to_json(grants: Sequence[Grant]) -> str:
    return json.dumps([[g.kind, g.grantee, g.permission] for g in grants], separators=(",", ":"))


def acl_from_json(text: str | None, owner: str) -> tuple[Grant, ...]:
    """Stored grants; no stored ACL is the private one (the owner has full control)."""
    if not text:
        return (Grant("CanonicalUser", owner, "FULL_CONTROL"),)
    try:
        return tuple(Grant(kind, grantee, permission) for kind, grantee, permission in json.loads(text))
    except (ValueError, TypeError) as exc:
        raise BackendError(f"corrupt ACL in the metadata store: {exc}") from exc


# The ACL permission that can grant an IAM action (simulator; the S3 app reads it from its action table).
_ACL_PERMISSION = {
    "s3:ListBucket": "READ",
    "s3:ListBucketVersions": "READ",
    "s3:ListBucketMultipartUploads": "READ",
    "s3:GetObject": "READ",
    "s3:GetObjectVersion": "READ",
    "s3:GetObjectAttributes": "READ",
    "s3:PutObject": "WRITE",
    "s3:DeleteObject": "WRITE",
    "s3:DeleteObjectVersion": "WRITE",
    "s3:AbortMultipartUpload": "WRITE",
    "s3:ListMultipartUploadParts": "READ",
    "s3:GetBucketAcl": "READ_ACP",
    "s3:GetObjectAcl": "READ_ACP",
    "s3:PutBucketAcl": "WRITE_ACP",
    "s3:PutObjectAcl": "WRITE_ACP",
}


def permission_for(iam_action: str) -> str:
    """The ACL permission that grants `iam_action`, or "" when no ACL can."""
    return _ACL_PERMISSION.get(iam_action, "")
