"""The routing table (pure)."""

from __future__ import annotations

import pytest

from appliance.api.s3.request import parse_request
from appliance.api.s3.routing import route
from appliance.errors import MethodNotAllowed, NotImplementedAction


def _route(method: str, path: bytes, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> str:
    request = parse_request(
        method=method,
        raw_path=path,
        query_string=query,
        raw_headers=[(b"host", b"127.0.0.1"), *(headers or [])],
        domains=("localhost",),
        max_header_bytes=8192,
    )
    return route(request)


@pytest.mark.parametrize(
    ("method", "path", "query", "action"),
    [
        ("GET", b"/", b"", "ListBuckets"),
        ("PUT", b"/b", b"", "CreateBucket"),
        ("HEAD", b"/b", b"", "HeadBucket"),
        ("DELETE", b"/b/", b"", "DeleteBucket"),
        ("GET", b"/b", b"location", "GetBucketLocation"),
        ("GET", b"/b", b"", "ListObjects"),
        ("GET", b"/b", b"prefix=x&marker=y", "ListObjects"),
        ("GET", b"/b", b"list-type=2&prefix=x", "ListObjectsV2"),
        ("POST", b"/b", b"delete", "DeleteObjects"),
        ("PUT", b"/b/k", b"", "PutObject"),
        ("GET", b"/b/k", b"response-content-type=x", "GetObject"),
        ("HEAD", b"/b/k", b"", "HeadObject"),
        ("DELETE", b"/b/k", b"", "DeleteObject"),
        ("POST", b"/b/k", b"uploads", "CreateMultipartUpload"),
        ("PUT", b"/b/k", b"partNumber=1&uploadId=x", "UploadPart"),
        ("POST", b"/b/k", b"uploadId=x", "CompleteMultipartUpload"),
        ("DELETE", b"/b/k", b"uploadId=x", "AbortMultipartUpload"),
        ("GET", b"/b/k", b"uploadId=x", "ListParts"),
        ("GET", b"/b", b"uploads", "ListMultipartUploads"),
        ("GET", b"/b", b"policy", "GetBucketPolicy"),
        ("GET", b"/b", b"policyStatus", "GetBucketPolicyStatus"),
        ("DELETE", b"/b", b"publicAccessBlock", "DeletePublicAccessBlock"),
        ("PUT", b"/b/k", b"acl", "PutObjectAcl"),
        ("GET", b"/b/k", b"acl&versionId=v", "GetObjectAcl"),
        ("PUT", b"/b", b"acl", "PutBucketAcl"),
        ("PUT", b"/b", b"ownershipControls", "PutBucketOwnershipControls"),
    ],
)
def test_routes(method: str, path: bytes, query: bytes, action: str) -> None:
    assert _route(method, path, query) == action


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", b"/b", b"lifecycle"),
        ("PUT", b"/b/k", b"retention"),
        ("GET", b"/b", b"location&acl"),
        ("GET", b"/b/k", b"policy"),
        ("POST", b"/b/k", b""),
    ],
)
def test_not_implemented(method: str, path: bytes, query: bytes) -> None:
    with pytest.raises(NotImplementedAction):
        _route(method, path, query)


def test_copy_actions() -> None:
    assert _route("PUT", b"/b/k", headers=[(b"x-amz-copy-source", b"/a/b")]) == "CopyObject"
    copy_part = [(b"x-amz-copy-source", b"/a/b")]
    assert _route("PUT", b"/b/k", b"partNumber=1&uploadId=u", headers=copy_part) == "UploadPartCopy"


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", b"/"), ("DELETE", b"/"), ("TRACE", b"/b/k"), ("FOO", b"/b"), ("PATCH", b"/b/k")]
)
def test_method_not_allowed(method: str, path: bytes) -> None:
    with pytest.raises(MethodNotAllowed):
        _route(method, path)


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", b"/b", b"session"),  # CreateSession (S3 Express): never a listing
        ("PUT", b"/b/k", b"renameObject"),  # RenameObject: never an empty PutObject
        ("GET", b"/b", b"lifecycle"),
        ("PUT", b"/b", b"object-lock"),
        ("GET", b"/b/k", b"retention"),
        ("PUT", b"/b/k", b"legal-hold"),
        ("GET", b"/b", b"replication"),
        ("GET", b"/b", b"website"),
        ("GET", b"/b", b"logging"),
        ("GET", b"/b", b"notification"),
        ("GET", b"/b", b"inventory"),
        ("GET", b"/b", b"analytics"),
        ("GET", b"/b", b"metrics"),
        ("GET", b"/b", b"intelligent-tiering"),
        ("GET", b"/b", b"accelerate"),
        ("GET", b"/b", b"requestPayment"),
        ("GET", b"/b", b"encryption"),
        ("POST", b"/b/k", b"select&select-type=2"),
        ("POST", b"/b/k", b"restore"),
        ("GET", b"/b/k", b"torrent"),
    ],
)
def test_every_unoffered_action_is_not_implemented(method: str, path: bytes, query: bytes) -> None:
    with pytest.raises(NotImplementedAction):
        _route(method, path, query)
