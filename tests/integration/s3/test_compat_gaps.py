"""Compatibility gaps closed after the first review, through boto3 against the live gateway on a real IPFS node:
CreateMultipartUpload's checksum algorithm, ExpectedSourceBucketOwner, conditional CopyObject, the delete marker's
version id on a 404, x-amz-expected-bucket-owner on browser POST, and x-amz-storage-class."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code
from tests.support.s3server import ThreadedGateway


def error_of(call: Any, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPHeaders"],
    )


def test_create_upload_with_unknown_algorithm_is_invalid_request(raw_s3: Raw, s3: Any, bucket: str) -> None:
    response = raw_s3("POST", f"/{bucket}/k", query=[("uploads", "")], headers={"x-amz-checksum-algorithm": "MD5"})
    assert (response.status_code, s3_code(response)) == (400, "InvalidRequest")
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
    assert created["ChecksumAlgorithm"] == "SHA256"
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=created["UploadId"])


def test_expected_source_bucket_owner(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=source, ExpectedSourceBucketOwner=gateway.access_key)
    assert s3.get_object(Bucket=bucket, Key="ok")["Body"].read() == b"data"
    status, code, _ = error_of(
        s3.copy_object, Bucket=bucket, Key="no", CopySource=source, ExpectedSourceBucketOwner="111122223333"
    )
    assert (status, code) == (403, "AccessDenied")
    status, code, _ = error_of(
        s3.copy_object, Bucket=bucket, Key="no", CopySource=source, ExpectedSourceBucketOwner="owner!"
    )
    assert (status, code) == (400, "InvalidBucketOwnerAWSAccountID")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    status, code, _ = error_of(
        s3.upload_part_copy,
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        PartNumber=1,
        CopySource=source,
        ExpectedSourceBucketOwner="111122223333",
    )
    assert (status, code) == (403, "AccessDenied")
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        PartNumber=1,
        CopySource=source,
        ExpectedSourceBucketOwner=gateway.access_key,
    )
    assert part["CopyPartResult"]["ETag"]


def test_copy_object_conditional_writes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    old = s3.put_object(Bucket=bucket, Key="dst", Body=b"old")
    source = {"Bucket": bucket, "Key": "src"}
    status, code, _ = error_of(s3.copy_object, Bucket=bucket, Key="dst", CopySource=source, IfNoneMatch="*")
    assert (status, code) == (412, "PreconditionFailed")
    status, code, _ = error_of(s3.copy_object, Bucket=bucket, Key="dst", CopySource=source, IfMatch='"0000"')
    assert (status, code) == (412, "PreconditionFailed")
    status, code, _ = error_of(s3.copy_object, Bucket=bucket, Key="none", CopySource=source, IfMatch='"0000"')
    assert (status, code) == (404, "NoSuchKey")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=source, IfMatch=old["ETag"])
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"new"
    s3.copy_object(Bucket=bucket, Key="fresh", CopySource=source, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"new"


def test_delete_marker_404_names_the_marker(s3: Any, raw_s3: Raw, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    for call in (s3.head_object, s3.get_object):
        status, _, headers = error_of(call, Bucket=bucket, Key="k")
        assert status == 404
        assert headers["x-amz-delete-marker"] == "true"
        assert headers["x-amz-version-id"] == marker
    response = raw_s3("HEAD", f"/{bucket}/k")
    assert (response.status_code, response.content) == (404, b"")
    assert response.headers["x-amz-version-id"] == marker


@pytest.mark.parametrize(("owner", "status"), [(None, 204), ("111122223333", 403), ("bad owner", 400)])
def test_post_expected_bucket_owner(
    gateway: ThreadedGateway, s3: Any, bucket: str, owner: str | None, status: int
) -> None:
    v4 = gateway.client(signature_version="s3v4")
    presigned = v4.generate_presigned_post(bucket, "posted", Conditions=[], ExpiresIn=600)
    headers = {"x-amz-expected-bucket-owner": owner or gateway.access_key}
    response = httpx.post(
        presigned["url"],
        data=presigned["fields"],
        files={"file": ("f.txt", b"posted", "text/plain")},
        headers=headers,
        timeout=60,
    )
    assert response.status_code == status
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [obj["Key"] for obj in listed] == (["posted"] if status == 204 else [])


def test_storage_class(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="cold")  # kept as STANDARD
    status, code, _ = error_of(s3.put_object, Bucket=bucket, Key="bad", Body=b"x", StorageClass="NEARLINE")
    assert (status, code) == (400, "InvalidStorageClass")
    status, code, _ = error_of(s3.create_multipart_upload, Bucket=bucket, Key="bad", StorageClass="NEARLINE")
    assert (status, code) == (400, "InvalidStorageClass")


def test_encryption_and_object_lock_options(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="sse-s3", Body=b"x", ServerSideEncryption="AES256")
    assert s3.get_object(Bucket=bucket, Key="sse-s3")["Body"].read() == b"x"
    status, code, _ = error_of(s3.put_object, Bucket=bucket, Key="kms", Body=b"x", ServerSideEncryption="aws:kms")
    assert (status, code) == (501, "NotImplemented")
    status, code, _ = error_of(
        s3.put_object, Bucket=bucket, Key="ssec", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey="k" * 32
    )
    assert (status, code) == (501, "NotImplemented")
    status, code, _ = error_of(
        s3.get_object, Bucket=bucket, Key="sse-s3", SSECustomerAlgorithm="AES256", SSECustomerKey="k" * 32
    )
    assert (status, code) == (400, "InvalidRequest")
    status, code, _ = error_of(
        s3.put_object,
        Bucket=bucket,
        Key="locked",
        Body=b"x",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate="2099-01-01T00:00:00Z",
    )
    assert (status, code) == (400, "InvalidRequest")
    listed = [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == ["sse-s3"]


def test_conditional_delete_and_head_bucket(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    status, code, _ = error_of(s3.delete_object, Bucket=bucket, Key="k", IfMatch='"0000"')
    assert (status, code) == (412, "PreconditionFailed")
    status, code, _ = error_of(s3.delete_object, Bucket=bucket, Key="gone", IfMatch=put["ETag"])
    assert (status, code) == (404, "NoSuchKey")
    s3.delete_object(Bucket=bucket, Key="k", IfMatch=put["ETag"])
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    head = s3.head_bucket(Bucket=bucket)
    assert head["BucketRegion"] == "us-east-1"
    assert head["AccessPointAlias"] is False


def test_delete_objects_with_etags(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "a", "ETag": first["ETag"]}, {"Key": "b", "ETag": '"0000"'}]},
    )
    assert [d["Key"] for d in result["Deleted"]] == ["a"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("b", "PreconditionFailed")]
    assert [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["b"]


def test_create_bucket_with_object_lock_is_not_implemented(s3: Any) -> None:
    status, code, _ = error_of(s3.create_bucket, Bucket="compat-locked-bucket", ObjectLockEnabledForBucket=True)
    assert (status, code) == (501, "NotImplemented")
    assert "compat-locked-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_tail_read_of_an_empty_object(s3: Any, raw_s3: Raw, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty", Range="bytes=-8")
    assert (got["ResponseMetadata"]["HTTPStatusCode"], got["Body"].read()) == (200, b"")
    response = raw_s3("GET", f"/{bucket}/empty", headers={"Range": "bytes=-0"})
    assert (response.status_code, response.headers["Content-Range"]) == (416, "bytes */0")
    status, code, _ = error_of(s3.get_object, Bucket=bucket, Key="empty", Range="bytes=0-0")
    assert (status, code) == (416, "InvalidRange")


def test_list_multipart_uploads_pages_through_common_prefixes(s3: Any, bucket: str) -> None:
    for key in ("a/1", "a/2", "b", "c/1", "c/2", "d"):
        s3.create_multipart_upload(Bucket=bucket, Key=key)
    paginator = s3.get_paginator("list_multipart_uploads")
    keys: list[str] = []
    prefixes: list[str] = []
    for page in paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}):
        keys += [upload["Key"] for upload in page.get("Uploads", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert (keys, prefixes) == (["b", "d"], ["a/", "c/"])
    empty = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=0)
    assert (empty["IsTruncated"], empty.get("Uploads", [])) == (False, [])


@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2", "list_object_versions"])
def test_listings_page_through_common_prefixes(s3: Any, bucket: str, operation: str) -> None:
    for key in ("a/1", "a/2", "b", "c/1", "c/2", "d"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    keys: list[str] = []
    prefixes: list[str] = []
    for page in s3.get_paginator(operation).paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}):
        entries = page.get("Versions", []) if operation == "list_object_versions" else page.get("Contents", [])
        keys += [entry["Key"] for entry in entries]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert (keys, prefixes) == (["b", "d"], ["a/", "c/"])


def test_website_redirect_location_is_kept(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", WebsiteRedirectLocation="/elsewhere")
    assert s3.head_object(Bucket=bucket, Key="k")["WebsiteRedirectLocation"] == "/elsewhere"
    status, code, _ = error_of(s3.put_object, Bucket=bucket, Key="k", Body=b"x", WebsiteRedirectLocation="nowhere")
    assert (status, code) == (400, "InvalidArgument")
