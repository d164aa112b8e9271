"""POST policy documents: decoding, expiration, SigV4 signature, conditions and the size-checked file body."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from appliance.api.s3.error_map import s3_error_for
from appliance.api.s3.post_policy import (
    CheckedFileBody,
    InvalidPolicyDocument,
    LengthRange,
    MalformedPOSTRequest,
    check_conditions,
    check_expiration,
    parse_policy,
    verify_signature,
)
from appliance.api.s3.sigv4 import derive_signing_key, sign_string
from appliance.errors import (
    AccessDenied,
    EntityTooLarge,
    EntityTooSmall,
    InvalidAccessKeyId,
    InvalidArgument,
    SignatureDoesNotMatch,
)

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def encode(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def signed_form(document: dict[str, Any], **extra: str) -> dict[str, str]:
    policy = encode(document)
    fields = {
        "policy": policy,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{AK}/20260102/us-east-1/s3/aws4_request",
        "x-amz-date": "20260102T115900Z",
    }
    fields["x-amz-signature"] = sign_string(derive_signing_key(SK, "20260102", "us-east-1"), policy)
    fields.update(extra)
    return fields


def lookup(access_key: str) -> str | None:
    return SK if access_key == AK else None


BASE = {
    "expiration": "2026-01-02T13:00:00.000Z",
    "conditions": [
        {"bucket": "photos"},
        ["starts-with", "$key", "user/eric/"],
        {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
        {"x-amz-credential": f"{AK}/20260102/us-east-1/s3/aws4_request"},
        {"x-amz-date": "20260102T115900Z"},
    ],
}


def test_aws_example_signature() -> None:
    # The worked example of the AWS guide "Example: Browser-Based Upload using HTTP POST (AWS Signature Version 4)".
    policy = (
        "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJz"
        "aWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJw"
        "dWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6"
        "b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2Uv"
        "Il0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRp"
        "b24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRl"
        "bnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXot"
        "YWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
    )
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert (
        sign_string(derive_signing_key(secret, "20151229", "us-east-1"), policy)
        == "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
    )
    fields = {
        "policy": policy,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
        "x-amz-date": "20151229T000000Z",
        "x-amz-signature": "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e",
    }
    assert verify_signature(fields, lambda ak: secret) == "AKIAIOSFODNN7EXAMPLE"
    parsed = parse_policy(policy)
    assert parsed.expiration == datetime(2015, 12, 30, 12, tzinfo=UTC)
    form = dict(fields)
    form.update(
        {
            "key": "user/user1/${filename}",
            "acl": "public-read",
            "success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
            "content-type": "image/jpeg",
            "x-amz-meta-uuid": "14365123651274",
            "x-amz-server-side-encryption": "AES256",
            "x-amz-meta-tag": "",
        }
    )
    assert check_conditions(parsed, form, bucket="sigv4examplebucket") is None
    with pytest.raises(AccessDenied, match="Policy Condition failed"):
        check_conditions(parsed, form, bucket="otherbucket")


def test_signature_checks() -> None:
    fields = signed_form(BASE)
    assert verify_signature(fields, lookup) == AK
    bad = dict(fields, **{"x-amz-signature": "0" * 64})
    with pytest.raises(SignatureDoesNotMatch):
        verify_signature(bad, lookup)
    with pytest.raises(SignatureDoesNotMatch):
        verify_signature(dict(fields, **{"x-amz-signature": fields["x-amz-signature"].upper()}), lookup)
    tampered = dict(fields, policy=encode({**BASE, "expiration": "2030-01-01T00:00:00Z"}))
    with pytest.raises(SignatureDoesNotMatch):
        verify_signature(tampered, lookup)
    with pytest.raises(InvalidAccessKeyId):
        verify_signature(dict(fields, **{"x-amz-credential": "NOPE/20260102/us-east-1/s3/aws4_request"}), lookup)


@pytest.mark.parametrize(
    "change",
    [
        {"x-amz-algorithm": "AWS4-HMAC-SHA1"},
        {"x-amz-credential": f"{AK}/20260102/us-east-1/ec2/aws4_request"},
        {"x-amz-credential": f"{AK}/20260102/us-east-1/s3"},
        {"x-amz-date": "20260103T000000Z"},
        {"x-amz-date": "2026-01-02"},
    ],
)
def test_malformed_signing_fields(change: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        verify_signature({**signed_form(BASE), **change}, lookup)


def test_missing_signing_fields() -> None:
    fields = signed_form(BASE)
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature"):
        with pytest.raises(InvalidArgument):
            verify_signature({k: v for k, v in fields.items() if k != name}, lookup)
    with pytest.raises(AccessDenied):
        verify_signature({"key": "k"}, lookup)


def test_expiration() -> None:
    policy = parse_policy(encode(BASE))
    check_expiration(policy, NOW)
    with pytest.raises(AccessDenied, match="Policy expired"):
        check_expiration(policy, datetime(2026, 1, 2, 13, 0, tzinfo=UTC))
    assert parse_policy(encode({**BASE, "expiration": "2026-01-02T13:00:00"})).expiration == policy.expiration


@pytest.mark.parametrize(
    "encoded",
    [
        "not base64!",
        base64.b64encode(b"not json").decode(),
        encode({"conditions": []}),
        encode({"expiration": "soon", "conditions": []}),
        encode({"expiration": "2026-01-02T13:00:00Z"}),
        encode({"expiration": "2026-01-02T13:00:00Z", "conditions": [["ends-with", "$key", "x"]]}),
        encode({"expiration": "2026-01-02T13:00:00Z", "conditions": [["eq", "key", "x"]]}),
        encode({"expiration": "2026-01-02T13:00:00Z", "conditions": [{"a": "1", "b": "2"}]}),
        encode({"expiration": "2026-01-02T13:00:00Z", "conditions": [["content-length-range", 10, 1]]}),
        encode({"expiration": "2026-01-02T13:00:00Z", "conditions": [["content-length-range", -1, 1]]}),
        encode({"expiration": "2026-01-02T13:00:00Z", "conditions": [["eq", "$key", ["x"]]]}),
        base64.b64encode(b"[1, 2]").decode(),
    ],
)
def test_invalid_policy_documents(encoded: str) -> None:
    with pytest.raises(InvalidPolicyDocument):
        parse_policy(encoded)
    assert s3_error_for(InvalidPolicyDocument()) == ("InvalidPolicyDocument", 400)


def form_for(**extra: str) -> dict[str, str]:
    return signed_form(BASE, **{"key": "user/eric/photo.jpg", **extra})


def test_conditions_hold() -> None:
    policy = parse_policy(encode(BASE))
    assert check_conditions(policy, form_for(), bucket="photos") is None
    # Fields a policy need not name.
    assert check_conditions(policy, form_for(**{"x-ignore-foo": "1", "file": ""}), bucket="photos") is None


def test_condition_failures() -> None:
    policy = parse_policy(encode(BASE))
    with pytest.raises(AccessDenied, match=r'\["eq", "\$bucket", "photos"\]'):
        check_conditions(policy, form_for(), bucket="other")
    with pytest.raises(AccessDenied, match="starts-with"):
        check_conditions(policy, form_for(key="user/bob/x"), bucket="photos")
    with pytest.raises(AccessDenied, match="Extra input fields: x-amz-meta-a"):
        check_conditions(policy, form_for(**{"x-amz-meta-a": "1"}), bucket="photos")
    missing = {k: v for k, v in form_for().items() if k != "key"}
    with pytest.raises(AccessDenied):
        check_conditions(policy, missing, bucket="photos")


def test_filename_alternative_and_case_insensitive_names() -> None:
    document = {
        **BASE,
        "conditions": [*BASE["conditions"], {"Key": "user/eric/cat.png"}, ["eq", "$Content-Type", "image/png"]],
    }
    policy = parse_policy(encode(document))
    fields = form_for(key="user/eric/${filename}", **{"content-type": "image/png"})
    assert check_conditions(policy, fields, bucket="photos", alternatives={"key": "user/eric/cat.png"}) is None
    with pytest.raises(AccessDenied):
        check_conditions(policy, fields, bucket="photos", alternatives={"key": "user/eric/dog.png"})


def test_content_type_list_and_empty_prefix() -> None:
    document = {
        **BASE,
        "conditions": [
            *BASE["conditions"],
            ["starts-with", "$content-type", "image/"],
            ["starts-with", "$x-amz-meta-tag", ""],
        ],
    }
    policy = parse_policy(encode(document))
    ok = form_for(**{"content-type": "image/jpeg, image/png", "x-amz-meta-tag": "anything"})
    assert check_conditions(policy, ok, bucket="photos") is None
    with pytest.raises(AccessDenied):
        check_conditions(policy, form_for(**{"content-type": "image/jpeg,text/html"}), bucket="photos")


def test_content_length_ranges_intersect() -> None:
    document = {
        **BASE,
        "conditions": [*BASE["conditions"], ["content-length-range", 1, 100], ["content-length-range", "10", 1000]],
    }
    assert check_conditions(parse_policy(encode(document)), form_for(), bucket="photos") == LengthRange(10, 100)
    document = {
        **BASE,
        "conditions": [*BASE["conditions"], ["content-length-range", 1, 5], ["content-length-range", 10, 20]],
    }
    with pytest.raises(AccessDenied):
        check_conditions(parse_policy(encode(document)), form_for(), bucket="photos")


async def stream(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def drain(body: CheckedFileBody) -> bytes:
    return b"".join([p async for p in body])


async def test_checked_body_counts_and_hashes() -> None:
    body = CheckedFileBody(stream(b"abc", b"def"), allowed=LengthRange(1, 10), max_size=100)
    assert await drain(body) == b"abcdef"
    assert (body.size, body.md5_hex, body.checksums) == (6, hashlib.md5(b"abcdef").hexdigest(), {})


async def test_checked_body_too_large_raises_before_yielding_the_excess() -> None:
    body = CheckedFileBody(stream(b"abc", b"defgh", b"ij"), allowed=LengthRange(0, 5), max_size=100)
    got = []
    with pytest.raises(EntityTooLarge):
        async for piece in body:
            got.append(piece)
    assert got == [b"abc"]
    with pytest.raises(EntityTooLarge):
        await drain(CheckedFileBody(stream(b"x" * 11), allowed=None, max_size=10))


async def test_checked_body_too_small_raises_before_ending() -> None:
    with pytest.raises(EntityTooSmall):
        await drain(CheckedFileBody(stream(b"abc"), allowed=LengthRange(4, 10), max_size=100))


async def test_checked_body_propagates_parser_errors() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise MalformedPOSTRequest()

    with pytest.raises(MalformedPOSTRequest):
        await drain(CheckedFileBody(broken(), allowed=None, max_size=100))


def test_error_codes() -> None:
    assert s3_error_for(MalformedPOSTRequest()) == ("MalformedPOSTRequest", 400)


# --------------------------------------------------------------------------- SigV2 forms, region


def v2_form(document: dict[str, Any], secret: str = SK, **extra: str) -> dict[str, str]:
    import hmac as _hmac

    policy = encode(document)
    signature = base64.b64encode(_hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"awsaccesskeyid": AK, "policy": policy, "signature": signature, **extra}


V2_DOC = {"expiration": "2026-01-02T13:00:00Z", "conditions": [{"bucket": "photos"}, ["starts-with", "$key", ""]]}


def test_v2_form_signature() -> None:
    fields = v2_form(V2_DOC, key="a.txt")
    assert verify_signature(fields, lookup) == AK
    # The signing fields need no condition; every other field does.
    assert check_conditions(parse_policy(fields["policy"]), fields, bucket="photos") is None
    with pytest.raises(SignatureDoesNotMatch):
        verify_signature(v2_form(V2_DOC, secret="other"), lookup)
    with pytest.raises(SignatureDoesNotMatch):
        verify_signature(dict(v2_form(V2_DOC), signature="!!not base64"), lookup)
    with pytest.raises(InvalidAccessKeyId):
        verify_signature(dict(v2_form(V2_DOC), awsaccesskeyid="NOPE"), lookup)
    with pytest.raises(InvalidArgument, match="must contain a field named 'signature'"):
        verify_signature({"awsaccesskeyid": AK, "policy": encode(V2_DOC)}, lookup)
    with pytest.raises(InvalidArgument, match="must contain a field named 'AWSAccessKeyId'"):
        verify_signature({"signature": "x", "policy": encode(V2_DOC)}, lookup)


def test_v4_form_credential_names_the_endpoint_region() -> None:
    fields = signed_form(BASE)
    assert verify_signature(fields, lookup, region="us-east-1") == AK
    with pytest.raises(InvalidArgument, match="the region 'us-east-1' is wrong; expecting 'eu-west-1'"):
        verify_signature(fields, lookup, region="eu-west-1")
    with pytest.raises(InvalidArgument, match='incorrect terminal "aws5_request"'):
        verify_signature(
            dict(fields, **{"x-amz-credential": f"{AK}/20260102/us-east-1/s3/aws5_request"}), lookup, region=None
        )


def test_condition_field_names_are_case_insensitive() -> None:
    doc = {"expiration": "2026-01-02T13:00:00Z", "conditions": [["EQ", "$Content-Type", "text/plain"], {"KEY": "k"}]}
    fields = v2_form(doc, key="k", **{"content-type": "text/plain"})
    assert check_conditions(parse_policy(fields["policy"]), fields, bucket="b") is None
