"""Request parsing: path-style and virtual-hosted addressing, raw query, header limits (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.api.s3.request import S3Request, parse_query, parse_request
from appliance.errors import InvalidArgument, InvalidURI, RequestHeaderSectionTooLarge


def _parse(
    path: bytes, *, host: str = "127.0.0.1:9000", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> S3Request:
    return parse_request(
        method="get",
        raw_path=path,
        query_string=query,
        raw_headers=[(b"Host", host.encode()), *(headers or [])],
        domains=("localhost", "s3.example.lan"),
        max_header_bytes=1024,
    )


@pytest.mark.parametrize(
    ("path", "bucket", "key"),
    [
        (b"/", None, None),
        (b"/bucket", "bucket", None),
        (b"/bucket/", "bucket", None),
        (b"/bucket/key", "bucket", "key"),
        (b"/bucket//double", "bucket", "/double"),
        (b"/bucket/dir/", "bucket", "dir/"),
        (b"/bucket/a%20b+c", "bucket", "a b+c"),
        (b"/bucket/%E2%9C%93", "bucket", "\u2713"),
        (b"/bucket/a%2Fb", "bucket", "a/b"),
    ],
)
def test_path_style(path: bytes, bucket: str | None, key: str | None) -> None:
    request = _parse(path)
    assert (request.bucket, request.key, request.method) == (bucket, key, "GET")
    assert not request.virtual_host


@pytest.mark.parametrize(
    ("host", "path", "bucket", "key"),
    [
        ("photos.localhost:9000", b"/", "photos", None),
        ("photos.localhost", b"/a/b", "photos", "a/b"),
        ("Photos.S3.Example.Lan:9000", b"//x", "photos", "/x"),
        ("my.dotted.bucket.s3.example.lan", b"/k", "my.dotted.bucket", "k"),
    ],
)
def test_virtual_hosted(host: str, path: bytes, bucket: str, key: str | None) -> None:
    request = _parse(path, host=host)
    assert (request.bucket, request.key, request.virtual_host) == (bucket, key, True)


def test_domain_itself_is_path_style() -> None:
    request = _parse(b"/bucket/key", host="localhost:9000")
    assert (request.bucket, request.key, request.virtual_host) == ("bucket", "key", False)


def test_invalid_utf8_key() -> None:
    with pytest.raises(InvalidURI):
        _parse(b"/bucket/%FF%FE")


def test_path_must_be_absolute() -> None:
    with pytest.raises(InvalidURI):
        _parse(b"http://example/bucket")


def test_query_keeps_plus_and_order() -> None:
    assert parse_query(b"prefix=a+b&delimiter=%2F&empty=&flag&=x&&") == (
        ("prefix", "a+b"),
        ("delimiter", "/"),
        ("empty", ""),
        ("flag", ""),
        ("", "x"),
    )


def test_request_helpers() -> None:
    request = _parse(b"/b", query=b"list-type=2&prefix=p&prefix=q")
    assert request.arg("prefix") == "p"
    assert request.arg("missing") is None
    assert request.has_arg("list-type")
    assert request.header("host") == "127.0.0.1:9000"


def test_repeated_headers_are_joined() -> None:
    request = _parse(b"/", headers=[(b"X-Amz-Meta-A", b"1"), (b"x-amz-meta-a", b"2")])
    assert request.headers["x-amz-meta-a"] == "1,2"


def test_header_values_keep_wire_bytes() -> None:
    request = _parse(b"/", headers=[(b"x-amz-meta-name", "grüße".encode()), (b"x-amz-meta-raw", b"\xff")])
    assert request.headers["x-amz-meta-name"] == "grüße"
    assert request.headers["x-amz-meta-raw"].encode("utf-8", "surrogateescape") == b"\xff"


def test_header_section_limit() -> None:
    with pytest.raises(RequestHeaderSectionTooLarge):
        _parse(b"/", headers=[(b"x-big", b"v" * 2000)])


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"99999999999999999999"])
def test_bad_content_length(value: bytes) -> None:
    with pytest.raises(InvalidArgument):
        _parse(b"/b/k", headers=[(b"content-length", value)])


@given(st.binary(max_size=200))
def test_parse_never_crashes_on_hostile_paths(tail: bytes) -> None:
    try:
        request = _parse(b"/" + tail.replace(b"?", b""))
    except InvalidURI:
        return
    assert request.path.startswith("/")
