"""ListObjects v1 and ListObjectsV2 through boto3 and raw requests against the live gateway."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code

KEYS = ["a/1", "a/2", "a/b/3", "b/4", "c", "d/", "d/5", "e+f g", "z"]
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture
def filled(s3: Any, bucket: str) -> str:
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_v2_all(s3: Any, filled: str) -> None:
    page = s3.list_objects_v2(Bucket=filled)
    assert [o["Key"] for o in page["Contents"]] == sorted(KEYS)
    assert page["KeyCount"] == len(KEYS)
    assert not page["IsTruncated"]
    assert "Owner" not in page["Contents"][0]
    assert page["Contents"][0]["StorageClass"] == "STANDARD"
    assert page["Contents"][0]["Size"] == len(b"a/1")


def test_v2_prefix_delimiter(s3: Any, filled: str) -> None:
    page = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["c", "e+f g", "z"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/", "b/", "d/"]
    page = s3.list_objects_v2(Bucket=filled, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["a/b/"]
    assert page["Prefix"] == "a/"
    assert page["Delimiter"] == "/"


def test_v2_pagination_with_continuation_tokens(s3: Any, filled: str) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs = {"Bucket": filled, "MaxKeys": 2}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
        assert page["KeyCount"] == 2
    assert seen == sorted(KEYS)
    assert pages == 5


def test_v2_paginator_with_delimiter(s3: Any, filled: str) -> None:
    keys: list[str] = []
    prefixes: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=filled, Delimiter="/", PaginationConfig={"PageSize": 1}
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == ["c", "e+f g", "z"]
    assert prefixes == ["a/", "b/", "d/"]


def test_v2_start_after_and_fetch_owner(s3: Any, filled: str, gateway: Any) -> None:
    page = s3.list_objects_v2(Bucket=filled, StartAfter="b/4", FetchOwner=True)
    assert [o["Key"] for o in page["Contents"]] == ["c", "d/", "d/5", "e+f g", "z"]
    assert page["StartAfter"] == "b/4"
    assert page["Contents"][0]["Owner"]["ID"] == gateway.access_key


def test_v1_marker_pagination(s3: Any, filled: str) -> None:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=filled, PaginationConfig={"PageSize": 3}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == sorted(KEYS)
    page = s3.list_objects(Bucket=filled, Marker="d/", MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["d/5", "e+f g"]
    assert page["IsTruncated"]
    assert page["NextMarker"] == "e+f g"
    assert page["Contents"][0]["Owner"]["ID"]


def test_max_keys_zero(s3: Any, filled: str) -> None:
    page = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert "Contents" not in page
    assert page["KeyCount"] == 0


def test_empty_bucket(s3: Any, bucket: str) -> None:
    page = s3.list_objects_v2(Bucket=bucket)
    assert "Contents" not in page
    assert not page["IsTruncated"]


def test_encoding_type_url_raw(raw_s3: Raw, filled: str) -> None:
    response = raw_s3("GET", f"/{filled}", query=[("list-type", "2"), ("encoding-type", "url"), ("prefix", "e")])
    root = ET.fromstring(response.content)
    assert root.findtext(f"{NS}EncodingType") == "url"
    assert [c.findtext(f"{NS}Key") for c in root.iter(f"{NS}Contents")] == ["e%2Bf+g"]
    plain = raw_s3("GET", f"/{filled}", query=[("list-type", "2"), ("prefix", "e")])
    assert b"<Key>e+f g</Key>" in plain.content


def test_control_characters_need_url_encoding(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ctl\x01key", Body=b"x")
    # botocore asks for encoding-type=url and decodes it: the key comes back exactly.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["ctl\x01key"]


@pytest.mark.parametrize(
    "query",
    [
        [("list-type", "2"), ("max-keys", "-1")],
        [("list-type", "2"), ("max-keys", "ten")],
        [("list-type", "2"), ("encoding-type", "base64")],
        [("list-type", "2"), ("continuation-token", "not-a-token")],
        [("list-type", "2"), ("continuation-token", "")],
        [("max-keys", "99999999999")],
    ],
)
def test_bad_list_parameters(raw_s3: Raw, filled: str, query: list[tuple[str, str]]) -> None:
    response = raw_s3("GET", f"/{filled}", query=query)
    assert response.status_code == 400
    assert s3_code(response) == "InvalidArgument"


def test_list_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as exc:
        s3.list_objects(Bucket="missing-bucket-x")
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"
