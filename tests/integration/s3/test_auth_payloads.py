"""SigV4 and body verification on the live gateway: every x-amz-content-sha256 mode, chunk and trailer signatures,
the default boto3 behaviour over HTTPS (aws-chunked with a CRC trailer), and the auth failures."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

import appliance.api.s3.app as s3app
from appliance.config import S3Config
from appliance.ipfsconn.devnode import LocalNode
from tests.integration.s3.conftest import Raw, s3_code
from tests.support import raw
from tests.support.s3server import ThreadedGateway, running_gateway
from tests.support.tls import self_signed

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"


@pytest.fixture
def seen_modes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The x-amz-content-sha256 mode of every request the gateway authenticates (V4)."""
    modes: list[str] = []
    original = s3app.authenticate

    def spy(**kwargs: Any) -> Any:
        ctx = original(**kwargs)
        modes.append(ctx.content_sha256)
        return ctx

    monkeypatch.setattr(s3app, "authenticate", spy)
    return modes


def _absent(s3: Any, bucket: str, key: str) -> bool:
    return key not in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


# ---- HTTPS: today's boto3 defaults (aws-chunked + STREAMING-UNSIGNED-PAYLOAD-TRAILER + CRC32 trailer) -------------


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory, s3_node: LocalNode) -> Iterator[ThreadedGateway]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(directory / "tls")
    with running_gateway(directory, s3_node.api_url, s3=S3Config(tls_certfile=str(cert), tls_keyfile=str(key))) as gw:
        yield gw


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_boto3_defaults_over_https(tls_gateway: ThreadedGateway, seen_modes: list[str]) -> None:
    urllib3.disable_warnings()
    s3 = tls_gateway.client()
    s3.create_bucket(Bucket="tls-bucket")
    data = os.urandom(300_000)
    put = s3.put_object(Bucket="tls-bucket", Key="k", Body=data)
    assert "STREAMING-UNSIGNED-PAYLOAD-TRAILER" in seen_modes
    got = s3.get_object(Bucket="tls-bucket", Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    s3.close()  # idle TLS connections would otherwise hold the server's shutdown


# ---- signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) -------------------------------------------------


def _streaming_put(
    gw: ThreadedGateway,
    path: str,
    data: bytes,
    *,
    mode: str = STREAMING,
    decoded_length: int | None = None,
    cut: int = 0,
    **chunk_kwargs: Any,
) -> Any:
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data) if decoded_length is None else decoded_length),
    }
    if "trailer" in chunk_kwargs:
        headers["x-amz-trailer"] = chunk_kwargs["trailer"][0]
    url = gw.endpoint + path
    signed = raw.signed_headers(
        "PUT", url, access_key=gw.access_key, secret_key=gw.secret_key, headers=headers, payload_hash=mode
    )
    seed = re.search(r"Signature=([0-9a-f]{64})", signed["Authorization"])
    assert seed is not None
    body = raw.chunk_signed_body(
        data, secret_key=gw.secret_key, amz_date=signed["X-Amz-Date"], seed_signature=seed.group(1), **chunk_kwargs
    )
    if cut:
        body = body[:-cut]
        signed["Content-Length"] = str(len(body) + cut)  # promise more than is sent, then the client goes away
    return raw.send(gw.endpoint, "PUT", path, access_key="", secret_key="", headers=signed, body=body, sign=False)


