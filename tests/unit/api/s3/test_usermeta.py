"""User metadata as S3 reads, counts and returns it (RFC 2047), against values recorded from AWS."""

from __future__ import annotations

import string
from email.header import decode_header

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.api.s3.usermeta import (
    MAX_USER_META_BYTES,
    decode_header_value,
    form_user_meta,
    user_meta,
    wire_value,
)
from appliance.errors import MetadataTooLarge


def wire_bytes(raw: bytes) -> str:
    """What request.py makes of a header's wire bytes."""
    return raw.decode("utf-8", "surrogateescape")


# (value sent RFC 2047-encoded by the client, what AWS returned) — recorded against AWS (LocalStack's
# test_user_metadata_rfc2047_encoded snapshot).
AWS_RECORDED = [
    ("=?UTF-8?Q?actually-ascii?=", "actually-ascii"),
    ("=?UTF-8?B?YWJj?=", "abc"),
    (
        "=?utf-8?b?" + "dGVzdF/igJRfZmlsZSVFMiU4MCU5NF/DqV8yPy5wZGY=" + "?=",
        "=?UTF-8?Q?test=5F=E2=80=94=5Ffile%E2%80%94=5F=C3=A9=5F2=3F.pdf?=",
    ),
    ("=?UTF-8?Q?=C3=84M=C3=84Z=C3=95=C3=91_S3?=", "=?UTF-8?Q?=C3=84M=C3=84Z=C3=95=C3=91_S3?="),
    ("=?UTF-8?B?AAECAw==?=", "=?UTF-8?B?AAECAw==?="),
    ("=?UTF-8?B?77+977+977+977+977+977+977+9?=", "=?UTF-8?B?77+977+977+977+977+977+977+9?="),
]


@pytest.mark.parametrize(("sent", "returned"), AWS_RECORDED)
def test_encoded_values_as_aws_returns_them(sent: str, returned: str) -> None:
    assert wire_value(decode_header_value(sent)) == returned


def test_ascii_is_returned_as_is() -> None:
    safe = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ abc 123"
    assert wire_value(decode_header_value(safe)) == safe


def test_raw_bytes_are_read_as_iso_8859_1_as_aws_does() -> None:
    # AWS returns UTF-8 "ö" sent raw as "Ã¶" (each byte one ISO-8859-1 character), RFC 2047-encoded.
    stored = decode_header_value(wire_bytes("ö".encode()))
    assert stored == "Ã¶"
    assert wire_value(stored) == "=?UTF-8?Q?=C3=83=C2=B6?="
    # A lone ISO-8859-1 byte (what http.client sends for "é") is that character.
    assert decode_header_value(wire_bytes(b"Hello World\xe9")) == "Hello World\xe9"


def test_bytes_0x80_to_0x9f_are_controls_so_b_encoded() -> None:
    stored = decode_header_value(wire_bytes("你".encode()))  # e4 bd a0: 0xa0 is NBSP, 0xbd ½
    assert wire_value(stored).startswith("=?UTF-8?Q?")
    stored = decode_header_value(wire_bytes("ö你好我的朋友".encode()))  # has 0x8b, 0x91...
    assert wire_value(stored).startswith("=?UTF-8?B?")


@pytest.mark.parametrize("bad", ["=?UTF-8?B?=GGG?=", "=?no-such-charset?Q?abc?=", "=?UTF-8?X?abc?=", "=?", "=?="])
def test_undecodable_words_are_kept_as_sent(bad: str) -> None:
    assert decode_header_value(bad) == bad


def test_post_fields_are_utf8_and_not_rfc2047_decoded() -> None:
    meta = dict(form_user_meta({"x-amz-meta-b": "=?UTF-8?B?YWJj?=", "x-amz-meta-n": "ÄMÄZÕÑ S3", "key": "k"}))
    assert meta == {"b": "=?UTF-8?B?YWJj?=", "n": "ÄMÄZÕÑ S3"}
    assert wire_value(meta["n"]) == "=?UTF-8?Q?=C3=84M=C3=84Z=C3=95=C3=91_S3?="


def test_cid_header_is_not_user_metadata() -> None:
    assert user_meta({"x-amz-meta-cid": "bafy", "x-amz-meta-a": "1", "content-type": "x"}) == (("a", "1"),)


def test_limit_counts_utf8_bytes_of_decoded_values() -> None:
    # "é" is 2 UTF-8 bytes; its encoded form is 16 characters. 1 + 1023 * 2 + ... counted decoded.
    value = "é" * 1023  # 2046 bytes + name "a" = 2047
    encoded = "=?UTF-8?B?" + __import__("base64").b64encode(value.encode()).decode() + "?="
    assert len(encoded) > MAX_USER_META_BYTES
    assert dict(user_meta({"x-amz-meta-a": encoded})) == {"a": value}
    assert user_meta({"x-amz-meta-ab": "x" * (MAX_USER_META_BYTES - 2)})  # exactly 2048
    with pytest.raises(MetadataTooLarge):
        user_meta({"x-amz-meta-ab": "x" * (MAX_USER_META_BYTES - 1)})
    with pytest.raises(MetadataTooLarge):
        user_meta({"x-amz-meta-a": encoded, "x-amz-meta-b": "é"})


@given(st.text(max_size=300))
def test_any_stored_value_goes_out_as_ascii_and_decodes_back(value: str) -> None:
    out = wire_value(value)
    assert out.isascii()
    out.encode("latin-1")
    if out != value:
        ((raw, charset),) = decode_header(out)
        assert isinstance(raw, bytes)
        assert raw.decode(charset or "ascii", "surrogateescape") == value


@given(st.binary(max_size=300))
def test_any_header_bytes_decode_without_error(raw: bytes) -> None:
    stored = decode_header_value(wire_bytes(raw))
    assert wire_value(stored).isascii()


@given(st.text(alphabet=string.printable, max_size=80))
def test_any_ascii_with_encoded_words_never_raises(text: str) -> None:
    wire_value(decode_header_value("=?UTF-8?Q?" + text + "?= =?utf-8?b?" + text + "?="))
