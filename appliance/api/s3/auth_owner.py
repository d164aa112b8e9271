"""x-amz-expected-bucket-owner: a request names the account it expects to own the bucket, and S3 refuses it if
another account does (a guard against writing into a bucket that changed hands)."""

from __future__ import annotations

import re

from appliance.api.s3.context import S3Services
from appliance.api.s3.request import S3Request
from appliance.errors import AccessDenied, InvalidBucketOwnerAWSAccountID, NoSuchBucket

__all__ = ["EXPECTED_OWNER_HEADER", "SOURCE_OWNER_HEADER", "check_expected_owner", "check_owner"]

EXPECTED_OWNER_HEADER = "x-amz-expected-bucket-owner"
SOURCE_OWNER_HEADER = "x-amz-source-expected-bucket-owner"  # CopyObject / UploadPartCopy: the source bucket's
# An AWS account id (12 digits), or the owner ids this appliance shows in ListBuckets (its access key ids:
# upper-case letters and digits). Anything else is malformed, as S3 finds a value that is not an account id.
_OWNER_ID = re.compile(r"[0-9]{12}|[A-Z0-9]{4,128}")


async def check_expected_owner(services: S3Services, request: S3Request) -> None:
    """AccessDenied when the request's bucket exists and its owner is not the expected one;
    InvalidBucketOwnerAWSAccountID (400) for a value that is no owner id. A missing bucket is left to the handler."""
    expected = request.headers.get(EXPECTED_OWNER_HEADER)
    if expected is None or request.bucket is None:
        return
    await check_owner(services, request.bucket, expected)


async def check_owner(services: S3Services, bucket_name: str, expected: str) -> None:
    """check_expected_owner for a named bucket and header value (also the copy source's bucket)."""
    if not _OWNER_ID.fullmatch(expected):
        raise InvalidBucketOwnerAWSAccountID(
            f"The value of the expected bucket owner parameter must be an AWS Account ID... [{expected[:64]}]"
        )
    try:
        bucket = await services.buckets.get_bucket(bucket_name)
    except NoSuchBucket:
        return
    if bucket.owner != expected:
        raise AccessDenied()
