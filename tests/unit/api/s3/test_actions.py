"""The IAM action table covers every routed action (pure)."""

from __future__ import annotations

import pytest

from appliance.api.s3.actions import ACTIONS, iam_action, resource_arn
from appliance.api.s3.handlers import HANDLERS
from appliance.api.s3.request import parse_request
from appliance.api.s3.routing import _TABLE


def _request(method: str, path: bytes, query: bytes = b""):
    return parse_request(
        method=method,
        raw_path=path,
        query_string=query,
        raw_headers=[(b"host", b"127.0.0.1")],
        domains=(),
        max_header_bytes=8192,
    )


def test_every_routed_action_has_a_mapping() -> None:
    routed = set(_TABLE.values()) | {"ListObjectsV2", "CopyObject", "UploadPartCopy"}
    assert routed <= set(ACTIONS)
    assert set(HANDLERS) <= set(ACTIONS)
    assert set(ACTIONS) - set(HANDLERS) == {"PostObject"}  # dispatched before the routing table


def test_names_are_iam_names() -> None:
    for spec in ACTIONS.values():
        assert spec.iam.startswith("s3:") and spec.iam[3:4].isupper()
        assert not spec.versioned or spec.versioned.startswith("s3:")


@pytest.mark.parametrize(
    ("action", "method", "path", "query", "iam", "resource"),
    [
        ("ListBuckets", "GET", b"/", b"", "s3:ListAllMyBuckets", "*"),
        ("HeadBucket", "HEAD", b"/b", b"", "s3:ListBucket", "arn:aws:s3:::b"),
        ("ListObjectsV2", "GET", b"/b", b"list-type=2", "s3:ListBucket", "arn:aws:s3:::b"),
        ("GetObject", "GET", b"/b/k/x", b"", "s3:GetObject", "arn:aws:s3:::b/k/x"),
        ("GetObject", "GET", b"/b/k", b"versionId=1", "s3:GetObjectVersion", "arn:aws:s3:::b/k"),
        ("DeleteObject", "DELETE", b"/b/k", b"versionId=1", "s3:DeleteObjectVersion", "arn:aws:s3:::b/k"),
        ("ListObjectVersions", "GET", b"/b", b"versions", "s3:ListBucketVersions", "arn:aws:s3:::b"),
        ("ListMultipartUploads", "GET", b"/b", b"uploads", "s3:ListBucketMultipartUploads", "arn:aws:s3:::b"),
        ("ListParts", "GET", b"/b/k", b"uploadId=u", "s3:ListMultipartUploadParts", "arn:aws:s3:::b/k"),
        ("AbortMultipartUpload", "DELETE", b"/b/k", b"uploadId=u", "s3:AbortMultipartUpload", "arn:aws:s3:::b/k"),
        ("PutBucketPolicy", "PUT", b"/b", b"policy", "s3:PutBucketPolicy", "arn:aws:s3:::b"),
        ("GetObjectTagging", "GET", b"/b/k", b"tagging&versionId=v", "s3:GetObjectVersionTagging", "arn:aws:s3:::b/k"),
    ],
)
def test_examples(action: str, method: str, path: bytes, query: bytes, iam: str, resource: str) -> None:
    request = _request(method, path, query)
    assert iam_action(action, request) == iam
    assert resource_arn(action, request) == resource
