"""Object and bucket tagging with S3's limits, through boto3 on the live gateway."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_object_tagging_cycle(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="project=alpha&team=storage%20ops")
    got = s3.get_object(Bucket=bucket, Key="t")
    assert got["TagCount"] == 2
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert tags == [{"Key": "project", "Value": "alpha"}, {"Key": "team", "Value": "storage ops"}]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "k", "Value": "v"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"x"  # tags never touch the content


def test_tags_follow_copy_and_multipart(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=f"{bucket}/src")
    assert s3.get_object_tagging(Bucket=bucket, Key="copied")["TagSet"] == [{"Key": "a", "Value": "1"}]
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=f"{bucket}/src", TaggingDirective="REPLACE", Tagging="b=2")
    assert s3.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"] == [{"Key": "b", "Value": "2"}]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="c=3")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="mp")["TagSet"] == [{"Key": "c", "Value": "3"}]


@pytest.mark.parametrize(
    "tag_set",
    [
        [{"Key": f"k{i}", "Value": "v"} for i in range(11)],  # more than 10
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}],
        [{"Key": "aws:reserved", "Value": "v"}],
        [{"Key": "bad<char>", "Value": "v"}],
    ],
)
def test_invalid_object_tags_change_nothing(s3: Any, bucket: str, tag_set: list[dict[str, str]]) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="keep=me")
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": tag_set})
    assert _code(exc) == "InvalidTag"
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "keep", "Value": "me"}]


def test_invalid_tag_header_stores_nothing(raw_s3: Raw, s3: Any, bucket: str) -> None:
    response = raw_s3(
        "PUT", f"/{bucket}/h", headers={"x-amz-tagging": "&".join(f"k{i}=v" for i in range(11))}, body=b"x"
    )
    assert response.status_code == 400
    assert s3_code(response) == "InvalidTag"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<Tagging>",
        b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
        b"<Other/>",
        b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value><Extra/></Tag></TagSet></Tagging>",
    ],
)
def test_malformed_tagging_xml(raw_s3: Raw, s3: Any, bucket: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    response = raw_s3("PUT", f"/{bucket}/t", query=[("tagging", "")], body=body)
    assert response.status_code == 400
    assert s3_code(response) == "MalformedXML"


def test_tagging_missing_object(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="absent", Tagging={"TagSet": []})
    assert _code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.get_object_tagging(Bucket=bucket, Key="absent")
    assert _code(exc) == "NoSuchKey"


def test_bucket_tagging(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _code(exc) == "NoSuchTagSet"
    tag_set = [{"Key": f"k{i}", "Value": str(i)} for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [*tag_set, {"Key": "k50", "Value": "x"}]})
    assert _code(exc) == "InvalidTag"
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _code(exc) == "NoSuchTagSet"
