"""libp2p Ed25519 identities: protobuf keys, identity-multihash peer IDs, base58btc."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from appliance.nodesetup.identity import (
    Identity,
    b58decode,
    b58encode,
    generate_identity,
    identity_from_private_key,
    peer_id_from_public_key,
    public_key_of,
    validate_peer_id,
)


def test_base58_round_trip_and_leading_zeros() -> None:
    for data in (b"", b"\0", b"\0\0\x01", b"hello world", bytes(range(256))):
        assert b58decode(b58encode(data)) == data
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    with pytest.raises(ValueError, match="base58"):
        b58decode("0OIl")


def test_generated_identity_has_the_libp2p_layout() -> None:
    identity = generate_identity()
    assert identity.peer_id.startswith("12D3KooW")
    raw_peer = b58decode(identity.peer_id)
    # identity multihash (0x00, 36) of the public key protobuf {Type: Ed25519, Data: 32 bytes}
    assert raw_peer[:6] == bytes([0x00, 36, 0x08, 0x01, 0x12, 0x20])
    raw_private = base64.b64decode(identity.private_key)
    assert raw_private[:4] == bytes([0x08, 0x01, 0x12, 0x40]) and len(raw_private) == 68
    public = public_key_of(identity).public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw_peer[6:] == public == raw_private[36:]
    assert generate_identity().peer_id != identity.peer_id


def test_identity_round_trips_from_its_private_key() -> None:
    identity = generate_identity()
    assert identity_from_private_key(identity.private_key) == identity


@pytest.mark.parametrize(
    "key",
    ["not base64!", base64.b64encode(b"\x08\x00\x12\x40" + bytes(64)).decode(), base64.b64encode(b"short").decode()],
)
def test_private_keys_that_are_not_ed25519_protobuf(key: str) -> None:
    with pytest.raises(ValueError):
        identity_from_private_key(key)


def test_mismatched_public_half_is_refused() -> None:
    raw = bytearray(base64.b64decode(generate_identity().private_key))
    raw[-1] ^= 1
    with pytest.raises(ValueError, match="does not match"):
        identity_from_private_key(base64.b64encode(bytes(raw)).decode())


def test_peer_id_validation() -> None:
    validate_peer_id(generate_identity().peer_id)
    validate_peer_id("QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN")  # an RSA (sha2-256) peer ID
    for bad in ("", "12D3KooW", "hello", "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJ"):
        with pytest.raises(ValueError):
            validate_peer_id(bad)


def test_large_public_keys_are_hashed() -> None:
    peer_id = peer_id_from_public_key(b"\x08\x00\x12" + bytes(300))
    assert peer_id.startswith("Qm")


def test_repr_hides_the_private_key() -> None:
    identity = generate_identity()
    assert identity.private_key not in repr(identity)
    with pytest.raises(ValueError):
        Identity("nope", identity.private_key)
