"""CopyObject and UploadPartCopy: metadata operations on the same CID (no data moves)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.s3server import ThreadedGateway

MiB = 1024 * 1024


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _cid(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"])


def test_copy_within_and_across_buckets(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    s3.create_bucket(Bucket=f"{bucket}-dst")
    data = os.urandom(3000)
    put = s3.put_object(Bucket=bucket, Key="src", Body=data, ContentType="text/x-src", Metadata={"m": "1"})
    copied = s3.copy_object(Bucket=f"{bucket}-dst", Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    got = s3.get_object(Bucket=f"{bucket}-dst", Key="dst")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/x-src"
    assert got["Metadata"]["m"] == "1"
    assert _cid(got) == _cid(put)
    assert gateway.store.cid_refcount(_cid(put)) == 2  # same content, two references
    s3.copy_object(Bucket=bucket, Key="dir/copy with spaces+", CopySource=f"{bucket}/src")
    assert s3.get_object(Bucket=bucket, Key="dir/copy with spaces+")["Body"].read() == data
    s3.delete_object(Bucket=bucket, Key="src")
    assert s3.get_object(Bucket=f"{bucket}-dst", Key="dst")["Body"].read() == data  # the copy keeps the CID alive


def test_replace_metadata_and_copy_onto_itself(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"same", ContentType="text/plain", Metadata={"v": "1"})
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="self", CopySource=f"{bucket}/self")
    assert _code(exc) == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource=f"{bucket}/self",
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"v": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="self")
    assert head["ContentType"] == "application/json"
    assert head["Metadata"]["v"] == "2"
    assert s3.get_object(Bucket=bucket, Key="self")["Body"].read() == b"same"


def test_copy_source_conditions(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")["ETag"]
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=f"{bucket}/c", CopySourceIfMatch=etag)
    past = datetime.now(UTC) - timedelta(days=1)
    for kwargs in (
        {"CopySourceIfMatch": '"nope"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfUnmodifiedSince": past},
        {"CopySourceIfModifiedSince": datetime.now(UTC)},
    ):
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=bucket, Key="no", CopySource=f"{bucket}/c", **kwargs)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="no")


def test_copy_from_missing_source(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert _code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="x", CopySource="no-such-bucket-q/missing")
    assert _code(exc) == "NoSuchBucket"


def test_upload_part_copy_whole_and_ranges(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    big = os.urandom(6 * MiB)
    small = os.urandom(1000)
    src_big = s3.put_object(Bucket=bucket, Key="big", Body=big)
    s3.put_object(Bucket=bucket, Key="small", Body=small)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(
        Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=1, CopySource=f"{bucket}/big"
    )
    assert p1["CopyPartResult"]["ETag"] == src_big["ETag"]
    assert gateway.store.list_parts(upload_id)[0].cid == _cid(src_big)  # the whole object: same CID, no data moved
    p2 = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload_id,
        PartNumber=2,
        CopySource=f"{bucket}/big",
        CopySourceRange="bytes=100-5242979",
    )
    p3 = s3.upload_part_copy(
        Bucket=bucket, Key="assembled", UploadId=upload_id, PartNumber=3, CopySource=f"{bucket}/small"
    )
    parts = [{"PartNumber": n, "ETag": p["CopyPartResult"]["ETag"]} for n, p in ((1, p1), (2, p2), (3, p3))]
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=upload_id, MultipartUpload={"Parts": parts})
    expected = big + big[100:5242980] + small
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == expected
    # Copying the multipart object copies its CID too.
    s3.copy_object(Bucket=bucket, Key="assembled-copy", CopySource=f"{bucket}/assembled")
    assert s3.get_object(Bucket=bucket, Key="assembled-copy")["Body"].read() == expected


def test_upload_part_copy_bad_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="s", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="t")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="t",
            UploadId=upload_id,
            PartNumber=1,
            CopySource=f"{bucket}/s",
            CopySourceRange="bytes=20-30",
        )
    assert _code(exc) == "InvalidRange"
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="t",
            UploadId=upload_id,
            PartNumber=1,
            CopySource=f"{bucket}/s",
            CopySourceRange="garbage",
        )
    assert _code(exc) == "InvalidArgument"
