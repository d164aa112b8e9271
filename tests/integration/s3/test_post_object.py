"""Browser POST uploads (presigned POST forms from boto3) against the live gateway on a real IPFS node."""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree import ElementTree as ET

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import s3_code
from tests.support.s3server import ThreadedGateway


@pytest.fixture(scope="module")
def v4(gateway: ThreadedGateway) -> Any:
    return gateway.client(signature_version="s3v4")


def post(presigned: dict[str, Any], data: bytes, filename: str = "upload.bin", **extra: str) -> httpx.Response:
    fields = {**presigned["fields"], **extra}
    files = {"file": (filename, data, "application/octet-stream")}
    return httpx.post(presigned["url"], data=fields, files=files, timeout=60, verify=False)


def absent(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        return error.response["Error"]["Code"] in ("404", "NoSuchKey")
    return False


def test_presigned_post_stores_the_object(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(
        bucket,
        "docs/report.txt",
        Fields={"Content-Type": "text/plain", "x-amz-meta-owner": "eric"},
        Conditions=[{"Content-Type": "text/plain"}, {"x-amz-meta-owner": "eric"}],
    )
    data = b"hello from a browser\r\n--not-a-boundary\r\n" * 100
    response = post(presigned, data)
    assert response.status_code == 204, response.text
    assert response.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert response.headers["x-amz-meta-cid"]
    assert response.headers["Location"].endswith(f"/{bucket}/docs/report.txt")
    got = s3.get_object(Bucket=bucket, Key="docs/report.txt")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"]["owner"] == "eric"


def test_large_file(v4: Any, s3: Any, bucket: str) -> None:
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB, streamed
    presigned = v4.generate_presigned_post(bucket, "big.bin", Conditions=[["content-length-range", 1, 20 * 2**20]])
    response = post(presigned, data)
    assert response.status_code == 204, response.text
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()).digest() == (
        hashlib.sha256(data).digest()
    )


def test_content_length_range(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(bucket, "sized", Conditions=[["content-length-range", 10, 100]])
    too_big = post(presigned, b"x" * 101)
    assert too_big.status_code == 400
    assert s3_code(too_big) == "EntityTooLarge"
    too_small = post(presigned, b"x" * 9)
    assert too_small.status_code == 400
    assert s3_code(too_small) == "EntityTooSmall"
    assert absent(s3, bucket, "sized")
    assert post(presigned, b"x" * 100).status_code == 204
    assert s3.head_object(Bucket=bucket, Key="sized")["ContentLength"] == 100


def test_wrong_signature(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(bucket, "k")
    signature = presigned["fields"]["x-amz-signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    response = post(presigned, b"data", **{"x-amz-signature": flipped})
    assert response.status_code == 403
    assert s3_code(response) == "SignatureDoesNotMatch"
    assert absent(s3, bucket, "k")


def test_unknown_access_key(bucket: str, gateway: ThreadedGateway) -> None:
    other = boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id="NOSUCHKEY",
        aws_secret_access_key="x" * 40,
        region_name="us-east-1",
        config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    response = post(other.generate_presigned_post(bucket, "k"), b"data")
    assert response.status_code == 403
    assert s3_code(response) == "InvalidAccessKeyId"


def test_expired_policy(v4: Any, s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    presigned = v4.generate_presigned_post(bucket, "late", ExpiresIn=60)
    gateway.clock_offset[0] = 3600.0
    response = post(presigned, b"data")
    assert response.status_code == 403
    assert s3_code(response) == "AccessDenied"
    assert "Policy expired" in response.text
    gateway.clock_offset[0] = 0.0
    assert absent(s3, bucket, "late")


def test_key_starts_with_violated(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(bucket, "uploads/${filename}")
    response = post(presigned, b"data", key="elsewhere/x")
    assert response.status_code == 403
    assert s3_code(response) == "AccessDenied"
    assert absent(s3, bucket, "elsewhere/x")


def test_extra_field_not_in_policy(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(bucket, "k")
    response = post(presigned, b"data", **{"x-amz-meta-sneaky": "1"})
    assert response.status_code == 403
    assert "Extra input fields" in response.text
    assert post(presigned, b"data", **{"x-ignore-me": "1"}).status_code == 204


def test_wrong_bucket(v4: Any, s3: Any, bucket: str) -> None:
    other = bucket + "-other"
    s3.create_bucket(Bucket=other)
    presigned = v4.generate_presigned_post(bucket, "k")
    presigned["url"] = presigned["url"].replace(f"/{bucket}", f"/{other}")
    response = post(presigned, b"data")
    assert response.status_code == 403
    assert absent(s3, other, "k")


def test_filename_variable(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(bucket, "uploads/${filename}")
    response = post(presigned, b"picture", filename="cat.png")
    assert response.status_code == 204, response.text
    assert s3.get_object(Bucket=bucket, Key="uploads/cat.png")["Body"].read() == b"picture"


def test_success_action_status_201(v4: Any, s3: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(
        bucket, "created", Fields={"success_action_status": "201"}, Conditions=[{"success_action_status": "201"}]
    )
    response = post(presigned, b"xml please")
    assert response.status_code == 201, response.text
    doc = ET.fromstring(response.content)
    assert doc.tag == "PostResponse"
    assert doc.findtext("Bucket") == bucket
    assert doc.findtext("Key") == "created"
    assert doc.findtext("ETag") == f'"{hashlib.md5(b"xml please").hexdigest()}"'
    assert doc.findtext("Location", "").endswith(f"/{bucket}/created")


def test_success_action_status_200(v4: Any, bucket: str) -> None:
    presigned = v4.generate_presigned_post(
        bucket, "ok", Fields={"success_action_status": "200"}, Conditions=[{"success_action_status": "200"}]
    )
    response = post(presigned, b"x")
    assert response.status_code == 200
    assert response.content == b""


def test_success_action_redirect(v4: Any, bucket: str) -> None:
    target = "https://example.com/done?from=form"
    presigned = v4.generate_presigned_post(
        bucket, "redir", Fields={"success_action_redirect": target}, Conditions=[{"success_action_redirect": target}]
    )
    response = post(presigned, b"x")
    assert response.status_code == 303
    location = httpx.URL(response.headers["Location"])
    assert location.host == "example.com"
    assert location.params["from"] == "form"
    assert location.params["bucket"] == bucket
    assert location.params["key"] == "redir"
    assert location.params["etag"] == f'"{hashlib.md5(b"x").hexdigest()}"'


def test_malformed_form(gateway: ThreadedGateway, bucket: str) -> None:
    response = httpx.post(
        f"{gateway.endpoint}/{bucket}",
        content=b"--abc\r\nno headers here",
        headers={"Content-Type": "multipart/form-data; boundary=abc"},
    )
    assert response.status_code == 400
    assert s3_code(response) == "MalformedPOSTRequest"
    response = httpx.post(f"{gateway.endpoint}/{bucket}", content=b"x", headers={"Content-Type": "multipart/form-data"})
    assert s3_code(response) == "MalformedPOSTRequest"


def test_no_file_field(v4: Any, gateway: ThreadedGateway, bucket: str) -> None:
    presigned = v4.generate_presigned_post(bucket, "k")
    response = httpx.post(presigned["url"], data=presigned["fields"], files={"notfile": ("a", b"x")})
    assert response.status_code == 400
    assert s3_code(response) == "IncorrectNumberOfFilesInPostRequest"


def test_anonymous_form_denied(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    response = httpx.post(f"{gateway.endpoint}/{bucket}", data={"key": "anon"}, files={"file": ("a", b"x")})
    assert response.status_code == 403
    assert absent(s3, bucket, "anon")


def test_missing_bucket(v4: Any) -> None:
    presigned = v4.generate_presigned_post("no-such-bucket-post", "k")
    response = post(presigned, b"x")
    assert response.status_code == 404
    assert s3_code(response) == "NoSuchBucket"


def test_large_rejected_upload_still_gets_its_error(v4: Any, s3: Any, bucket: str) -> None:
    # The gateway reads (and drops) the rest of a rejected upload, so a client still writing it sees the answer.
    data = b"x" * (24 * 2**20)
    presigned = v4.generate_presigned_post(bucket, "k")
    response = post(presigned, data, **{"x-amz-signature": "0" * 64})
    assert response.status_code == 403
    assert s3_code(response) == "SignatureDoesNotMatch"
    presigned = v4.generate_presigned_post(bucket, "k", Conditions=[["content-length-range", 0, 1000]])
    response = post(presigned, data)
    assert response.status_code == 400
    assert s3_code(response) == "EntityTooLarge"
    assert absent(s3, bucket, "k")
