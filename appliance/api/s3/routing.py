"""The routing table: (method, level, sub-resources present) -> S3 action name, with explicit NotImplemented rows."""

from __future__ import annotations

from appliance.api.s3.request import S3Request
from appliance.errors import MethodNotAllowed, NotImplementedAction

__all__ = ["SUBRESOURCES", "route"]

# Query parameters that select an action (anything else, e.g. response-content-type or list parameters, does not).
SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "delete",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "partNumber",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "renameObject",
        "restore",
        "retention",
        "select",
        "session",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)

_SERVICE = "service"
_BUCKET = "bucket"
_OBJECT = "object"

# (level, method, sub-resources) -> action. Sub-resources are matched exactly.
_TABLE: dict[tuple[str, str, frozenset[str]], str] = {
    (_SERVICE, "GET", frozenset()): "ListBuckets",
    (_BUCKET, "PUT", frozenset()): "CreateBucket",
    (_BUCKET, "HEAD", frozenset()): "HeadBucket",
    (_BUCKET, "DELETE", frozenset()): "DeleteBucket",
    (_BUCKET, "GET", frozenset({"location"})): "GetBucketLocation",
    (_BUCKET, "GET", frozenset()): "ListObjects",
    (_BUCKET, "POST", frozenset({"delete"})): "DeleteObjects",
    (_OBJECT, "PUT", frozenset()): "PutObject",
    (_OBJECT, "GET", frozenset()): "GetObject",
    (_OBJECT, "HEAD", frozenset()): "HeadObject",
    (_OBJECT, "DELETE", frozenset()): "DeleteObject",
    (_OBJECT, "POST", frozenset({"uploads"})): "CreateMultipartUpload",
    (_OBJECT, "PUT", frozenset({"partNumber", "uploadId"})): "UploadPart",
    (_OBJECT, "POST", frozenset({"uploadId"})): "CompleteMultipartUpload",
    (_OBJECT, "DELETE", frozenset({"uploadId"})): "AbortMultipartUpload",
    (_OBJECT, "GET", frozenset({"uploadId"})): "ListParts",
    (_BUCKET, "GET", frozenset({"uploads"})): "ListMultipartUploads",
    (_OBJECT, "GET", frozenset({"attributes"})): "GetObjectAttributes",
    (_OBJECT, "GET", frozenset({"versionId"})): "GetObject",
    (_OBJECT, "HEAD", frozenset({"versionId"})): "HeadObject",
    (_OBJECT, "GET", frozenset({"partNumber"})): "GetObject",
    (_OBJECT, "HEAD", frozenset({"partNumber"})): "HeadObject",
    (_OBJECT, "GET", frozenset({"partNumber", "versionId"})): "GetObject",
    (_OBJECT, "HEAD", frozenset({"partNumber", "versionId"})): "HeadObject",
    (_OBJECT, "DELETE", frozenset({"versionId"})): "DeleteObject",
    (_OBJECT, "GET", frozenset({"attributes", "versionId"})): "GetObjectAttributes",
    (_BUCKET, "PUT", frozenset({"versioning"})): "PutBucketVersioning",
    (_BUCKET, "GET", frozenset({"versioning"})): "GetBucketVersioning",
    (_BUCKET, "GET", frozenset({"versions"})): "ListObjectVersions",
    (_OBJECT, "GET", frozenset({"tagging", "versionId"})): "GetObjectTagging",
    (_OBJECT, "PUT", frozenset({"tagging", "versionId"})): "PutObjectTagging",
    (_OBJECT, "DELETE", frozenset({"tagging", "versionId"})): "DeleteObjectTagging",
    (_OBJECT, "PUT", frozenset({"tagging"})): "PutObjectTagging",
    (_OBJECT, "GET", frozenset({"tagging"})): "GetObjectTagging",
    (_OBJECT, "DELETE", frozenset({"tagging"})): "DeleteObjectTagging",
    (_BUCKET, "PUT", frozenset({"tagging"})): "PutBucketTagging",
    (_BUCKET, "GET", frozenset({"tagging"})): "GetBucketTagging",
    (_BUCKET, "DELETE", frozenset({"tagging"})): "DeleteBucketTagging",
    (_BUCKET, "PUT", frozenset({"cors"})): "PutBucketCors",
    (_BUCKET, "GET", frozenset({"cors"})): "GetBucketCors",
    (_BUCKET, "DELETE", frozenset({"cors"})): "DeleteBucketCors",
    (_BUCKET, "PUT", frozenset({"policy"})): "PutBucketPolicy",
    (_BUCKET, "GET", frozenset({"policy"})): "GetBucketPolicy",
    (_BUCKET, "DELETE", frozenset({"policy"})): "DeleteBucketPolicy",
    (_BUCKET, "GET", frozenset({"policyStatus"})): "GetBucketPolicyStatus",
    (_BUCKET, "PUT", frozenset({"publicAccessBlock"})): "PutPublicAccessBlock",
    (_BUCKET, "GET", frozenset({"publicAccessBlock"})): "GetPublicAccessBlock",
    (_BUCKET, "DELETE", frozenset({"publicAccessBlock"})): "DeletePublicAccessBlock",
    (_BUCKET, "GET", frozenset({"acl"})): "GetBucketAcl",
    (_BUCKET, "PUT", frozenset({"acl"})): "PutBucketAcl",
    (_OBJECT, "GET", frozenset({"acl"})): "GetObjectAcl",
    (_OBJECT, "PUT", frozenset({"acl"})): "PutObjectAcl",
    (_OBJECT, "GET", frozenset({"acl", "versionId"})): "GetObjectAcl",
    (_OBJECT, "PUT", frozenset({"acl", "versionId"})): "PutObjectAcl",
    (_BUCKET, "PUT", frozenset({"ownershipControls"})): "PutBucketOwnershipControls",
    (_BUCKET, "GET", frozenset({"ownershipControls"})): "GetBucketOwnershipControls",
    (_BUCKET, "DELETE", frozenset({"ownershipControls"})): "DeleteBucketOwnershipControls",
}

_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})


def route(request: S3Request) -> str:
    """The action for `request`. MethodNotAllowed for a method S3 does not have at that level; NotImplemented for a
    real S3 action this gateway does not offer yet."""
    if request.method not in _METHODS and request.method != "OPTIONS":
        raise MethodNotAllowed("The specified method is not allowed against this resource.")
    if request.bucket is None:
        level = _SERVICE
    elif request.key is None:
        level = _BUCKET
    else:
        level = _OBJECT
    subs = frozenset(name for name, _ in request.query if name in SUBRESOURCES)
    action = _TABLE.get((level, request.method, subs))
    if action is None:
        if level == _SERVICE and request.method != "GET":
            raise MethodNotAllowed("The specified method is not allowed against this resource.")
        raise NotImplementedAction(
            "A header or query parameter you provided implies functionality that is not implemented."
        )
    if action == "ListObjects" and request.arg("list-type") == "2":
        return "ListObjectsV2"
    if action == "PutObject" and "x-amz-copy-source" in request.headers:
        return "CopyObject"
    if action == "UploadPart" and "x-amz-copy-source" in request.headers:
        return "UploadPartCopy"
    return action
