"""Bucket versioning through boto3 on the live gateway: every version is an immutable CID."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code
from tests.support.s3server import ThreadedGateway


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _enable(s3: Any, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def test_versioning_status(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    _enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    _enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_versions_get_and_delete(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"before versioning")
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before versioning"
    head = s3.head_object(Bucket=bucket, Key="k", VersionId=v1)
    assert head["VersionId"] == v1
    listed = s3.list_object_versions(Bucket=bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(v2, True), (v1, False), ("null", False)]
    # A plain DELETE leaves a delete marker; the data stays.
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert _code(exc) == "NoSuchKey"
    assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="k", VersionId=marker)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    markers = s3.list_object_versions(Bucket=bucket)["DeleteMarkers"]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker, True)]
    # Deleting the marker restores the newest version.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    # Deleting a version for good releases its CID.
    cid = s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["Metadata"]["cid"]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    assert gateway.store.cid_refcount(cid) == 0
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", VersionId=v1)
    assert _code(exc) == "NoSuchVersion"


def test_suspended_null_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="s", Body=b"kept")["VersionId"]
    _enable(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="s", Body=b"null 1").get("VersionId") == "null"
    s3.put_object(Bucket=bucket, Key="s", Body=b"null 2")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["VersionId"] for v in versions] == ["null", v1]
    assert s3.get_object(Bucket=bucket, Key="s", VersionId="null")["Body"].read() == b"null 2"


def test_delete_objects_with_versions_and_copy_of_a_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="d", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="d", Body=b"second")
    s3.copy_object(Bucket=bucket, Key="restored", CopySource={"Bucket": bucket, "Key": "d", "VersionId": v1})
    assert s3.get_object(Bucket=bucket, Key="restored")["Body"].read() == b"first"
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d", "VersionId": v1}, {"Key": "restored"}]})
    deleted = {(d["Key"], d.get("VersionId")): d for d in result["Deleted"]}
    assert ("d", v1) in deleted
    assert deleted[("restored", None)]["DeleteMarker"] is True
    remaining = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket, Prefix="d")["Versions"]]
    assert v1 not in remaining and len(remaining) == 1


def test_list_versions_paginates(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    for key in ("a", "b", "c"):
        for n in range(3):
            s3.put_object(Bucket=bucket, Key=key, Body=f"{key}{n}".encode())
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}):
        seen += [(v["Key"], v["IsLatest"]) for v in page.get("Versions", [])]
    assert [k for k, _ in seen] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert [latest for _, latest in seen] == [True, False, False] * 3


@pytest.mark.parametrize(
    "body",
    [
        b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
        b"<VersioningConfiguration/>",
        b"<x/>",
        b"",
    ],
)
def test_bad_versioning_configuration(raw_s3: Raw, s3: Any, bucket: str, body: bytes) -> None:
    response = raw_s3("PUT", f"/{bucket}", query=[("versioning", "")], body=body)
    assert response.status_code == 400
    assert s3_code(response) == "MalformedXML"
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_tags_of_each_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="t", Body=b"one", Tagging="v=1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="t", Body=b"two", Tagging="v=2")
    s3.put_object_tagging(Bucket=bucket, Key="t", VersionId=v1, Tagging={"TagSet": [{"Key": "v", "Value": "one"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=v1)["TagSet"] == [{"Key": "v", "Value": "one"}]
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "v", "Value": "2"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t", VersionId=v1)
    assert s3.get_object_tagging(Bucket=bucket, Key="t", VersionId=v1)["TagSet"] == []
    assert s3.get_object(Bucket=bucket, Key="t", VersionId=v1)["Body"].read() == b"one"
    marker = s3.delete_object(Bucket=bucket, Key="t")["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.put_object_tagging(Bucket=bucket, Key="t", VersionId=marker, Tagging={"TagSet": []})
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
