"""Bucket actions through boto3 against the live gateway."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_list_head_delete(s3: Any) -> None:
    s3.create_bucket(Bucket="lifecycle-bucket")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "lifecycle-bucket" in names
    head = s3.head_bucket(Bucket="lifecycle-bucket")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket="lifecycle-bucket")["LocationConstraint"] is None
    s3.delete_bucket(Bucket="lifecycle-bucket")
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket="lifecycle-bucket")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "lifecycle-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_location_constraint_is_kept(s3: Any) -> None:
    s3.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-west-1"
    s3.delete_bucket(Bucket="eu-bucket")


def test_create_twice_in_us_east_1_is_ok(s3: Any, bucket: str) -> None:
    # S3's legacy behaviour in us-east-1; other regions: BucketAlreadyOwnedByYou (test_compat_auth_post.py).
    assert s3.create_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("name", ["ab", "Upper-case", "a..b", "192.168.1.1", "-leading", "x" * 64, "xn--idn"])
def test_invalid_bucket_names(raw_s3: Raw, name: str) -> None:
    response = raw_s3("PUT", f"/{name}")
    assert response.status_code == 400
    assert s3_code(response) == "InvalidBucketName"


def test_delete_non_empty_and_missing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert _code(exc) == "BucketNotEmpty"
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=bucket)
    assert _code(exc) == "NoSuchBucket"


def test_operations_on_missing_bucket(s3: Any) -> None:
    for call in (
        lambda: s3.put_object(Bucket="no-such-bucket", Key="k", Body=b"x"),
        lambda: s3.get_object(Bucket="no-such-bucket", Key="k"),
        lambda: s3.list_objects_v2(Bucket="no-such-bucket"),
        lambda: s3.get_bucket_location(Bucket="no-such-bucket"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "NoSuchBucket"


@pytest.mark.parametrize(
    "body",
    [
        b"<CreateBucketConfiguration><LocationConstraint>",  # truncated
        b"<Wrong/>",  # wrong root
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><CreateBucketConfiguration/>',  # DTD refused
        b"<CreateBucketConfiguration><LocationConstraint><x/></LocationConstraint></CreateBucketConfiguration>",
    ],
)
def test_malformed_create_bucket_configuration(raw_s3: Raw, s3: Any, body: bytes) -> None:
    response = raw_s3("PUT", "/malformed-config-bucket", body=body)
    assert response.status_code == 400
    assert s3_code(response) == "MalformedXML"
    assert "malformed-config-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_invalid_location_constraint(raw_s3: Raw, s3: Any) -> None:
    body = b"<CreateBucketConfiguration><LocationConstraint>no such/region</LocationConstraint>"
    body += b"</CreateBucketConfiguration>"
    response = raw_s3("PUT", "/bad-location-bucket", body=body)
    assert response.status_code == 400
    assert s3_code(response) == "InvalidLocationConstraint"
    assert "bad-location-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_virtual_hosted_style(raw_s3: Raw, s3: Any, bucket: str, gateway: Any) -> None:
    host = f"{bucket}.localhost:{gateway.port}"
    put = raw_s3("PUT", "/vhost%20key", body=b"virtual", host=host)
    assert put.status_code == 200, put.text
    assert s3.get_object(Bucket=bucket, Key="vhost key")["Body"].read() == b"virtual"
    got = raw_s3("GET", "/vhost%20key", host=host)
    assert got.content == b"virtual"
    listing = raw_s3("GET", "/", host=host, query=[("list-type", "2")])
    assert b"<Key>vhost key</Key>" in listing.content


def test_list_buckets_pagination_and_prefix(s3: Any, raw_s3: Raw) -> None:
    names = [f"page-bucket-{i:02d}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    seen: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"MaxBuckets": 2, "Prefix": "page-bucket-"}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_buckets(**kwargs)
        seen += [b["Name"] for b in page["Buckets"]]
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == names
    bad = raw_s3("GET", "/", query=[("max-buckets", "0")])
    assert bad.status_code == 400
    assert s3_code(bad) == "InvalidArgument"
    for name in names:
        s3.delete_bucket(Bucket=name)
