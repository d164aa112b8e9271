"""Bucket CORS on the live gateway: Put/Get/DeleteBucketCors through boto3, unsigned OPTIONS preflights through httpx,
and the Access-Control-* headers of signed requests that carry an Origin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code
from tests.support.s3server import ThreadedGateway

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

RULES: list[dict[str, Any]] = [
    {
        "ID": "uploads",
        "AllowedMethods": ["PUT", "POST"],
        "AllowedOrigins": ["https://app.example"],
        "AllowedHeaders": ["x-amz-*", "Content-Type"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 600,
    },
    {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["https://*.example"]},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "MaxAgeSeconds": 30},
]


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _options(gateway: ThreadedGateway, path: str, headers: dict[str, str]) -> httpx.Response:
    """An OPTIONS request as a browser sends it: no credentials at all."""
    return httpx.request("OPTIONS", gateway.endpoint + path, headers=headers, timeout=30)


def _configure(s3: Any, bucket: str) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})


def test_put_get_delete_round_trip(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert _code(exc) == "NoSuchCORSConfiguration"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    put = s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES

    replacement = [{"AllowedMethods": ["DELETE"], "AllowedOrigins": ["http://other.test:8080"]}]
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": replacement})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == replacement  # a put replaces the whole configuration

    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_cors(Bucket=bucket)
    assert _code(exc) == "NoSuchCORSConfiguration"
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204  # idempotent


def test_missing_bucket(s3: Any) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("put_bucket_cors", {"CORSConfiguration": {"CORSRules": RULES}}),
        ("get_bucket_cors", {}),
        ("delete_bucket_cors", {}),
    ]
    for operation, kwargs in calls:
        with pytest.raises(ClientError) as exc:
            getattr(s3, operation)(Bucket="no-such-cors-bucket", **kwargs)
        assert _code(exc) == "NoSuchBucket"


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([{"AllowedMethods": ["OPTIONS"], "AllowedOrigins": ["*"]}], "InvalidRequest"),
        ([{"AllowedMethods": ["get"], "AllowedOrigins": ["*"]}], "InvalidRequest"),
        ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://*.*.example"]}], "InvalidRequest"),
        ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "AllowedHeaders": ["x-*-*"]}], "InvalidRequest"),
        ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "ExposeHeaders": ["*"]}], "InvalidRequest"),
        ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"], "ID": "i" * 256}], "InvalidArgument"),
        ([{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}] * 101, "MalformedXML"),
        ([], "MalformedXML"),
    ],
)
def test_bad_configurations_leave_the_stored_one(s3: Any, bucket: str, rules: list[dict[str, Any]], code: str) -> None:
    _configure(s3, bucket)
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert _code(exc) == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES


_RULE = "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>"


@pytest.mark.parametrize(
    "body",
    [
        b"<CORSConfiguration><CORSRule>",
        b"<Tagging><TagSet/></Tagging>",
        f"<CORSConfiguration>{_RULE}<Extra/></CORSConfiguration>".encode(),
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "GET">]><CORSConfiguration><CORSRule>'
        b"<AllowedMethod>&e;</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
        f"<CORSConfiguration>{_RULE}{' ' * 70_000}</CORSConfiguration>".encode(),
    ],
)
def test_malformed_documents(s3: Any, raw_s3: Raw, bucket: str, body: bytes) -> None:
    _configure(s3, bucket)
    response = raw_s3("PUT", f"/{bucket}", query=[("cors", "")], body=body)
    assert response.status_code == 400
    assert s3_code(response) == "MalformedXML"
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES


def test_get_renders_s3_xml(s3: Any, raw_s3: Raw, bucket: str) -> None:
    _configure(s3, bucket)
    response = raw_s3("GET", f"/{bucket}", query=[("cors", "")])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    assert b'<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><CORSRule><ID>uploads</ID>' in (
        response.content
    )


def test_preflight_allowed_without_signature(s3: Any, gateway: ThreadedGateway, bucket: str) -> None:
    _configure(s3, bucket)
    response = _options(
        gateway,
        f"/{bucket}/some/key.txt",
        {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "X-Amz-Date, content-type,x-amz-content-sha256",
        },
    )
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-methods"] == "PUT, POST"
    assert response.headers["access-control-allow-headers"] == "x-amz-date, content-type, x-amz-content-sha256"
    assert response.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["vary"] == VARY

    # a later rule answers what the first does not allow; '*' is answered as '*'
    star = _options(gateway, f"/{bucket}", {"Origin": "http://anything:3000", "Access-Control-Request-Method": "GET"})
    assert star.status_code == 200
    assert star.headers["access-control-allow-origin"] == "*"
    assert star.headers["access-control-allow-methods"] == "GET"
    assert star.headers["access-control-max-age"] == "30"
    assert "access-control-allow-credentials" not in star.headers
    assert "access-control-allow-headers" not in star.headers
    sub = _options(gateway, f"/{bucket}/k", {"Origin": "https://a.example", "Access-Control-Request-Method": "HEAD"})
    assert sub.status_code == 200
    assert sub.headers["access-control-allow-origin"] == "https://a.example"
    assert sub.headers["access-control-allow-methods"] == "GET, HEAD"
    assert "access-control-max-age" not in sub.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.test", "Access-Control-Request-Method": "PUT"},  # origin not allowed for PUT
        {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"},
        {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x",
        },
        {"Origin": "https://a.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x"},
        {"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"},
    ],
)
def test_preflight_refused(s3: Any, gateway: ThreadedGateway, bucket: str, headers: dict[str, str]) -> None:
    _configure(s3, bucket)
    response = _options(gateway, f"/{bucket}/key", headers)
    assert response.status_code == 403
    assert s3_code(response) == "AccessForbidden"
    assert "CORSResponse: This CORS request is not allowed." in response.text
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_preflight_without_configuration(gateway: ThreadedGateway, bucket: str) -> None:
    response = _options(
        gateway, f"/{bucket}/key", {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    )
    assert response.status_code == 403
    assert s3_code(response) == "AccessForbidden"
    assert "access-control-allow-origin" not in response.headers


def test_preflight_bad_requests(s3: Any, gateway: ThreadedGateway, bucket: str) -> None:
    _configure(s3, bucket)
    no_origin = _options(gateway, f"/{bucket}/key", {"Access-Control-Request-Method": "GET"})
    assert no_origin.status_code == 400
    assert s3_code(no_origin) == "BadRequest"
    no_method = _options(gateway, f"/{bucket}/key", {"Origin": "https://app.example"})
    assert no_method.status_code == 400
    assert s3_code(no_method) == "BadRequest"
    missing = _options(
        gateway, "/no-such-cors-bucket/k", {"Origin": "https://x", "Access-Control-Request-Method": "GET"}
    )
    assert missing.status_code == 403
    assert s3_code(missing) == "AccessForbidden"


def test_signed_requests_get_cors_headers(s3: Any, raw_s3: Raw, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    plain = raw_s3("GET", f"/{bucket}/k", headers={"Origin": "https://a.example"})
    assert plain.status_code == 200
    assert not any(name.startswith("access-control-") for name in plain.headers)  # no configuration, no headers

    _configure(s3, bucket)
    got = raw_s3("GET", f"/{bucket}/k", headers={"Origin": "https://a.example"})
    assert got.status_code == 200 and got.content == b"hello"
    assert got.headers["access-control-allow-origin"] == "https://a.example"
    assert got.headers["access-control-allow-methods"] == "GET, HEAD"
    assert got.headers["vary"] == VARY

    anyone = raw_s3("HEAD", f"/{bucket}/k", headers={"Origin": "http://elsewhere.test"})
    assert anyone.status_code == 200
    assert "access-control-allow-origin" not in anyone.headers  # the '*' rule allows GET only

    put = raw_s3("PUT", f"/{bucket}/up", headers={"Origin": "https://app.example"}, body=b"x")
    assert put.status_code == 200
    assert put.headers["access-control-allow-origin"] == "https://app.example"
    assert put.headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert put.headers["access-control-max-age"] == "600"

    refused = raw_s3("DELETE", f"/{bucket}/up", headers={"Origin": "https://app.example"})
    assert refused.status_code == 204  # CORS never blocks the request itself
    assert "access-control-allow-origin" not in refused.headers

    missing = raw_s3("GET", f"/{bucket}/nothing-here", headers={"Origin": "https://a.example"})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "https://a.example"  # errors carry them too

    no_origin = raw_s3("GET", f"/{bucket}/k")
    assert not any(name.startswith("access-control-") for name in no_origin.headers)


def test_boto3_get_with_origin(s3: Any, bucket: str) -> None:
    _configure(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")

    def add_origin(request: Any, **_: Any) -> None:
        request.headers["Origin"] = "https://b.example"

    s3.meta.events.register("before-sign.s3.GetObject", add_origin)
    try:
        got = s3.get_object(Bucket=bucket, Key="k")
    finally:
        s3.meta.events.unregister("before-sign.s3.GetObject", add_origin)
    headers = got["ResponseMetadata"]["HTTPHeaders"]
    assert headers["access-control-allow-origin"] == "https://b.example"
    assert got["Body"].read() == b"hello"


def test_requests_to_missing_buckets_are_not_decorated(raw_s3: Raw) -> None:
    response = raw_s3("GET", "/no-such-cors-bucket/k", headers={"Origin": "https://a.example"})
    assert response.status_code == 404
    assert s3_code(response) == "NoSuchBucket"
    assert "access-control-allow-origin" not in response.headers
