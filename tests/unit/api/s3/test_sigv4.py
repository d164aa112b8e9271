"""SigV4 authentication: AWS's published vectors, botocore-signed requests, tampering and malformed input."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.api.s3 import sigv4
from appliance.api.s3.error_map import s3_error_for
from appliance.api.s3.sigv4 import (
    AuthContext,
    authenticate,
    canonical_request,
    derive_signing_key,
    sign_string,
    string_to_sign,
)
from appliance.errors import (
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    ExpiredPresignedRequest,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestError,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "sigv4_test_suite.json").read_text("utf-8"))

# The S3 API reference examples (sig-v4-header-based-auth, sigv4-query-string-auth, sigv4-streaming).
DOC_AK = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_NOW = datetime(2013, 5, 24, tzinfo=UTC)
DOC_SCOPE = "20130524/us-east-1/s3/aws4_request"

AK = "AKIAS3IPFSTEST"
SECRET = "s3ipfs/secret+key=with/odd chars"
HOST = "127.0.0.1:9000"


def doc_lookup(access_key: str) -> str | None:
    return DOC_SECRET if access_key == DOC_AK else None


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == AK else None


# --------------------------------------------------------------------------- AWS test suite


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_aws_sigv4_test_suite(case: dict[str, object]) -> None:
    headers = case["headers"]
    assert isinstance(headers, dict)
    body = case["body"]
    assert isinstance(body, str)
    creq = canonical_request(
        method=str(case["method"]),
        path=str(case["path"]),
        query=[(k, v) for k, v in case["query"]],  # type: ignore[attr-defined]
        headers=headers,
        signed_headers=case["signed_headers"],  # type: ignore[arg-type]
        payload_hash=hashlib.sha256(body.encode()).hexdigest(),
    )
    if "creq" in case:
        assert creq == case["creq"]
    sts = string_to_sign(VECTORS["amz_date"], VECTORS["scope"], creq)
    if "sts" in case:
        assert sts == case["sts"]
    key = derive_signing_key(VECTORS["secret"], "20150830", VECTORS["region"], VECTORS["service"])
    assert sign_string(key, sts) == case["signature"]


# --------------------------------------------------------------------------- S3 documentation examples


def test_s3_doc_get_object_with_range() -> None:
    headers = {
        "host": "examplebucket.s3.amazonaws.com",
        "range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={DOC_AK}/{DOC_SCOPE},"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        ),
    }
    ctx = authenticate(method="GET", path="/test.txt", query=[], headers=headers, lookup_secret=doc_lookup, now=DOC_NOW)
    assert ctx.access_key == DOC_AK
    assert ctx.region == "us-east-1"
    assert ctx.scope == DOC_SCOPE
    assert ctx.amz_date == "20130524T000000Z"
    assert ctx.content_sha256 == sigv4.EMPTY_SHA256
    assert ctx.seed_signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    assert ctx.signing_key == derive_signing_key(DOC_SECRET, "20130524", "us-east-1")
    assert not ctx.presigned
    with pytest.raises(SignatureDoesNotMatch):
        authenticate(
            method="GET",
            path="/test.txt",
            query=[],
            headers={**headers, "range": "bytes=0-10"},
            lookup_secret=doc_lookup,
            now=DOC_NOW,
        )


DOC_PRESIGNED_QUERY = [
    ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
    ("X-Amz-Credential", f"{DOC_AK}/{DOC_SCOPE}"),
    ("X-Amz-Date", "20130524T000000Z"),
    ("X-Amz-Expires", "86400"),
    ("X-Amz-SignedHeaders", "host"),
    ("X-Amz-Signature", "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
]


def presigned_doc(query: list[tuple[str, str]], now: datetime = DOC_NOW) -> AuthContext:
    return authenticate(
        method="GET",
        path="/test.txt",
        query=query,
        headers={"host": "examplebucket.s3.amazonaws.com"},
        lookup_secret=doc_lookup,
        now=now,
    )


def test_s3_doc_presigned_url() -> None:
    ctx = presigned_doc(DOC_PRESIGNED_QUERY)
    assert ctx.presigned
    assert ctx.content_sha256 == "UNSIGNED-PAYLOAD"
    assert ctx.access_key == DOC_AK
    # Still valid one second before expiry, expired one second after.
    presigned_doc(DOC_PRESIGNED_QUERY, DOC_NOW + timedelta(seconds=86400))
    with pytest.raises(ExpiredPresignedRequest):
        presigned_doc(DOC_PRESIGNED_QUERY, DOC_NOW + timedelta(seconds=86401))
    with pytest.raises(RequestTimeTooSkewed):
        presigned_doc(DOC_PRESIGNED_QUERY, DOC_NOW - timedelta(hours=1))


def replace_param(query: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in query if k != name]
    return out if value is None else [*out, (name, value)]


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("X-Amz-Expires", "abc", AuthorizationQueryParametersError),
        ("X-Amz-Expires", "0", ExpiredPresignedRequest),  # S3: valid, but expired at once
        ("X-Amz-Expires", "-5", AuthorizationQueryParametersError),
        ("X-Amz-Expires", "604801", AuthorizationQueryParametersError),
        ("X-Amz-Expires", None, AuthorizationQueryParametersError),
        ("X-Amz-Credential", None, AuthorizationQueryParametersError),
        ("X-Amz-Credential", f"{DOC_AK}/20130524/us-east-1/ec2/aws4_request", AuthorizationQueryParametersError),
        ("X-Amz-Credential", f"{DOC_AK}/20130525/us-east-1/s3/aws4_request", AuthorizationQueryParametersError),
        ("X-Amz-Credential", f"NOPE/{DOC_SCOPE}", InvalidAccessKeyId),
        ("X-Amz-Date", "2013-05-24", AuthorizationQueryParametersError),
        ("X-Amz-Date", None, AuthorizationQueryParametersError),
        ("X-Amz-SignedHeaders", "range", AuthorizationQueryParametersError),
        ("X-Amz-SignedHeaders", None, AuthorizationQueryParametersError),
        ("X-Amz-Signature", None, AuthorizationQueryParametersError),
        ("X-Amz-Signature", "zz", AuthorizationQueryParametersError),
        ("X-Amz-Signature", "0" * 64, SignatureDoesNotMatch),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA512", AuthorizationQueryParametersError),
        ("extra", "1", SignatureDoesNotMatch),
    ],
)
def test_presigned_failures(name: str, value: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        presigned_doc(replace_param(DOC_PRESIGNED_QUERY, name, value))


def test_presigned_repeated_parameter() -> None:
    with pytest.raises(AuthorizationQueryParametersError):
        presigned_doc([*DOC_PRESIGNED_QUERY, ("X-Amz-Expires", "10")])


def test_presigned_max_expiry_is_configurable() -> None:
    with pytest.raises(AuthorizationQueryParametersError):
        authenticate(
            method="GET",
            path="/test.txt",
            query=DOC_PRESIGNED_QUERY,
            headers={"host": "examplebucket.s3.amazonaws.com"},
            lookup_secret=doc_lookup,
            now=DOC_NOW,
            max_presign_expiry_seconds=3600,
        )


def test_s3_doc_streaming_seed_signature() -> None:
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={DOC_AK}/{DOC_SCOPE},SignedHeaders=content-encoding;content-length;host;"
            "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        ),
    }
    ctx = authenticate(
        method="PUT",
        path="/examplebucket/chunkObject.txt",
        query=[],
        headers=headers,
        lookup_secret=doc_lookup,
        now=DOC_NOW,
    )
    assert ctx.seed_signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    assert ctx.content_sha256 == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    # The first chunk signature of the same example, from the seed.
    chunk = b"a" * 65536
    sts = (
        f"AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n{DOC_SCOPE}\n{ctx.seed_signature}\n{sigv4.EMPTY_SHA256}\n"
        f"{hashlib.sha256(chunk).hexdigest()}"
    )
    assert sign_string(ctx.signing_key, sts) == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"


# --------------------------------------------------------------------------- botocore-signed requests


def split_query(raw: str) -> list[tuple[str, str]]:
    out = []
    for pair in raw.split("&") if raw else []:
        name, _, value = pair.partition("=")
        out.append((unquote(name), unquote(value)))
    return out


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def build_url(path: str, query: list[tuple[str, str]]) -> str:
    qs = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)
    return f"http://{HOST}{quote(path, safe='/~')}" + (f"?{qs}" if qs else "")


def botocore_sign(
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    presign: bool = False,
    region: str = "us-east-1",
    secret: str = SECRET,
) -> tuple[str, list[tuple[str, str]], dict[str, str]]:
    """Sign with botocore; return (decoded path, decoded query, lower-case headers) as the HTTP layer sees them."""
    request = AWSRequest(method=method, url=build_url(path, query or []), headers=headers or {}, data=body)
    creds = Credentials(AK, secret)
    if presign:
        S3SigV4QueryAuth(creds, "s3", region, expires=600).add_auth(request)
    else:
        S3SigV4Auth(creds, "s3", region).add_auth(request)
    parts = urlsplit(request.url)
    wire_headers = lower_headers(dict(request.headers.items()))
    wire_headers["host"] = parts.netloc
    return unquote(parts.path), split_query(parts.query), wire_headers


def auth(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    now: datetime | None = None,
) -> AuthContext:
    return authenticate(
        method=method,
        path=path,
        query=query,
        headers=headers,
        lookup_secret=lookup,
        now=now or datetime.now(UTC),
    )


ODD_KEYS = ["/bucket/a b+c//d/", "/bucket/ünï cødé/日本語.txt", "/bucket/%41%2F~!*'();:@&=+$,?#[]", "/bucket/"]


@pytest.mark.parametrize("path", ODD_KEYS)
def test_botocore_header_signed_put(path: str) -> None:
    body = b"hello world"
    p, q, h = botocore_sign("PUT", path, [], {"x-amz-meta-note": "a  b", "content-type": "text/plain"}, body)
    ctx = auth("PUT", p, q, h)
    assert ctx.content_sha256 == hashlib.sha256(body).hexdigest()
    assert ctx.access_key == AK
    assert not ctx.presigned


@pytest.mark.parametrize("path", ODD_KEYS)
def test_botocore_presigned_get(path: str) -> None:
    p, q, h = botocore_sign("GET", path, [("response-content-type", "text/plain; a=b")], presign=True)
    ctx = auth("GET", p, q, h)
    assert ctx.presigned
    assert ctx.content_sha256 == "UNSIGNED-PAYLOAD"


def test_botocore_region_is_taken_from_scope() -> None:
    p, q, h = botocore_sign("GET", "/b/k", [("list-type", "2"), ("prefix", "a/b c")], region="eu-central-7")
    assert auth("GET", p, q, h).region == "eu-central-7"


def test_botocore_query_without_value() -> None:
    p, q, h = botocore_sign("POST", "/b/k", [("uploads", "")])
    auth("POST", p, q, h)


@pytest.mark.parametrize(
    "tamper",
    ["method", "path", "query", "header", "body-hash", "secret"],
)
def test_botocore_tampering_is_rejected(tamper: str) -> None:
    body = b"payload"
    p, q, h = botocore_sign("PUT", "/b/key", [("partNumber", "1")], {"x-amz-meta-a": "1"}, body)
    method = "PUT"
    if tamper == "method":
        method = "POST"
    elif tamper == "path":
        p = "/b/key2"
    elif tamper == "query":
        q = [("partNumber", "2")]
    elif tamper == "header":
        h["x-amz-meta-a"] = "2"
    elif tamper == "body-hash":
        h["x-amz-content-sha256"] = hashlib.sha256(b"other").hexdigest()
    elif tamper == "secret":
        p, q, h = botocore_sign("PUT", "/b/key", [("partNumber", "1")], {"x-amz-meta-a": "1"}, body, secret="wrong")
    with pytest.raises(SignatureDoesNotMatch):
        auth(method, p, q, h)


def test_botocore_presigned_tampering_is_rejected() -> None:
    p, q, h = botocore_sign("GET", "/b/key", [("versionId", "1")], presign=True)
    with pytest.raises(SignatureDoesNotMatch):
        auth("GET", p, [(k, "2" if k == "versionId" else v) for k, v in q], h)
    with pytest.raises(SignatureDoesNotMatch):
        auth("GET", p, q, {**h, "host": "evil.example"})
    with pytest.raises(ExpiredPresignedRequest):
        auth("GET", p, q, h, now=datetime.now(UTC) + timedelta(seconds=700))


def test_time_skew() -> None:
    p, q, h = botocore_sign("GET", "/b/k")
    auth("GET", p, q, h, now=datetime.now(UTC) + timedelta(seconds=800))
    with pytest.raises(RequestTimeTooSkewed):
        auth("GET", p, q, h, now=datetime.now(UTC) + timedelta(seconds=1000))
    with pytest.raises(RequestTimeTooSkewed):
        auth("GET", p, q, h, now=datetime.now(UTC) - timedelta(seconds=1000))


def test_naive_now_is_utc() -> None:
    p, q, h = botocore_sign("GET", "/b/k")
    auth("GET", p, q, h, now=datetime.now(UTC).replace(tzinfo=None))


def test_date_header_fallback() -> None:
    p, q, h = botocore_sign("GET", "/b/k")
    when = datetime.strptime(h.pop("x-amz-date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    date = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    # Re-sign by hand with a Date header instead of x-amz-date.
    signed = ["date", "host", "x-amz-content-sha256"]
    headers = {"date": date, "host": h["host"], "x-amz-content-sha256": h["x-amz-content-sha256"]}
    creq = canonical_request(
        method="GET", path=p, query=q, headers=headers, signed_headers=signed, payload_hash=sigv4.EMPTY_SHA256
    )
    scope = f"{when:%Y%m%d}/us-east-1/s3/aws4_request"
    sig = sign_string(
        derive_signing_key(SECRET, f"{when:%Y%m%d}", "us-east-1"), string_to_sign(f"{when:%Y%m%dT%H%M%SZ}", scope, creq)
    )
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    assert auth("GET", p, q, headers).amz_date == f"{when:%Y%m%dT%H%M%SZ}"


# --------------------------------------------------------------------------- header parsing


def signed_headers() -> tuple[str, list[tuple[str, str]], dict[str, str]]:
    return botocore_sign("GET", "/b/k", [("a", "1")])


def test_authorization_header_tolerates_spacing_and_order() -> None:
    p, q, h = signed_headers()
    cred, signed, sig = (part.strip() for part in h["authorization"].split(" ", 1)[1].split(","))
    h["authorization"] = f"AWS4-HMAC-SHA256   {sig} ,{cred},   {signed}"
    auth("GET", p, q, h)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda a: "AWS AKIAS3IPFSTEST:c2lnbmF0dXJl", InvalidRequest),
        (lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), InvalidRequest),
        (lambda a: "Bearer abc", AuthorizationHeaderMalformed),
        (lambda a: "", AuthorizationHeaderMalformed),
        (lambda a: a.replace("Credential=", "Credentials="), AuthorizationHeaderMalformed),
        (lambda a: a.replace("SignedHeaders=", "Signed="), AuthorizationHeaderMalformed),
        (lambda a: a + ", Signature=" + "0" * 64, AuthorizationHeaderMalformed),
        (lambda a: a.replace("/s3/", "/ec2/"), AuthorizationHeaderMalformed),
        (lambda a: a.replace("aws4_request", "aws5_request"), AuthorizationHeaderMalformed),
        (lambda a: a.replace("Credential=", "Credential=x/"), AuthorizationHeaderMalformed),
        (lambda a: a.replace("SignedHeaders=host;", "SignedHeaders="), AuthorizationHeaderMalformed),
        (lambda a: a[:-4], AuthorizationHeaderMalformed),
        (lambda a: a[:-64] + a[-64:].upper(), AuthorizationHeaderMalformed),
        (lambda a: a.replace(f"Credential={AK}", "Credential=UNKNOWNKEY"), InvalidAccessKeyId),
        (lambda a: a[:-1] + ("0" if a[-1] != "0" else "1"), SignatureDoesNotMatch),
    ],
)
def test_authorization_header_errors(mutate: object, error: type[Exception]) -> None:
    p, q, h = signed_headers()
    h["authorization"] = mutate(h["authorization"])  # type: ignore[operator]
    with pytest.raises(error):
        auth("GET", p, q, h)


def test_credential_date_must_match_request_date() -> None:
    p, q, h = signed_headers()
    day = h["x-amz-date"][:8]
    other = (datetime.strptime(day, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    h["authorization"] = h["authorization"].replace(f"/{day}/", f"/{other}/")
    with pytest.raises(AuthorizationHeaderMalformed):
        auth("GET", p, q, h)


def test_missing_or_bad_date() -> None:
    p, q, h = signed_headers()
    with pytest.raises(AccessDenied):
        auth("GET", p, q, {k: v for k, v in h.items() if k != "x-amz-date"})
    with pytest.raises(AccessDenied):
        auth("GET", p, q, {**h, "x-amz-date": "yesterday"})


def test_missing_content_sha256() -> None:
    p, q, h = signed_headers()
    del h["x-amz-content-sha256"]
    with pytest.raises(InvalidRequest, match="x-amz-content-sha256"):
        auth("GET", p, q, h)


def test_bad_content_sha256_value() -> None:
    p, q, h = botocore_sign("GET", "/b/k", headers={"x-amz-content-sha256": "not-a-hash"})
    h["x-amz-content-sha256"] = "not-a-hash"
    with pytest.raises(InvalidArgument):
        auth("GET", p, q, h)


def test_unsigned_amz_header_is_denied() -> None:
    p, q, h = signed_headers()
    h["x-amz-meta-injected"] = "1"
    with pytest.raises(AccessDenied, match="x-amz-meta-injected"):
        auth("GET", p, q, h)


def test_unsigned_ordinary_header_is_fine() -> None:
    p, q, h = signed_headers()
    h["user-agent"] = "curl"
    auth("GET", p, q, h)


def test_no_credentials_is_access_denied() -> None:
    with pytest.raises(AccessDenied):
        auth("GET", "/b/k", [], {"host": HOST})


def test_v2_presigned_is_unsupported() -> None:
    with pytest.raises(InvalidRequest, match="AWS4-HMAC-SHA256"):
        auth("GET", "/b/k", [("AWSAccessKeyId", AK), ("Signature", "x"), ("Expires", "1")], {"host": HOST})


def test_both_mechanisms_is_invalid() -> None:
    p, q, h = botocore_sign("GET", "/b/k", presign=True)
    with pytest.raises(InvalidArgument):
        auth("GET", p, q, {**h, "authorization": "AWS4-HMAC-SHA256 Credential=x"})


def test_errors_never_leak_secrets_or_expected_signatures() -> None:
    p, q, h = signed_headers()
    good = h["authorization"][-64:]
    h["authorization"] = h["authorization"][:-64] + "0" * 64
    with pytest.raises(SignatureDoesNotMatch) as info:
        auth("GET", p, q, h)
    assert good not in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(auth("GET", *signed_headers()))


# --------------------------------------------------------------------------- properties

key_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=key_text,
    query=st.lists(st.tuples(key_text, st.text(max_size=20)), max_size=4, unique_by=lambda kv: kv[0]),
    presign=st.booleans(),
)
def test_property_random_keys_and_queries_round_trip(key: str, query: list[tuple[str, str]], presign: bool) -> None:
    query = [(k, v) for k, v in query if not k.lower().startswith("x-amz-")]
    p, q, h = botocore_sign("GET", "/bucket/" + key, query, presign=presign)
    assert p == "/bucket/" + key
    ctx = auth("GET", p, q, h)
    assert ctx.presigned is presign


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(max_size=300)
    | st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "AWS "]).flatmap(
        lambda prefix: st.text(max_size=200).map(lambda rest: prefix + rest)
    )
)
def test_property_garbage_authorization_only_raises_request_errors(value: str) -> None:
    headers = {
        "host": HOST,
        "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "x-amz-content-sha256": sigv4.EMPTY_SHA256,
        "authorization": value,
    }
    with pytest.raises(RequestError):
        auth("GET", "/b/k", [], headers)


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-SignedHeaders",
                "X-Amz-Signature",
            ]
        ),
        st.text(max_size=80),
    )
)
def test_property_garbage_presign_only_raises_request_errors(params: dict[str, str]) -> None:
    query = [("X-Amz-Algorithm", params.pop("X-Amz-Algorithm", "AWS4-HMAC-SHA256")), *params.items()]
    with pytest.raises(RequestError):
        auth("GET", "/b/k", query, {"host": HOST})


def test_public_api() -> None:
    assert set(sigv4.__all__) >= {
        "AuthContext",
        "authenticate",
        "canonical_request",
        "derive_signing_key",
        "sign_string",
        "string_to_sign",
    }


def test_non_ascii_digits_in_date_are_rejected() -> None:
    p, q, h = signed_headers()
    h["x-amz-date"] = "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in h["x-amz-date"])
    with pytest.raises(AccessDenied):
        auth("GET", p, q, h)


def test_presigned_with_signed_content_sha256_header() -> None:
    digest = hashlib.sha256(b"body").hexdigest()
    p, q, h = botocore_sign("PUT", "/b/k", headers={"x-amz-content-sha256": digest}, presign=True)
    assert "x-amz-content-sha256" in dict(q)["X-Amz-SignedHeaders"]
    assert auth("PUT", p, q, h).content_sha256 == digest


def test_presigned_unsigned_amz_header_is_denied() -> None:
    p, q, h = botocore_sign("PUT", "/b/k", presign=True)
    with pytest.raises(AccessDenied, match="x-amz-acl"):
        auth("PUT", p, q, {**h, "x-amz-acl": "public-read"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-date", "20131399T000000Z"),  # the right shape, not a date
        ("date", "not a date"),
    ],
)
def test_unparseable_dates(name: str, value: str) -> None:
    p, q, h = signed_headers()
    del h["x-amz-date"]
    h[name] = value
    with pytest.raises(AccessDenied):
        auth("GET", p, q, h)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.replace("/us-east-1/", "/us-east-1/x/"),
        lambda a: re.sub(r"/[0-9]{8}/", "/2013O524/", a, count=1),  # a letter O in the credential date
        lambda a: a.replace("SignedHeaders=host", "SignedHeaders=Host"),
        lambda a: a.split(", Signature=")[0],
    ],
)
def test_more_malformed_authorization(mutate: object) -> None:
    p, q, h = signed_headers()
    h["authorization"] = mutate(h["authorization"])  # type: ignore[operator]
    with pytest.raises(AuthorizationHeaderMalformed):
        auth("GET", p, q, h)


# --------------------------------------------------------------------------- scope region/service, X-Amz-Expires


def auth_region(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str], **kw: Any) -> Any:
    return authenticate(
        method=method, path=path, query=query, headers=headers, lookup_secret=lookup, now=datetime.now(UTC), **kw
    )


def test_scope_naming_another_region_is_refused_with_s3s_message() -> None:
    p, q, h = botocore_sign("GET", "/b/k", region="eu-west-1")
    with pytest.raises(AuthorizationHeaderMalformed) as exc:
        auth_region("GET", p, q, h, region="us-east-1")
    assert exc.value.message == (
        "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"
    )
    assert s3_error_for(exc.value) == ("AuthorizationHeaderMalformed", 400)
    p, q, h = botocore_sign("GET", "/b/k", region="eu-west-1", presign=True)
    with pytest.raises(AuthorizationQueryParametersError) as qexc:
        auth_region("GET", p, q, h, region="us-east-1")
    assert qexc.value.message == (
        "Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'us-east-1'"
    )
    assert auth_region("GET", p, q, h, region="eu-west-1").region == "eu-west-1"


def test_scope_naming_another_service_is_refused() -> None:
    p, q, h = botocore_sign("GET", "/b/k")
    h["authorization"] = h["authorization"].replace("/s3/aws4_request", "/sqs/aws4_request")
    with pytest.raises(AuthorizationHeaderMalformed, match='incorrect service "sqs"'):
        auth_region("GET", p, q, h, region="us-east-1")
    p, q, h = botocore_sign("GET", "/b/k", presign=True)
    q = [(k, v.replace("/s3/", "/iam/") if k == "X-Amz-Credential" else v) for k, v in q]
    with pytest.raises(AuthorizationQueryParametersError, match='incorrect service "iam"'):
        auth_region("GET", p, q, h, region="us-east-1")


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("abc", "X-Amz-Expires should be a number"),
        ("", "X-Amz-Expires should be a number"),
        ("1.5", "X-Amz-Expires should be a number"),
        ("-", "X-Amz-Expires should be a number"),
        ("\uff11\uff12", "X-Amz-Expires should be a number"),  # full-width digits
        ("9" * 40, "X-Amz-Expires should be a number"),
        ("-5", "X-Amz-Expires must be non-negative"),
        ("604801", "must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800"),
        ("3601", "must be less than 3600 seconds on this endpoint"),
    ],
)
def test_out_of_range_expires(expires: str, message: str) -> None:
    p, q, h = botocore_sign("GET", "/b/k", presign=True)
    q = [(k, expires if k == "X-Amz-Expires" else v) for k, v in q]
    with pytest.raises(AuthorizationQueryParametersError) as exc:
        auth_region("GET", p, q, h, max_presign_expiry_seconds=3600)
    assert message in exc.value.message
    assert s3_error_for(exc.value) == ("AuthorizationQueryParametersError", 400)


@given(expires=st.text(max_size=20))
@settings(max_examples=200)
def test_any_expires_value_is_an_auth_error(expires: str) -> None:
    p, q, h = botocore_sign("GET", "/b/k", presign=True)
    q = [(k, expires if k == "X-Amz-Expires" else v) for k, v in q]
    try:
        auth_region("GET", p, q, h)
    except (AuthorizationQueryParametersError, ExpiredPresignedRequest, SignatureDoesNotMatch):
        pass
