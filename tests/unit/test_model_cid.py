"""model.Cid: parsing every text form we meet, base32 rendering, block verification, hostile text."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.model import DAG_PB, RAW, Cid, decode_varint, encode_varint

HELLO = b"hello world\n"
# `ipfs add --cid-version 1 --raw-leaves` of HELLO, as an independent tool prints it
HELLO_RAW = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


def test_of_block_matches_an_independent_tool() -> None:
    cid = Cid.of_block(HELLO, RAW)
    assert cid.text == HELLO_RAW == str(cid)
    assert cid.is_raw and cid.codec == RAW and cid.hash_code == 0x12
    assert cid.digest == hashlib.sha256(HELLO).digest()
    assert Cid.of_block(b"x").text.startswith("bafybei")


def test_parse_renders_every_form_as_base32() -> None:
    cid = Cid.parse(HELLO_RAW)
    assert Cid.parse(cid.text) == cid
    b58 = "z" + _b58(cid.raw)
    assert Cid.parse(b58) == cid
    v0 = _b58(cid.raw[2:])  # a bare sha2-256 multihash, as CIDv0 text (Qm…)
    assert v0.startswith("Qm")
    upgraded = Cid.parse(v0)
    assert upgraded.codec == DAG_PB and upgraded.digest == cid.digest
    assert Cid.normalise(v0) == upgraded.text


def test_verifies() -> None:
    cid = Cid.of_block(HELLO, RAW)
    assert cid.verifies(HELLO)
    assert not cid.verifies(HELLO[:-1])
    assert not cid.verifies(HELLO + b"\0")
    identity = Cid(b"\x01\x55\x00\x03abc")  # identity multihash: not a hash we accept as verification
    assert not identity.verifies(b"abc")


@pytest.mark.parametrize(
    "text",
    ["", "b", "bafy", "x" * 60, "BAFKREI" + "A" * 52, "zIl0O" * 10, "QmNotACid", "b" + "a" * 300, "bafkré" * 10],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Cid.parse(text)


def test_raw_must_be_a_whole_cidv1() -> None:
    good = Cid.of_block(HELLO).raw
    for bad in (b"", b"\x00" + good[1:], good[:-1], good + b"\0", b"\x01\x70\x12\x20"):
        with pytest.raises(ValueError):
            Cid(bad)


@given(st.binary(max_size=80))
def test_parse_never_raises_anything_but_valueerror(data: bytes) -> None:
    text = "b" + base64.b32encode(data).decode().lower().rstrip("=")
    try:
        cid = Cid.parse(text)
    except ValueError:
        return
    assert cid.text == text


@given(st.integers(min_value=0, max_value=2**63))
def test_varint_round_trip(n: int) -> None:
    encoded = encode_varint(n)
    assert decode_varint(encoded, 0) == (n, len(encoded))


def _b58(raw: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    num, out = int.from_bytes(raw, "big"), ""
    while num:
        num, rem = divmod(num, 58)
        out = alphabet[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out
