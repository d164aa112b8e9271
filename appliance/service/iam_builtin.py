"""The built-in policy documents users and groups can be given by name (stored and attached by the IAM service)."""

from __future__ import annotations

import json

__all__ = ["BUILTIN"]


def _doc(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


_READ_ACTIONS = ["s3:Get*", "s3:List*"]  # s3:ListBucket also covers HeadBucket
_WRITE_ACTIONS = [
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
]

BUILTIN: dict[str, str] = {
    # Everything, including the admin API (admin:*) and the IPFS actions (ipfs:*).
    "admin": _doc({"Sid": "Admin", "Effect": "Allow", "Action": ["*", "admin:*", "ipfs:*"], "Resource": "*"}),
    # Every S3 action on every bucket.
    "readwrite": _doc({"Sid": "ReadWrite", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
    # Reads and listings (Get*, List*, HeadBucket through s3:ListBucket).
    "readonly": _doc({"Sid": "ReadOnly", "Effect": "Allow", "Action": _READ_ACTIONS, "Resource": "*"}),
    # Uploads (single and multipart) without reading anything back.
    "writeonly": _doc({"Sid": "WriteOnly", "Effect": "Allow", "Action": _WRITE_ACTIONS, "Resource": "*"}),
    # The IPFS actions (pin, unpin, resolve, replication, reconcile, rebalance) plus reading objects.
    "ipfs-operator": _doc(
        {"Sid": "Ipfs", "Effect": "Allow", "Action": "ipfs:*", "Resource": "*"},
        {"Sid": "Read", "Effect": "Allow", "Action": _READ_ACTIONS, "Resource": "*"},
    ),
}