def test_signed_chunks(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    data = os.urandom(200_000)
    response = _streaming_put(gateway, f"/{bucket}/chunked", data)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == data
    assert response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_tampered_chunk_is_rejected(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    response = _streaming_put(gateway, f"/{bucket}/tampered", os.urandom(200_000), tamper_chunk=1)
    assert response.status_code == 403
    assert s3_code(response) == "SignatureDoesNotMatch"
    assert _absent(s3, bucket, "tampered")


def test_wrong_decoded_length(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    response = _streaming_put(gateway, f"/{bucket}/short", b"x" * 1000, decoded_length=999)
    assert response.status_code == 400
    assert s3_code(response) == "IncompleteBody"
    assert _absent(s3, bucket, "short")


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def test_signed_trailer(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    data = os.urandom(100_000)
    trailer = ("x-amz-checksum-crc32", _crc32(data))
    response = _streaming_put(gateway, f"/{bucket}/trailer", data, mode=STREAMING_TRAILER, trailer=trailer)
    assert response.status_code == 200, response.text
    got = s3.get_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == trailer[1]
    assert got["Body"].read() == data


def test_wrong_trailer_checksum(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    trailer = ("x-amz-checksum-crc32", _crc32(b"other"))
    response = _streaming_put(gateway, f"/{bucket}/bad-trailer", b"data" * 100, mode=STREAMING_TRAILER, trailer=trailer)
    assert response.status_code == 400
    assert s3_code(response) == "BadDigest"
    assert _absent(s3, bucket, "bad-trailer")


def test_wrong_trailer_signature(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    data = b"data" * 100
    trailer = ("x-amz-checksum-crc32", _crc32(data))
    response = _streaming_put(
        gateway, f"/{bucket}/bad-sig", data, mode=STREAMING_TRAILER, trailer=trailer, tamper_trailer=True
    )
    assert response.status_code == 403
    assert s3_code(response) == "SignatureDoesNotMatch"
    assert _absent(s3, bucket, "bad-sig")


# ---- plain payload modes and auth failures -------------------------------------------------------------------------


def test_unsigned_payload(raw_s3: Raw, s3: Any, bucket: str) -> None:
    response = raw_s3("PUT", f"/{bucket}/unsigned", body=b"abc", payload_hash="UNSIGNED-PAYLOAD")
    assert response.status_code == 200
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"abc"


def test_sha256_mismatch(raw_s3: Raw, s3: Any, bucket: str) -> None:
    wrong = hashlib.sha256(b"not the body").hexdigest()
    response = raw_s3("PUT", f"/{bucket}/mismatch", body=b"the body", payload_hash=wrong)
    assert response.status_code == 400
    assert s3_code(response) == "XAmzContentSHA256Mismatch"
    assert _absent(s3, bucket, "mismatch")


def test_wrong_secret(raw_s3: Raw, bucket: str) -> None:
    response = raw_s3("GET", f"/{bucket}", secret_key="wrong-secret")
    assert response.status_code == 403
    assert s3_code(response) == "SignatureDoesNotMatch"


def test_unknown_access_key(raw_s3: Raw, bucket: str) -> None:
    response = raw_s3("GET", f"/{bucket}", access_key="AKIANOBODY")
    assert response.status_code == 403
    assert s3_code(response) == "InvalidAccessKeyId"


def test_anonymous_is_denied(raw_s3: Raw, bucket: str) -> None:
    response = raw_s3("GET", f"/{bucket}", sign=False)
    assert response.status_code == 403
    assert s3_code(response) == "AccessDenied"
    assert raw_s3("HEAD", f"/{bucket}/x", sign=False).status_code == 403


def test_clock_skew(raw_s3: Raw, gateway: ThreadedGateway, bucket: str) -> None:
    gateway.clock_offset[0] = 16 * 60
    response = raw_s3("GET", f"/{bucket}")
    assert response.status_code == 403
    assert s3_code(response) == "RequestTimeTooSkewed"
    gateway.clock_offset[0] = 14 * 60
    assert raw_s3("GET", f"/{bucket}").status_code == 200


def test_unsigned_amz_header_is_denied(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    path = f"/{bucket}/sneaky"
    headers = raw.signed_headers(
        "PUT", gateway.endpoint + path, access_key=gateway.access_key, secret_key=gateway.secret_key, body=b"x"
    )
    headers["x-amz-meta-injected"] = "yes"
    response = raw.send(
        gateway.endpoint, "PUT", path, access_key="", secret_key="", headers=headers, body=b"x", sign=False
    )
    assert response.status_code == 403
    assert _absent(s3, bucket, "sneaky")


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("AWS4-HMAC-SHA256 garbage", "AuthorizationHeaderMalformed"),
        (
            "AWS4-HMAC-SHA256 Credential=AK/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=zz",
            "AuthorizationHeaderMalformed",
        ),
        ("Bearer token", "AuthorizationHeaderMalformed"),
    ],
)
def test_malformed_authorization(raw_s3: Raw, bucket: str, authorization: str, code: str) -> None:
    response = raw_s3(
        "GET",
        f"/{bucket}",
        sign=False,
        headers={
            "Authorization": authorization,
            "x-amz-date": raw.now_amz_date(),
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
    )
    assert response.status_code in (400, 403)
    assert s3_code(response) == code
