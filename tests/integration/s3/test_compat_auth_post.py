"""Issue 10 "Correct to the byte", authentication / POST / bucket / header part: real boto3 and hand-made requests
against the live gateway on a real IPFS node."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from email.header import decode_header
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from appliance.config import S3Config
from appliance.ipfsconn.devnode import LocalNode
from tests.integration.s3.conftest import Raw, s3_code
from tests.support import raw
from tests.support.s3server import ThreadedGateway, running_gateway


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def message(response: httpx.Response) -> str:
    from xml.etree import ElementTree as ET

    return ET.fromstring(response.content).findtext("Message") or ""


@pytest.fixture(scope="module")
def eu_gateway(tmp_path_factory: pytest.TempPathFactory, s3_node: LocalNode) -> Iterator[ThreadedGateway]:
    with running_gateway(tmp_path_factory.mktemp("eu"), s3_node.api_url, s3=S3Config(region="eu-west-1")) as gw:
        yield gw


def client_for(gw: ThreadedGateway, region: str, **config: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=gw.secret_key,
        region_name=region,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


# --------------------------------------------------------------------------- 1. user metadata


def decoded(value: str) -> str:
    ((data, charset),) = decode_header(value)
    return data.decode(charset) if isinstance(data, bytes) else data


def test_rfc2047_metadata_round_trips_as_aws(s3: Any, bucket: str) -> None:
    sent = {
        "b": "=?UTF-8?B?w6k=?=",  # "é" B-encoded: S3 returns it Q-encoded
        "q": "=?UTF-8?Q?=C3=84M=C3=84Z=C3=95=C3=91_S3?=",  # already S3's form: returned byte for byte
        "ascii": "=?UTF-8?B?YWJj?=",  # decodes to ASCII: returned decoded
        "plain": "a b_c=d?",
    }
    s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata=sent)
    got = s3.head_object(Bucket=bucket, Key="m")["Metadata"]
    got.pop("cid")  # the gateway's own x-amz-meta-cid
    assert got == {"b": "=?UTF-8?Q?=C3=A9?=", "q": sent["q"], "ascii": "abc", "plain": "a b_c=d?"}
    assert decoded(got["b"]) == "é"
    assert decoded(got["q"]) == "ÄMÄZÕÑ S3"
    # GetObject returns the same header values.
    assert s3.get_object(Bucket=bucket, Key="m")["Metadata"] == {**got, "cid": got_cid(s3, bucket)}


def got_cid(s3: Any, bucket: str) -> str:
    return str(s3.head_object(Bucket=bucket, Key="m")["Metadata"]["cid"])


def test_raw_utf8_metadata_bytes_are_read_as_iso_8859_1(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    url = f"{gateway.endpoint}/{bucket}/raw"
    headers = raw.signed_headers(
        "PUT",
        url,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        headers={"x-amz-meta-n": "ö"},
        body=b"x",
    )
    wire = {k: (v.encode("utf-8") if k.lower() == "x-amz-meta-n" else v) for k, v in headers.items()}
    response = httpx.put(url, headers=wire, content=b"x")
    assert response.status_code == 200, response.text
    head = httpx.head(
        url, headers=raw.signed_headers("HEAD", url, access_key=gateway.access_key, secret_key=gateway.secret_key)
    )
    # As AWS: each byte is one ISO-8859-1 character, returned RFC 2047-encoded.
    assert head.headers["x-amz-meta-n"] == "=?UTF-8?Q?=C3=83=C2=B6?="
    assert s3.head_object(Bucket=bucket, Key="raw")["Metadata"]["n"] == "=?UTF-8?Q?=C3=83=C2=B6?="


def test_metadata_limit_counts_decoded_utf8_bytes(s3: Any, bucket: str) -> None:
    value = "é" * 1023 + "x"  # 2047 bytes; with the name "a" exactly 2 KiB
    encoded = "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
    s3.put_object(Bucket=bucket, Key="full", Body=b"x", Metadata={"a": encoded})
    assert decoded(s3.head_object(Bucket=bucket, Key="full")["Metadata"]["a"]) == value
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="over", Body=b"x", Metadata={"ab": encoded})
    assert error_code(exc) == "MetadataTooLarge"


# --------------------------------------------------------------------------- 2. CreateBucket


def test_create_owned_bucket_again_in_us_east_1_is_200(s3: Any, bucket: str) -> None:
    response = s3.create_bucket(Bucket=bucket)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["Location"] == f"/{bucket}"


def test_create_owned_bucket_again_elsewhere_is_409(eu_gateway: ThreadedGateway) -> None:
    eu = client_for(eu_gateway, "eu-west-1")
    eu.create_bucket(Bucket="eu-twice", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(ClientError) as exc:
        eu.create_bucket(Bucket="eu-twice", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert (error_code(exc), status(exc)) == ("BucketAlreadyOwnedByYou", 409)


# --------------------------------------------------------------------------- 3. checksums


def test_checksum_errors_with_boto3(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="c", Body=b"hello", ChecksumCRC32="AAAAAA==")
    assert error_code(exc) == "BadDigest"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="c", Body=b"hello", ChecksumSHA256="AAAAAA==")
    assert error_code(exc) == "InvalidRequest"


@pytest.mark.parametrize(
    ("headers", "code", "text"),
    [
        ({"x-amz-checksum-crc32": "!!!!"}, "InvalidRequest", "Value for x-amz-checksum-crc32 header is invalid."),
        (
            {"x-amz-checksum-xxhash9": "AAAAAA=="},
            "InvalidRequest",
            "The algorithm type you specified in x-amz-checksum- header is invalid.",
        ),
        (
            {"x-amz-sdk-checksum-algorithm": "MD4", "x-amz-checksum-crc32": "NhCmhg=="},
            "InvalidRequest",
            "Checksum algorithm provided is unsupported.",
        ),
        (
            {"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": "NhCmhg=="},
            "InvalidRequest",
            "Value for x-amz-sdk-checksum-algorithm header is invalid.",
        ),
        (
            {"x-amz-checksum-crc32": "AAAAAA=="},
            "BadDigest",
            "The CRC32 you specified did not match the calculated checksum.",
        ),
    ],
)
def test_checksum_headers_raw(raw_s3: Raw, bucket: str, headers: dict[str, str], code: str, text: str) -> None:
    response = raw_s3("PUT", f"/{bucket}/c", headers=headers, body=b"hello")
    assert response.status_code == 400
    assert s3_code(response) == code
    assert message(response).startswith(text)
    assert raw_s3("HEAD", f"/{bucket}/c").status_code == 404


# --------------------------------------------------------------------------- 4. presigned expiry


def test_presigned_v4_expires_beyond_a_week(gateway: ThreadedGateway, bucket: str) -> None:
    v4 = gateway.client(signature_version="s3v4")
    url = v4.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=604801)
    response = httpx.get(url)
    assert response.status_code == 400
    assert s3_code(response) == "AuthorizationQueryParametersError"
    assert "must be less than 604800 seconds" in message(response)
    ok = v4.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=604800)
    assert httpx.get(ok).status_code == 200


@pytest.mark.parametrize(("value", "text"), [("-1", "non-negative"), ("soon", "should be a number")])
def test_presigned_v4_bad_expires(gateway: ThreadedGateway, bucket: str, value: str, text: str) -> None:
    url = gateway.client(signature_version="s3v4").generate_presigned_url("list_objects_v2", Params={"Bucket": bucket})
    parts = urlsplit(url)
    query = "&".join(
        p if not p.startswith("X-Amz-Expires=") else f"X-Amz-Expires={value}" for p in parts.query.split("&")
    )
    response = httpx.get(f"{gateway.endpoint}{parts.path}?{query}")
    assert (response.status_code, s3_code(response)) == (400, "AuthorizationQueryParametersError")
    assert text in message(response)


def test_presigned_v2_lifetime_is_capped(gateway: ThreadedGateway, bucket: str) -> None:
    v2 = gateway.client(signature_version="s3")
    ok = v2.generate_presigned_url("list_objects", Params={"Bucket": bucket}, ExpiresIn=3600)
    assert httpx.get(ok).status_code == 200
    far = v2.generate_presigned_url("list_objects", Params={"Bucket": bucket}, ExpiresIn=604800 + 3600)
    response = httpx.get(far)
    assert (response.status_code, s3_code(response)) == (403, "AccessDenied")


# --------------------------------------------------------------------------- 5. browser POST


def post(presigned: dict[str, Any], data: bytes, filename: str = "up.bin") -> httpx.Response:
    return httpx.post(
        presigned["url"], data=presigned["fields"], files={"file": (filename, data, "text/plain")}, timeout=60
    )


def test_presigned_post_201_returns_post_response(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    v4 = gateway.client(signature_version="s3v4")
    presigned = v4.generate_presigned_post(
        bucket,
        "in/${filename}",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["starts-with", "$key", "in/"]],
    )
    response = post(presigned, b"hello", filename="a b.txt")
    assert response.status_code == 201, response.text
    from xml.etree import ElementTree as ET

    doc = ET.fromstring(response.content)
    etag = f'"{hashlib.md5(b"hello").hexdigest()}"'
    assert (doc.tag, doc.findtext("Bucket"), doc.findtext("Key"), doc.findtext("ETag")) == (
        "PostResponse",
        bucket,
        "in/a b.txt",
        etag,
    )
    assert doc.findtext("Location") == f"{gateway.endpoint}/{bucket}/in/a%20b.txt"
    assert response.headers["Location"] == doc.findtext("Location")
    assert s3.get_object(Bucket=bucket, Key="in/a b.txt")["Body"].read() == b"hello"


@pytest.mark.parametrize(("status_field", "expected"), [("200", 200), ("204", 204), ("299", 204)])
def test_presigned_post_status(gateway: ThreadedGateway, bucket: str, status_field: str, expected: int) -> None:
    v4 = gateway.client(signature_version="s3v4")
    presigned = v4.generate_presigned_post(
        bucket,
        "s",
        Fields={"success_action_status": status_field},
        Conditions=[{"success_action_status": status_field}],
    )
    response = post(presigned, b"x")
    assert response.status_code == expected
    assert response.content == b""


@pytest.mark.parametrize("field", ["success_action_redirect", "redirect"])
def test_presigned_post_redirect(gateway: ThreadedGateway, bucket: str, field: str) -> None:
    v4 = gateway.client(signature_version="s3v4")
    target = "https://app.example/done?x=1"
    presigned = v4.generate_presigned_post(bucket, "r", Fields={field: target}, Conditions=[{field: target}])
    response = post(presigned, b"x")
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "app.example"
    query = parse_qs(location.query)
    assert query == {"x": ["1"], "bucket": [bucket], "key": ["r"], "etag": [f'"{hashlib.md5(b"x").hexdigest()}"']}


def v2_fields(gw: ThreadedGateway, conditions: list[Any], **extra: str) -> dict[str, str]:
    expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": conditions}).encode()).decode()
    signature = base64.b64encode(hmac.new(gw.secret_key.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {**extra, "AWSAccessKeyId": gw.access_key, "policy": policy, "signature": signature}


def test_sigv2_browser_post(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    fields = v2_fields(
        gateway,
        [{"bucket": bucket}, ["starts-with", "$Key", "v2/"], ["starts-with", "$Content-Type", "text/"]],
        key="v2/${filename}",
        **{"Content-Type": "text/plain"},
    )
    response = httpx.post(
        f"{gateway.endpoint}/{bucket}", data=fields, files={"file": ("n.txt", b"v2 body", "text/plain")}
    )
    assert response.status_code == 204, response.text
    got = s3.get_object(Bucket=bucket, Key="v2/n.txt")
    assert got["Body"].read() == b"v2 body"
    assert got["ContentType"] == "text/plain"
    fields["signature"] = base64.b64encode(b"0" * 20).decode()
    bad = httpx.post(f"{gateway.endpoint}/{bucket}", data={**fields, "key": "v2/bad"}, files={"file": ("n", b"x")})
    assert (bad.status_code, s3_code(bad)) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="v2/bad")


def test_post_location_ignores_a_foreign_host(gateway: ThreadedGateway, bucket: str) -> None:
    fields = v2_fields(gateway, [{"bucket": bucket}, ["starts-with", "$key", ""]], key="h")
    response = httpx.post(
        f"{gateway.endpoint}/{bucket}", data=fields, files={"file": ("n", b"x")}, headers={"Host": "attacker.example"}
    )
    assert response.status_code == 204
    assert response.headers["Location"] == f"/{bucket}/h"


# --------------------------------------------------------------------------- 6. scope region, expected owner


def test_signing_for_another_region_is_refused(eu_gateway: ThreadedGateway) -> None:
    wrong = client_for(eu_gateway, "us-east-1")
    with pytest.raises(ClientError) as exc:
        wrong.list_buckets()
    assert (error_code(exc), status(exc)) == ("AuthorizationHeaderMalformed", 400)
    assert exc.value.response["Error"]["Message"] == (
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
    )
    url = client_for(eu_gateway, "us-east-1", signature_version="s3v4").generate_presigned_url("list_buckets")
    response = httpx.get(url)
    assert (response.status_code, s3_code(response)) == (400, "AuthorizationQueryParametersError")
    assert client_for(eu_gateway, "eu-west-1").list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_expected_bucket_owner(gateway: ThreadedGateway, s3: Any, bucket: str, raw_s3: Raw) -> None:
    owner = s3.list_buckets()["Owner"]["ID"]
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ExpectedBucketOwner=owner)
    assert s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="p", Body=b"x", ExpectedBucketOwner="111122223333")
    assert (error_code(exc), status(exc)) == ("AccessDenied", 403)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="p")
    response = raw_s3("GET", f"/{bucket}", headers={"x-amz-expected-bucket-owner": "owner!"})
    assert (response.status_code, s3_code(response)) == (400, "InvalidBucketOwnerAWSAccountID")


# --------------------------------------------------------------------------- 7. PutBucketTagging


def test_put_bucket_tagging_with_boto3(s3: Any, bucket: str) -> None:
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ünï + a/b@c"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "ünï + a/b@c"}]
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "a*b"}]})
    assert error_code(exc) == "InvalidTag"


def test_put_bucket_tagging_integrity_raw(raw_s3: Raw, bucket: str) -> None:
    body = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    missing = raw_s3("PUT", f"/{bucket}", query=[("tagging", "")], body=body)
    assert (missing.status_code, s3_code(missing)) == (400, "InvalidRequest")
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    wrong = raw_s3("PUT", f"/{bucket}", query=[("tagging", "")], body=body, headers={"Content-MD5": wrong_md5})
    assert (wrong.status_code, s3_code(wrong)) == (400, "BadDigest")
    assert raw_s3("GET", f"/{bucket}", query=[("tagging", "")]).status_code == 404
