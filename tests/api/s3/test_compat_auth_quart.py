"""Authentication, bucket, POST and header behaviour S3 clients rely on, through Quart's test client (botocore
signs; the content store is the in-memory fake of test_app_quart)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, S3Config
from appliance.service.buckets import BucketService
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.api.s3.test_app_quart import AK, HOST, SK, MemoryContent, _call
from tests.support import raw

OTHER_AK, OTHER_SK = "AKIDOTHER", "secret-other"


def build_app(tmp_path: Path, **s3: Any) -> Iterator[Quart]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = MemoryContent()
    config = S3Config(**s3)
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),
        multipart=MultipartService(store, content, unpin_grace=0),
        buckets=BucketService(store, default_region=config.region),
        identity=Identity([Credentials(AK, SK), Credentials(OTHER_AK, OTHER_SK)]),
        s3=config,
        auth=AuthConfig(max_presign_expiry_seconds=3600),
    )
    yield create_app(services)
    store.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Quart]:
    yield from build_app(tmp_path)


@pytest.fixture
def eu_app(tmp_path: Path) -> Iterator[Quart]:
    yield from build_app(tmp_path, region="eu-west-1")


def code(body: bytes) -> str:
    return ET.fromstring(body).findtext("Code") or ""


def message(body: bytes) -> str:
    return ET.fromstring(body).findtext("Message") or ""


async def signed_as(app: Quart, method: str, path: str, ak: str, sk: str, **kw: Any) -> Any:
    headers = raw.signed_headers(
        method, f"http://{HOST}{path}", access_key=ak, secret_key=sk, headers=kw.get("headers"), body=b""
    )
    headers["Host"] = HOST
    headers["Content-Length"] = "0"
    return await app.test_client().open(path, method=method, headers=headers, data=b"")


# --------------------------------------------------------------------------- CreateBucket


async def test_create_bucket_twice_us_east_1_is_200(app: Quart) -> None:
    assert (await _call(app, "PUT", "/twice")).status_code == 200
    again = await _call(app, "PUT", "/twice")
    assert again.status_code == 200
    assert again.headers["Location"] == "/twice"


async def test_create_bucket_twice_elsewhere_is_already_owned(eu_app: Quart) -> None:
    headers = raw.signed_headers(
        "PUT", f"http://{HOST}/twice", access_key=AK, secret_key=SK, region="eu-west-1", body=b""
    )
    headers.update({"Host": HOST, "Content-Length": "0"})
    client = eu_app.test_client()
    assert (await client.open("/twice", method="PUT", headers=headers)).status_code == 200
    again = await client.open("/twice", method="PUT", headers=headers)
    assert again.status_code == 409
    assert code(await again.get_data()) == "BucketAlreadyOwnedByYou"


async def test_create_bucket_of_another_owner_is_already_exists(app: Quart) -> None:
    assert (await _call(app, "PUT", "/taken")).status_code == 200
    response = await signed_as(app, "PUT", "/taken", OTHER_AK, OTHER_SK)
    assert response.status_code == 409
    assert code(await response.get_data()) == "BucketAlreadyExists"


# --------------------------------------------------------------------------- scope region, expected owner


async def test_scope_for_another_region_is_authorization_header_malformed(eu_app: Quart) -> None:
    response = await _call(eu_app, "GET", "/")  # _call signs for us-east-1
    body = await response.get_data()
    assert response.status_code == 400
    assert code(body) == "AuthorizationHeaderMalformed"
    assert (
        message(body) == "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
    )


@pytest.mark.parametrize(
    ("expected", "status", "s3code"),
    [
        (AK, 200, ""),
        (OTHER_AK, 403, "AccessDenied"),
        ("111122223333", 403, "AccessDenied"),
        ("not an id", 400, "InvalidBucketOwnerAWSAccountID"),
        ("", 400, "InvalidBucketOwnerAWSAccountID"),
    ],
)
async def test_expected_bucket_owner(app: Quart, expected: str, status: int, s3code: str) -> None:
    await _call(app, "PUT", "/owned")
    response = await _call(app, "GET", "/owned?list-type=2", headers={"x-amz-expected-bucket-owner": expected})
    assert response.status_code == status
    if s3code:
        assert code(await response.get_data()) == s3code
    put = await _call(app, "PUT", "/owned/k", body=b"x", headers={"x-amz-expected-bucket-owner": expected})
    assert put.status_code == status
    listed = await _call(app, "GET", "/owned?list-type=2")
    assert (b"<Key>k</Key>" in await listed.get_data()) == (status == 200)  # nothing stored on refusal


# --------------------------------------------------------------------------- user metadata


async def test_raw_utf8_metadata_is_stored_as_aws_reads_it(app: Quart) -> None:
    await _call(app, "PUT", "/meta")
    wire = "ö"  # the test client sends header strings UTF-8 encoded: the bytes c3 b6
    put = await _call(
        app, "PUT", "/meta/k", body=b"x", headers={"x-amz-meta-n": wire, "x-amz-meta-e": "=?UTF-8?B?w6k=?="}
    )
    assert put.status_code == 200
    got = await _call(app, "HEAD", "/meta/k")
    assert got.headers["x-amz-meta-n"] == "=?UTF-8?Q?=C3=83=C2=B6?="
    assert got.headers["x-amz-meta-e"] == "=?UTF-8?Q?=C3=A9?="


async def test_metadata_limit_counts_decoded_bytes(app: Quart) -> None:
    await _call(app, "PUT", "/meta")
    value = "é" * 1023 + "x"  # 2047 UTF-8 bytes: with the name "a" exactly the 2 KiB limit
    encoded = "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
    assert (await _call(app, "PUT", "/meta/ok", body=b"x", headers={"x-amz-meta-a": encoded})).status_code == 200
    over = await _call(app, "PUT", "/meta/no", body=b"x", headers={"x-amz-meta-ab": encoded})
    assert over.status_code == 400
    assert code(await over.get_data()) == "MetadataTooLarge"


# --------------------------------------------------------------------------- checksum headers


@pytest.mark.parametrize(
    ("headers", "s3code"),
    [
        ({"x-amz-checksum-crc32": "AAAAAA=="}, "BadDigest"),
        ({"x-amz-checksum-crc32": "AAAA"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": "%%%%"}, "InvalidRequest"),
        ({"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-crc32c": "AAAAAA=="}, "InvalidRequest"),
        ({"x-amz-checksum-foo": "AAAAAA=="}, "InvalidRequest"),
        ({"x-amz-sdk-checksum-algorithm": "MD4", "x-amz-checksum-crc32": "AAAAAA=="}, "InvalidRequest"),
        ({"x-amz-sdk-checksum-algorithm": "CRC32"}, "InvalidRequest"),
        ({"content-md5": base64.b64encode(b"0" * 16).decode()}, "BadDigest"),
    ],
)
async def test_checksum_headers(app: Quart, headers: dict[str, str], s3code: str) -> None:
    await _call(app, "PUT", "/sums")
    response = await _call(app, "PUT", "/sums/k", body=b"hello", headers=headers)
    assert response.status_code == 400
    assert code(await response.get_data()) == s3code
    assert (await _call(app, "HEAD", "/sums/k")).status_code == 404


# --------------------------------------------------------------------------- PutBucketTagging


TAGS = b"<Tagging><TagSet><Tag><Key>team</Key><Value>a b</Value></Tag></TagSet></Tagging>"


def md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


async def test_put_bucket_tagging_integrity(app: Quart) -> None:
    await _call(app, "PUT", "/tagged")
    missing = await _call(app, "PUT", "/tagged?tagging", body=TAGS)
    assert missing.status_code == 400
    assert code(await missing.get_data()) == "InvalidRequest"
    assert "Content-MD5" in message(await missing.get_data())
    wrong = await _call(app, "PUT", "/tagged?tagging", body=TAGS, headers={"Content-MD5": md5(b"other")})
    assert code(await wrong.get_data()) == "BadDigest"
    assert (await _call(app, "GET", "/tagged?tagging")).status_code == 404  # nothing stored
    bad = TAGS.replace(b"a b", b"a\tb")
    invalid = await _call(app, "PUT", "/tagged?tagging", body=bad, headers={"Content-MD5": md5(bad)})
    assert code(await invalid.get_data()) == "InvalidTag"
    ok = await _call(app, "PUT", "/tagged?tagging", body=TAGS, headers={"Content-MD5": md5(TAGS)})
    assert ok.status_code == 204
    crc = await _call(
        app,
        "PUT",
        "/tagged?tagging",
        body=TAGS,
        headers={"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(TAGS).digest()).decode()},
    )
    assert crc.status_code == 204


# --------------------------------------------------------------------------- browser POST


def v2_post_body(fields: dict[str, str], data: bytes, filename: str = "f.txt") -> tuple[bytes, str]:
    boundary = "----s3ipfs-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def v2_fields(bucket: str, conditions: list[Any], **extra: str) -> dict[str, str]:
    policy = base64.b64encode(
        json.dumps({"expiration": "2099-01-01T00:00:00Z", "conditions": conditions}).encode()
    ).decode()
    signature = base64.b64encode(hmac.new(SK.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {**extra, "AWSAccessKeyId": AK, "policy": policy, "signature": signature}


async def post_form(app: Quart, path: str, body: bytes, content_type: str, host: str = HOST) -> Any:
    headers = {"Host": host, "Content-Type": content_type, "Content-Length": str(len(body))}
    return await app.test_client().open(path, method="POST", headers=headers, data=body)


async def test_v2_post_with_201_and_filename(app: Quart) -> None:
    await _call(app, "PUT", "/forms")
    fields = v2_fields(
        "forms",
        [{"bucket": "forms"}, ["starts-with", "$key", "up/"], {"success_action_status": "201"}],
        key="up/${filename}",
        success_action_status="201",
    )
    body, ctype = v2_post_body(fields, b"hello v2", filename="notes.txt")
    response = await post_form(app, "/forms", body, ctype)
    assert response.status_code == 201
    xml = ET.fromstring(await response.get_data())
    assert xml.findtext("Key") == "up/notes.txt"
    assert xml.findtext("Location") == "http://127.0.0.1:9000/forms/up/notes.txt"
    got = await _call(app, "GET", "/forms/up/notes.txt")
    assert await got.get_data() == b"hello v2"


async def test_post_location_never_uses_an_untrusted_host(app: Quart) -> None:
    await _call(app, "PUT", "/forms")
    fields = v2_fields("forms", [{"bucket": "forms"}, ["starts-with", "$key", ""]], key="k")
    body, ctype = v2_post_body(fields, b"x")
    response = await post_form(app, "/forms", body, ctype, host="evil.example:443")
    assert response.status_code == 204
    assert response.headers["Location"] == "/forms/k"
    response = await post_form(app, "/forms", body, ctype, host="localhost:9000")
    assert response.headers["Location"] == "http://localhost:9000/forms/k"


async def test_v2_post_bad_signature_stores_nothing(app: Quart) -> None:
    await _call(app, "PUT", "/forms")
    fields = v2_fields("forms", [{"bucket": "forms"}, ["starts-with", "$key", ""]], key="k")
    fields["signature"] = base64.b64encode(b"x" * 20).decode()
    body, ctype = v2_post_body(fields, b"x")
    response = await post_form(app, "/forms", body, ctype)
    assert response.status_code == 403
    assert code(await response.get_data()) == "SignatureDoesNotMatch"
    assert (await _call(app, "HEAD", "/forms/k")).status_code == 404


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    extra=st.dictionaries(
        st.sampled_from(
            [
                "key",
                "policy",
                "signature",
                "AWSAccessKeyId",
                "success_action_status",
                "success_action_redirect",
                "x-amz-meta-a",
                "Content-Type",
                "x-amz-algorithm",
            ]
        ),
        st.text(max_size=40),
        max_size=4,
    ),
    cut=st.integers(min_value=0, max_value=400),
)
async def test_hostile_v2_forms_never_500(app: Quart, extra: dict[str, str], cut: int) -> None:
    await _call(app, "PUT", "/fuzzforms")
    fields = {**v2_fields("fuzzforms", [{"bucket": "fuzzforms"}, ["starts-with", "$key", ""]], key="k"), **extra}
    body, ctype = v2_post_body(fields, b"data")
    if cut:
        body = body[: len(body) - cut] if cut < len(body) else b""
    response = await post_form(app, "/fuzzforms", body, ctype)
    assert response.status_code < 500
