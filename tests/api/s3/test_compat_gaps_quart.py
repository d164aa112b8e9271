"""The compatibility gaps closed after the first review, through Quart's test client: CreateMultipartUpload's
checksum algorithm, the copy source's expected owner, conditional CopyObject, the delete marker's version id on a
404, and x-amz-expected-bucket-owner on browser POST."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from quart import Quart

from tests.api.s3.test_app_quart import AK, _call
from tests.api.s3.test_compat_auth_quart import (
    OTHER_AK,
    build_app,
    code,
    post_form,
    v2_fields,
    v2_post_body,
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Quart]:
    yield from build_app(tmp_path)


def etag_of(response: object) -> str:
    return response.headers["ETag"]  # type: ignore[attr-defined,no-any-return]


# --------------------------------------------------------------------------- CreateMultipartUpload


@pytest.mark.parametrize("algorithm", ["MD5", "crc33", "sha512", "x" * 300, "\u00e9", " ", "CRC32,SHA1"])
async def test_create_upload_with_unknown_algorithm_is_invalid_request(app: Quart, algorithm: str) -> None:
    await _call(app, "PUT", "/mpu")
    response = await _call(
        app, "POST", "/mpu/k?uploads", headers={"x-amz-checksum-algorithm": algorithm.encode().decode("latin-1")}
    )
    if not algorithm.strip():
        assert response.status_code == 200  # an empty header is no algorithm
        return
    assert response.status_code == 400
    assert code(await response.get_data()) == "InvalidRequest"


async def test_create_upload_known_algorithm_any_case(app: Quart) -> None:
    await _call(app, "PUT", "/mpu")
    response = await _call(app, "POST", "/mpu/k?uploads", headers={"x-amz-checksum-algorithm": "crc32c"})
    assert response.status_code == 200
    assert response.headers["x-amz-checksum-algorithm"] == "CRC32C"


# --------------------------------------------------------------------------- x-amz-source-expected-bucket-owner


@pytest.mark.parametrize(
    ("owner", "status", "s3code"),
    [
        (AK, 200, ""),
        (OTHER_AK, 403, "AccessDenied"),
        ("111122223333", 403, "AccessDenied"),
        ("not an id", 400, "InvalidBucketOwnerAWSAccountID"),
        ("", 400, "InvalidBucketOwnerAWSAccountID"),
        ("1" * 5000, 400, "InvalidBucketOwnerAWSAccountID"),
    ],
)
async def test_copy_source_expected_owner(app: Quart, owner: str, status: int, s3code: str) -> None:
    await _call(app, "PUT", "/src")
    await _call(app, "PUT", "/src/a", body=b"data")
    headers = {"x-amz-copy-source": "/src/a", "x-amz-source-expected-bucket-owner": owner}
    copied = await _call(app, "PUT", "/src/b", headers=headers)
    assert copied.status_code == status
    if s3code:
        assert code(await copied.get_data()) == s3code
        assert (await _call(app, "HEAD", "/src/b")).status_code == 404  # nothing written
    upload = ET.fromstring(await (await _call(app, "POST", "/src/m?uploads")).get_data())
    upload_id = upload.findtext("{http://s3.amazonaws.com/doc/2006-03-01/}UploadId")
    part = await _call(app, "PUT", f"/src/m?partNumber=1&uploadId={upload_id}", headers=headers)
    assert part.status_code == status


async def test_copy_source_owner_of_a_missing_bucket_is_no_such_bucket(app: Quart) -> None:
    await _call(app, "PUT", "/dst")
    headers = {"x-amz-copy-source": "/nobucket/a", "x-amz-source-expected-bucket-owner": OTHER_AK}
    response = await _call(app, "PUT", "/dst/b", headers=headers)
    assert response.status_code == 404
    assert code(await response.get_data()) == "NoSuchBucket"


# --------------------------------------------------------------------------- conditional CopyObject


async def test_copy_if_none_match_star(app: Quart) -> None:
    await _call(app, "PUT", "/cond")
    await _call(app, "PUT", "/cond/src", body=b"one")
    await _call(app, "PUT", "/cond/dst", body=b"old")
    refused = await _call(app, "PUT", "/cond/dst", headers={"x-amz-copy-source": "/cond/src", "If-None-Match": "*"})
    assert refused.status_code == 412
    assert code(await refused.get_data()) == "PreconditionFailed"
    assert await (await _call(app, "GET", "/cond/dst")).get_data() == b"old"
    fresh = await _call(app, "PUT", "/cond/new", headers={"x-amz-copy-source": "/cond/src", "If-None-Match": "*"})
    assert fresh.status_code == 200
    assert await (await _call(app, "GET", "/cond/new")).get_data() == b"one"


async def test_copy_if_match(app: Quart) -> None:
    await _call(app, "PUT", "/cond")
    await _call(app, "PUT", "/cond/src", body=b"one")
    old = await _call(app, "PUT", "/cond/dst", body=b"old")
    wrong = await _call(app, "PUT", "/cond/dst", headers={"x-amz-copy-source": "/cond/src", "If-Match": '"beef"'})
    assert wrong.status_code == 412
    missing = await _call(app, "PUT", "/cond/none", headers={"x-amz-copy-source": "/cond/src", "If-Match": '"beef"'})
    assert missing.status_code == 404
    assert code(await missing.get_data()) == "NoSuchKey"
    right = await _call(app, "PUT", "/cond/dst", headers={"x-amz-copy-source": "/cond/src", "If-Match": etag_of(old)})
    assert right.status_code == 200
    assert await (await _call(app, "GET", "/cond/dst")).get_data() == b"one"


@pytest.mark.parametrize(
    "headers",
    [{"If-None-Match": '"abc"'}, {"If-None-Match": "*", "If-Match": '"abc"'}, {"If-None-Match": "**"}],
)
async def test_copy_unsupported_conditions_are_not_implemented(app: Quart, headers: dict[str, str]) -> None:
    await _call(app, "PUT", "/cond")
    await _call(app, "PUT", "/cond/src", body=b"one")
    response = await _call(app, "PUT", "/cond/dst", headers={"x-amz-copy-source": "/cond/src", **headers})
    assert response.status_code == 501
    assert code(await response.get_data()) == "NotImplemented"


# --------------------------------------------------------------------------- delete marker 404


async def test_get_and_head_of_a_delete_marker_name_its_version(app: Quart) -> None:
    await _call(app, "PUT", "/ver")
    body = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
    assert (await _call(app, "PUT", "/ver?versioning", body=body)).status_code == 200
    await _call(app, "PUT", "/ver/k", body=b"x")
    await _call(app, "PUT", "/ver/k/longer", body=b"y")  # a key the first one prefixes does not confuse it
    deleted = await _call(app, "DELETE", "/ver/k")
    marker = deleted.headers["x-amz-version-id"]
    for method in ("GET", "HEAD"):
        response = await _call(app, method, "/ver/k")
        assert response.status_code == 404
        assert response.headers["x-amz-delete-marker"] == "true"
        assert response.headers["x-amz-version-id"] == marker
    assert await (await _call(app, "HEAD", "/ver/k")).get_data() == b""


# --------------------------------------------------------------------------- POST and the expected owner


@pytest.mark.parametrize(
    ("owner", "status", "s3code"),
    [(AK, 204, ""), (OTHER_AK, 403, "AccessDenied"), ("bad id!", 400, "InvalidBucketOwnerAWSAccountID")],
)
async def test_post_expected_bucket_owner(app: Quart, owner: str, status: int, s3code: str) -> None:
    await _call(app, "PUT", "/forms")
    fields = v2_fields("forms", [{"bucket": "forms"}, ["starts-with", "$key", ""]], key="k")
    body, ctype = v2_post_body(fields, b"x")
    headers = {"Host": "127.0.0.1:9000", "Content-Type": ctype, "Content-Length": str(len(body))}
    headers["x-amz-expected-bucket-owner"] = owner
    response = await app.test_client().open("/forms", method="POST", headers=headers, data=body)
    assert response.status_code == status
    if s3code:
        assert code(await response.get_data()) == s3code
    assert (await _call(app, "HEAD", "/forms/k")).status_code == (200 if status == 204 else 404)


# --------------------------------------------------------------------------- x-amz-storage-class


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("STANDARD", 200),
        ("GLACIER", 200),
        ("INTELLIGENT_TIERING", 200),
        ("standard", 400),
        ("BOGUS", 400),
        ("", 400),
        ("\u00e9" * 3000, 400),
    ],
)
async def test_storage_class_on_writes(app: Quart, value: str, status: int) -> None:
    await _call(app, "PUT", "/classes")
    header = {"x-amz-storage-class": value.encode().decode("latin-1")}
    put = await _call(app, "PUT", "/classes/k", body=b"x", headers=header)
    copy = await _call(app, "PUT", "/classes/c", headers={**header, "x-amz-copy-source": "/classes/k"})
    create = await _call(app, "POST", "/classes/m?uploads", headers=header)
    for response in (put, copy, create):  # checked before anything else: the copy's source is not looked at
        assert response.status_code == status
        if status == 400:
            assert code(await response.get_data()) == "InvalidStorageClass"
    if status == 200:
        head = await _call(app, "HEAD", "/classes/k")
        assert "x-amz-storage-class" not in head.headers  # kept as STANDARD, which S3 does not name on HEAD


async def test_post_storage_class_field(app: Quart) -> None:
    await _call(app, "PUT", "/forms")
    fields = v2_fields(
        "forms",
        [{"bucket": "forms"}, ["starts-with", "$key", ""], ["starts-with", "$x-amz-storage-class", ""]],
        key="k",
    )
    fields["x-amz-storage-class"] = "NOPE"
    body, ctype = v2_post_body(fields, b"x")
    response = await post_form(app, "/forms", body, ctype)
    assert response.status_code == 400
    assert code(await response.get_data()) == "InvalidStorageClass"


# --------------------------------------------------------------------------- encryption and object lock on writes


@pytest.mark.parametrize(
    ("headers", "status", "s3code"),
    [
        ({"x-amz-server-side-encryption": "AES256"}, 200, ""),
        ({"x-amz-server-side-encryption": "aws:kms"}, 501, "NotImplemented"),
        ({"x-amz-server-side-encryption": "aws:kms:dsse"}, 501, "NotImplemented"),
        ({"x-amz-server-side-encryption": "aes256"}, 400, "InvalidArgument"),
        ({"x-amz-server-side-encryption": ""}, 400, "InvalidArgument"),
        ({"x-amz-server-side-encryption-customer-algorithm": "AES256"}, 501, "NotImplemented"),
        ({"x-amz-server-side-encryption-customer-key": "a2V5"}, 501, "NotImplemented"),
        ({"x-amz-object-lock-mode": "GOVERNANCE"}, 400, "InvalidRequest"),
        ({"x-amz-object-lock-legal-hold": "ON"}, 400, "InvalidRequest"),
        ({"x-amz-object-lock-retain-until-date": "garbage\u00ff"}, 400, "InvalidRequest"),
    ],
)
async def test_write_options(app: Quart, headers: dict[str, str], status: int, s3code: str) -> None:
    await _call(app, "PUT", "/options")
    await _call(app, "PUT", "/options/src", body=b"x")
    put = await _call(app, "PUT", "/options/k", body=b"x", headers=headers)
    copy = await _call(app, "PUT", "/options/c", headers={**headers, "x-amz-copy-source": "/options/src"})
    create = await _call(app, "POST", "/options/m?uploads", headers=headers)
    for response in (put, copy, create):
        assert response.status_code == status
        if s3code:
            assert code(await response.get_data()) == s3code
    stored = (await _call(app, "HEAD", "/options/k")).status_code
    assert stored == (200 if status == 200 else 404)  # nothing is kept without what was asked for


async def test_reads_with_customer_key_are_invalid_request(app: Quart) -> None:
    await _call(app, "PUT", "/options")
    await _call(app, "PUT", "/options/k", body=b"x")
    headers = {"x-amz-server-side-encryption-customer-algorithm": "AES256"}
    got = await _call(app, "GET", "/options/k", headers=headers)
    assert got.status_code == 400
    assert code(await got.get_data()) == "InvalidRequest"
    head = await _call(app, "HEAD", "/options/k", headers=headers)
    assert (head.status_code, await head.get_data()) == (400, b"")


async def test_post_with_kms_field_is_not_implemented(app: Quart) -> None:
    await _call(app, "PUT", "/forms")
    fields = v2_fields(
        "forms",
        [{"bucket": "forms"}, ["starts-with", "$key", ""], ["starts-with", "$x-amz-server-side-encryption", ""]],
        key="k",
    )
    fields["x-amz-server-side-encryption"] = "aws:kms"
    body, ctype = v2_post_body(fields, b"x")
    response = await post_form(app, "/forms", body, ctype)
    assert response.status_code == 501
    assert (await _call(app, "HEAD", "/forms/k")).status_code == 404


# --------------------------------------------------------------------------- conditional DeleteObject, HeadBucket


async def test_delete_object_if_match(app: Quart) -> None:
    await _call(app, "PUT", "/deletes")
    put = await _call(app, "PUT", "/deletes/k", body=b"x")
    for value in ('"0000"', "", "W/", ",,", "\u00ff" * 500):
        refused = await _call(app, "DELETE", "/deletes/k", headers={"If-Match": value.encode().decode("latin-1")})
        assert refused.status_code == 412
        assert code(await refused.get_data()) == "PreconditionFailed"
    assert (await _call(app, "HEAD", "/deletes/k")).status_code == 200
    missing = await _call(app, "DELETE", "/deletes/none", headers={"If-Match": '"0000"'})
    assert (missing.status_code, code(await missing.get_data())) == (404, "NoSuchKey")
    listed = f'"0000", {etag_of(put)}'
    assert (await _call(app, "DELETE", "/deletes/k", headers={"If-Match": listed})).status_code == 204
    assert (await _call(app, "HEAD", "/deletes/k")).status_code == 404


async def test_head_bucket_headers(app: Quart) -> None:
    await _call(app, "PUT", "/heads")
    response = await _call(app, "HEAD", "/heads")
    assert response.headers["x-amz-bucket-region"] == "us-east-1"
    assert response.headers["x-amz-access-point-alias"] == "false"


async def test_delete_objects_etag_conditions(app: Quart) -> None:
    await _call(app, "PUT", "/batch")
    put = await _call(app, "PUT", "/batch/a", body=b"a")
    await _call(app, "PUT", "/batch/b", body=b"b")
    await _call(app, "PUT", "/batch/c", body=b"c")
    body = (
        "<Delete>"
        f"<Object><Key>a</Key><ETag>{etag_of(put)}</ETag></Object>"
        '<Object><Key>b</Key><ETag>"0000"</ETag></Object>'
        "<Object><Key>c</Key></Object>"
        '<Object><Key>none</Key><ETag>"0000"</ETag></Object>'
        "<Object><Key>b</Key><ETag></ETag></Object>"
        "</Delete>"
    ).encode()
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    response = await _call(app, "POST", "/batch?delete", body=body, headers={"Content-MD5": md5})
    assert response.status_code == 200
    xml = ET.fromstring(await response.get_data())
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    deleted = sorted(d.findtext(f"{ns}Key") or "" for d in xml.iter(f"{ns}Deleted"))
    errors = sorted((e.findtext(f"{ns}Key"), e.findtext(f"{ns}Code")) for e in xml.iter(f"{ns}Error"))
    assert deleted == ["a", "c"]
    assert errors == [("b", "PreconditionFailed"), ("b", "PreconditionFailed"), ("none", "NoSuchKey")]
    assert (await _call(app, "HEAD", "/batch/b")).status_code == 200


@pytest.mark.parametrize(("value", "status"), [("true", 501), ("TRUE", 501), ("false", 200), ("\u00ff", 200)])
async def test_create_bucket_with_object_lock(app: Quart, value: str, status: int) -> None:
    header = {"x-amz-bucket-object-lock-enabled": value.encode().decode("latin-1")}
    response = await _call(app, "PUT", "/locked", headers=header)
    assert response.status_code == status
    assert (await _call(app, "HEAD", "/locked")).status_code == (200 if status == 200 else 404)


async def test_list_uploads_page_ending_on_a_prefix(app: Quart) -> None:
    await _call(app, "PUT", "/uploads")
    for key in ("a/1", "a/2", "b"):
        await _call(app, "POST", f"/uploads/{key}?uploads")
    first = await _call(app, "GET", "/uploads?uploads&delimiter=%2F&max-uploads=1")
    xml = ET.fromstring(await first.get_data())
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    assert xml.findtext(f"{ns}IsTruncated") == "true"
    assert xml.findtext(f"{ns}NextKeyMarker") == "a/"
    second = await _call(app, "GET", "/uploads?uploads&delimiter=%2F&max-uploads=1&key-marker=a%2F")
    xml = ET.fromstring(await second.get_data())
    assert [u.findtext(f"{ns}Key") for u in xml.iter(f"{ns}Upload")] == ["b"]
    assert xml.findtext(f"{ns}IsTruncated") == "false"
    for hostile in ("-1", "x", "1" * 30, "%00"):
        response = await _call(app, "GET", f"/uploads?uploads&max-uploads={hostile}")
        assert (response.status_code, code(await response.get_data())) == (400, "InvalidArgument")


@pytest.mark.parametrize(
    ("value", "status"),
    [("/other", 200), ("https://example.com/x", 200), ("ftp://x", 400), ("other", 400), ("/" + "a" * 3000, 400)],
)
async def test_website_redirect_location(app: Quart, value: str, status: int) -> None:
    await _call(app, "PUT", "/redirects")
    put = await _call(app, "PUT", "/redirects/k", body=b"x", headers={"x-amz-website-redirect-location": value})
    assert put.status_code == status
    if status == 200:
        head = await _call(app, "HEAD", "/redirects/k")
        assert head.headers["x-amz-website-redirect-location"] == value
    else:
        assert code(await put.get_data()) == "InvalidArgument"
