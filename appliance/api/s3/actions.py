"""The IAM action table: every S3 action the gateway routes -> its IAM action name, resource and ACL permission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from appliance.api.s3.request import S3Request

__all__ = ["ACTIONS", "ActionSpec", "bucket_arn", "iam_action", "object_arn", "resource_arn"]

Level = Literal["service", "bucket", "object"]
AclTarget = Literal["bucket", "object", ""]
Permission = Literal["READ", "WRITE", "READ_ACP", "WRITE_ACP", ""]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """`iam`: the action a policy names; `versioned`: the action when the request names a versionId; `acl_target`
    and `permission`: which ACL can grant it (a bucket's ACL grants writes of objects into it, as in S3)."""

    iam: str
    level: Level
    acl_target: AclTarget = ""
    permission: Permission = ""
    versioned: str = ""


_S: Level = "service"
_B: Level = "bucket"
_O: Level = "object"

# Read top to bottom; tests/unit/api/s3/test_actions.py checks every routed action has a row.
ACTIONS: dict[str, ActionSpec] = {
    "ListBuckets": ActionSpec("s3:ListAllMyBuckets", _S),
    "CreateBucket": ActionSpec("s3:CreateBucket", _B),
    "DeleteBucket": ActionSpec("s3:DeleteBucket", _B),
    "HeadBucket": ActionSpec("s3:ListBucket", _B, "bucket", "READ"),
    "GetBucketLocation": ActionSpec("s3:GetBucketLocation", _B),
    "ListObjects": ActionSpec("s3:ListBucket", _B, "bucket", "READ"),
    "ListObjectsV2": ActionSpec("s3:ListBucket", _B, "bucket", "READ"),
    "ListObjectVersions": ActionSpec("s3:ListBucketVersions", _B, "bucket", "READ"),
    "ListMultipartUploads": ActionSpec("s3:ListBucketMultipartUploads", _B, "bucket", "READ"),
    # DeleteObjects is authorized again per key as s3:DeleteObject (handlers/delete_objects.py).
    "DeleteObjects": ActionSpec("s3:DeleteObject", _B, "bucket", "WRITE"),
    "PutObject": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
    "CopyObject": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
    "GetObject": ActionSpec("s3:GetObject", _O, "object", "READ", "s3:GetObjectVersion"),
    "HeadObject": ActionSpec("s3:GetObject", _O, "object", "READ", "s3:GetObjectVersion"),
    "GetObjectAttributes": ActionSpec("s3:GetObjectAttributes", _O, "object", "READ", "s3:GetObjectVersionAttributes"),
    "DeleteObject": ActionSpec("s3:DeleteObject", _O, "bucket", "WRITE", "s3:DeleteObjectVersion"),
    "CreateMultipartUpload": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
    "UploadPart": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
    "UploadPartCopy": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
    "CompleteMultipartUpload": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
    "AbortMultipartUpload": ActionSpec("s3:AbortMultipartUpload", _O, "bucket", "WRITE"),
    "ListParts": ActionSpec("s3:ListMultipartUploadParts", _O, "bucket", "READ"),
    "PutBucketVersioning": ActionSpec("s3:PutBucketVersioning", _B),
    "GetBucketVersioning": ActionSpec("s3:GetBucketVersioning", _B),
    "PutObjectTagging": ActionSpec("s3:PutObjectTagging", _O, versioned="s3:PutObjectVersionTagging"),
    "GetObjectTagging": ActionSpec("s3:GetObjectTagging", _O, versioned="s3:GetObjectVersionTagging"),
    "DeleteObjectTagging": ActionSpec("s3:DeleteObjectTagging", _O, versioned="s3:DeleteObjectVersionTagging"),
    "PutBucketTagging": ActionSpec("s3:PutBucketTagging", _B),
    "GetBucketTagging": ActionSpec("s3:GetBucketTagging", _B),
    "DeleteBucketTagging": ActionSpec("s3:PutBucketTagging", _B),  # S3 has no separate IAM action for it
    "PutBucketCors": ActionSpec("s3:PutBucketCORS", _B),
    "GetBucketCors": ActionSpec("s3:GetBucketCORS", _B),
    "DeleteBucketCors": ActionSpec("s3:PutBucketCORS", _B),
    "PutBucketPolicy": ActionSpec("s3:PutBucketPolicy", _B),
    "GetBucketPolicy": ActionSpec("s3:GetBucketPolicy", _B),
    "DeleteBucketPolicy": ActionSpec("s3:DeleteBucketPolicy", _B),
    "GetBucketPolicyStatus": ActionSpec("s3:GetBucketPolicyStatus", _B),
    "PutPublicAccessBlock": ActionSpec("s3:PutBucketPublicAccessBlock", _B),
    "GetPublicAccessBlock": ActionSpec("s3:GetBucketPublicAccessBlock", _B),
    "DeletePublicAccessBlock": ActionSpec("s3:PutBucketPublicAccessBlock", _B),
    "GetBucketAcl": ActionSpec("s3:GetBucketAcl", _B, "bucket", "READ_ACP"),
    "PutBucketAcl": ActionSpec("s3:PutBucketAcl", _B, "bucket", "WRITE_ACP"),
    "GetObjectAcl": ActionSpec("s3:GetObjectAcl", _O, "object", "READ_ACP", "s3:GetObjectVersionAcl"),
    "PutObjectAcl": ActionSpec("s3:PutObjectAcl", _O, "object", "WRITE_ACP", "s3:PutObjectVersionAcl"),
    "PutBucketOwnershipControls": ActionSpec("s3:PutBucketOwnershipControls", _B),
    "GetBucketOwnershipControls": ActionSpec("s3:GetBucketOwnershipControls", _B),
    "DeleteBucketOwnershipControls": ActionSpec("s3:PutBucketOwnershipControls", _B),
    "PostObject": ActionSpec("s3:PutObject", _O, "bucket", "WRITE"),
}


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def iam_action(action: str, request: S3Request) -> str:
    """The IAM action for a routed S3 action (the version-specific one when a versionId is named)."""
    spec = ACTIONS[action]
    if spec.versioned and request.has_arg("versionId"):
        return spec.versioned
    return spec.iam


def resource_arn(action: str, request: S3Request) -> str:
    level = ACTIONS[action].level
    if level == "service" or request.bucket is None:
        return "*"
    if level == "bucket" or request.key is None:
        return bucket_arn(request.bucket)
    return object_arn(request.bucket, request.key)
