"""Signature Version 2: the AWS documentation examples and botocore's own V2 signer (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from appliance.api.s3.request import parse_request
from appliance.api.s3.sigv2 import authenticate_v2, is_v2, string_to_sign_v2
from appliance.errors import (
    AccessDenied,
    ExpiredPresignedRequest,
    InvalidAccessKeyId,
    InvalidArgument,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _lookup(key: str) -> str | None:
    return SK if key == AK else None


def test_documentation_example_get() -> None:
    # "Authenticating Requests (AWS Signature Version 2)", Example Object GET.
    string = string_to_sign_v2(
        method="GET",
        resource="/awsexamplebucket1/photos/puppy.jpg",
        query=(),
        headers={},
        date="Tue, 27 Mar 2007 19:36:42 +0000",
    )
    assert string == "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
    ctx = authenticate_v2(
        method="GET",
        resource="/awsexamplebucket1/photos/puppy.jpg",
        query=(),
        headers={"date": "Tue, 27 Mar 2007 19:36:42 +0000", "authorization": f"AWS {AK}:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="},
        lookup_secret=_lookup,
        now=datetime(2007, 3, 27, 19, 40, tzinfo=UTC),
    )
    assert ctx.access_key == AK
    assert not ctx.presigned


def test_sub_resources_and_amz_headers_are_signed() -> None:
    string = string_to_sign_v2(
        method="PUT",
        resource="/b/k",
        query=(("acl", ""), ("prefix", "ignored"), ("versionId", "3")),
        headers={"x-amz-meta-b": " 2 ", "x-amz-acl": "private", "content-type": "text/plain", "content-md5": "m"},
        date="D",
    )
    assert string == "PUT\nm\ntext/plain\nD\nx-amz-acl:private\nx-amz-meta-b:2\n/b/k?acl&versionId=3"


def _from_botocore(request: AWSRequest) -> tuple[str, bytes, dict[str, str], list[tuple[str, str]]]:
    url = request.url
    path_and_query = url.split("127.0.0.1:9000", 1)[1]
    raw_path, _, qs = path_and_query.partition("?")
    headers = [(k.encode(), v.encode()) for k, v in request.headers.items()] + [(b"host", b"127.0.0.1:9000")]
    parsed = parse_request(
        method=request.method,
        raw_path=raw_path.encode(),
        query_string=qs.encode(),
        raw_headers=headers,
        domains=(),
        max_header_bytes=16384,
    )
    return request.method, raw_path.encode(), parsed.headers, list(parsed.query)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "http://127.0.0.1:9000/bucket/some%20key%2Bplus"),
        ("PUT", "http://127.0.0.1:9000/bucket/dir/file?acl"),
        ("GET", "http://127.0.0.1:9000/bucket/k?response-content-type=text%2Fplain"),
    ],
)
def test_botocore_header_signatures_verify(method: str, url: str) -> None:
    request = AWSRequest(method=method, url=url, headers={"x-amz-meta-color": "blue", "Content-Type": "a/b"})
    HmacV1Auth(Credentials(AK, SK)).add_auth(request)
    method, raw_path, headers, query = _from_botocore(request)
    ctx = authenticate_v2(
        method=method,
        resource=raw_path.decode(),
        query=query,
        headers=headers,
        lookup_secret=_lookup,
        now=datetime.now(UTC),
    )
    assert ctx.access_key == AK
    headers["x-amz-meta-color"] = "red"
    with pytest.raises(SignatureDoesNotMatch):
        authenticate_v2(
            method=method,
            resource=raw_path.decode(),
            query=query,
            headers=headers,
            lookup_secret=_lookup,
            now=datetime.now(UTC),
        )


def test_botocore_presigned_url_verifies_and_expires() -> None:
    request = AWSRequest(method="GET", url="http://127.0.0.1:9000/bucket/photo.jpg")
    HmacV1QueryAuth(Credentials(AK, SK), expires=60).add_auth(request)
    method, raw_path, headers, query = _from_botocore(request)
    assert is_v2(query, headers)
    kwargs = {"method": method, "resource": raw_path.decode(), "query": query, "headers": headers}
    ctx = authenticate_v2(**kwargs, lookup_secret=_lookup, now=datetime.now(UTC))  # type: ignore[arg-type]
    assert ctx.presigned
    with pytest.raises(ExpiredPresignedRequest):
        authenticate_v2(**kwargs, lookup_secret=_lookup, now=datetime(2100, 1, 1, tzinfo=UTC))  # type: ignore[arg-type]
    with pytest.raises(InvalidAccessKeyId):
        authenticate_v2(**kwargs, lookup_secret=lambda _: None, now=datetime.now(UTC))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "query", "error"),
    [
        ({"authorization": "AWS nocolon"}, (), AccessDenied),
        ({"authorization": f"AWS {AK}:sig"}, (), AccessDenied),  # no date
        ({"authorization": f"AWS {AK}:sig", "date": "Tue, 27 Mar 2007 19:36:42 +0000"}, (), RequestTimeTooSkewed),
        ({}, (("AWSAccessKeyId", AK), ("Signature", "x")), AccessDenied),
        ({}, (("AWSAccessKeyId", AK), ("Signature", "x"), ("Expires", "soon")), InvalidArgument),
    ],
)
def test_malformed_v2(headers: dict[str, str], query: tuple[tuple[str, str], ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        authenticate_v2(
            method="GET", resource="/b/k", query=query, headers=headers, lookup_secret=_lookup, now=datetime.now(UTC)
        )


def test_presigned_expires_is_capped_by_config() -> None:
    now = datetime.now(UTC)
    request = AWSRequest(method="GET", url="http://127.0.0.1:9000/b/k")
    HmacV1QueryAuth(Credentials(AK, SK), expires=7200).add_auth(request)
    method, raw_path, headers, query = _from_botocore(request)

    def check(cap: int) -> None:
        authenticate_v2(
            method=method,
            resource=raw_path.decode(),
            query=query,
            headers=headers,
            lookup_secret=_lookup,
            now=now,
            max_presign_expiry_seconds=cap,
        )

    check(7300)
    with pytest.raises(AccessDenied, match=r"auth\.max_presign_expiry_seconds"):
        check(3600)
