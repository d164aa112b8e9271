"""libp2p identities (Ed25519): the protobuf-encoded keys and the base58btc peer ID that Kubo and IPFS-Cluster store."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

__all__ = [
    "Identity",
    "b58decode",
    "b58encode",
    "generate_identity",
    "identity_from_private_key",
    "peer_id_from_public_key",
    "public_key_of",
    "validate_peer_id",
]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}
_KEY_TYPE_ED25519 = 1  # libp2p crypto.pb KeyType
_MH_IDENTITY = 0x00
_MH_SHA2_256 = 0x12
_MAX_INLINE_KEY = 42  # libp2p: public keys up to 42 bytes are inlined with the identity multihash


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 (multibase `z` without its prefix)."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rest = divmod(number, 58)
        out.append(_ALPHABET[rest])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of b58encode; ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        if char not in _INDEX:
            raise ValueError(f"{char!r} is not a base58btc character")
        number = number * 58 + _INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _key_protobuf(data: bytes) -> bytes:
    # message { KeyType Type = 1; bytes Data = 2; }: both fields always present, Data shorter than 128 bytes.
    return bytes([0x08, _KEY_TYPE_ED25519, 0x12, len(data)]) + data


def peer_id_from_public_key(public_key_protobuf: bytes) -> str:
    """The peer ID of a protobuf-encoded public key: identity multihash when it is small (Ed25519), else sha2-256."""
    if len(public_key_protobuf) <= _MAX_INLINE_KEY:
        digest = bytes([_MH_IDENTITY, len(public_key_protobuf)]) + public_key_protobuf
    else:
        digest = bytes([_MH_SHA2_256, 32]) + hashlib.sha256(public_key_protobuf).digest()
    return b58encode(digest)


def validate_peer_id(text: str) -> str:
    """`text` if it is a base58btc peer ID (identity or sha2-256 multihash); ValueError otherwise."""
    try:
        raw = b58decode(text)
    except ValueError as exc:
        raise ValueError(f"peer ID {text!r}: {exc}") from None
    if len(raw) >= 2 and raw[0] == _MH_SHA2_256 and raw[1] == 32 and len(raw) == 34:
        return text
    if len(raw) >= 2 and raw[0] == _MH_IDENTITY and raw[1] == len(raw) - 2 and 0 < raw[1] <= _MAX_INLINE_KEY:
        return text
    raise ValueError(f"peer ID {text!r} is not a libp2p peer ID (expected Qm… or 12D3KooW…)")


@dataclass(frozen=True)
class Identity:
    """A peer's identity: `peer_id` (base58btc) and `private_key` (base64 of the protobuf-encoded private key),
    the two strings Kubo keeps in `Identity.PeerID`/`Identity.PrivKey` and the cluster in identity.json."""

    peer_id: str
    private_key: str

    def __post_init__(self) -> None:
        validate_peer_id(self.peer_id)

    def __repr__(self) -> str:  # the private key stays out of logs and tracebacks
        return f"Identity(peer_id={self.peer_id!r})"


def _from_key(key: Ed25519PrivateKey) -> Identity:
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # libp2p's Ed25519 private key Data is the 64-byte seed||public form (as Go's ed25519.PrivateKey).
    private_pb = _key_protobuf(seed + public)
    return Identity(peer_id_from_public_key(_key_protobuf(public)), base64.b64encode(private_pb).decode("ascii"))


def generate_identity() -> Identity:
    """A fresh Ed25519 identity."""
    return _from_key(Ed25519PrivateKey.generate())


def identity_from_private_key(private_key_b64: str) -> Identity:
    """The identity of an existing base64 protobuf Ed25519 private key; ValueError if it is not one."""
    try:
        raw = base64.b64decode(private_key_b64, validate=True)
    except ValueError as exc:
        raise ValueError("the private key is not valid base64") from exc
    if len(raw) != 68 or raw[:4] != bytes([0x08, _KEY_TYPE_ED25519, 0x12, 64]):
        raise ValueError("the private key is not a protobuf-encoded Ed25519 key")
    key = Ed25519PrivateKey.from_private_bytes(raw[4:36])
    identity = _from_key(key)
    if raw[36:] != base64.b64decode(identity.private_key)[36:]:
        raise ValueError("the private key's public half does not match its seed")
    return identity


def public_key_of(identity: Identity) -> Ed25519PublicKey:
    """The Ed25519 public key (for tests and signatures)."""
    raw = base64.b64decode(identity.private_key)
    return Ed25519PrivateKey.from_private_bytes(raw[4:36]).public_key()
