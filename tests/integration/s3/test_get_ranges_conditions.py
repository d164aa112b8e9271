"""GetObject/HeadObject Range and conditional requests against the live gateway."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code

DATA = os.urandom(3 * 1024 * 1024 + 123)  # spans several 1 MiB IPFS chunks


@pytest.fixture
def obj(s3: Any, bucket: str) -> tuple[str, str]:
    etag = s3.put_object(Bucket=bucket, Key="r", Body=DATA)["ETag"]
    return bucket, etag


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-199", 100, 199),
        ("bytes=1048570-1048580", 1048570, 1048580),  # across a chunk boundary
        ("bytes=2000000-", 2000000, len(DATA) - 1),
        ("bytes=-500", len(DATA) - 500, len(DATA) - 1),
        ("bytes=-99999999", 0, len(DATA) - 1),
        ("bytes=10-99999999", 10, len(DATA) - 1),
    ],
)
def test_ranges(s3: Any, obj: tuple[str, str], header: str, first: int, last: int) -> None:
    got = s3.get_object(Bucket=obj[0], Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {first}-{last}/{len(DATA)}"
    assert got["ContentLength"] == last - first + 1
    assert got["Body"].read() == DATA[first : last + 1]


def test_head_with_range(s3: Any, obj: tuple[str, str]) -> None:
    head = s3.head_object(Bucket=obj[0], Key="r", Range="bytes=0-9")
    assert head["ContentLength"] == 10
    assert head["ContentRange"] == f"bytes 0-9/{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=5-2", "bytes=0-1,5-6", "lines=1-2", "bytes=x-"])
def test_ignored_ranges_return_whole_object(s3: Any, obj: tuple[str, str], header: str) -> None:
    got = s3.get_object(Bucket=obj[0], Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == DATA


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", "bytes=-0", f"bytes={len(DATA) + 5}-{len(DATA) + 9}"])
def test_unsatisfiable_range(raw_s3: Raw, obj: tuple[str, str], header: str) -> None:
    response = raw_s3("GET", f"/{obj[0]}/r", headers={"Range": header})
    assert response.status_code == 416
    assert s3_code(response) == "InvalidRange"
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_range_on_empty_object(raw_s3: Raw, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert raw_s3("GET", f"/{bucket}/empty", headers={"Range": "bytes=0-"}).status_code == 416
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""


def test_if_match_and_if_none_match(s3: Any, obj: tuple[str, str]) -> None:
    bucket, etag = obj
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag)["ContentLength"] == len(DATA)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')
    assert exc.value.response["Error"]["Code"] == "PreconditionFailed"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    assert s3.get_object(Bucket=bucket, Key="r", IfNoneMatch='"0000"')["ContentLength"] == len(DATA)


def test_modified_since(s3: Any, obj: tuple[str, str]) -> None:
    bucket, _ = obj
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(minutes=5)
    assert s3.get_object(Bucket=bucket, Key="r", IfModifiedSince=past)["ContentLength"] == len(DATA)
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="r", IfModifiedSince=datetime.now(UTC))
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket=bucket, Key="r", IfUnmodifiedSince=future)["ContentLength"] == len(DATA)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfUnmodifiedSince=past)
    assert exc.value.response["Error"]["Code"] == "PreconditionFailed"


def test_s3_precedence(s3: Any, obj: tuple[str, str]) -> None:
    bucket, etag = obj
    past = datetime.now(UTC) - timedelta(days=1)
    # If-Match true + If-Unmodified-Since false → 200.
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag, IfUnmodifiedSince=past)["ContentLength"] == len(DATA)
    # If-None-Match false + If-Modified-Since true → 304.
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag, IfModifiedSince=past)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304


def test_conditions_on_head(s3: Any, obj: tuple[str, str]) -> None:
    bucket, _ = obj
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="r", IfMatch='"nope"')
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
