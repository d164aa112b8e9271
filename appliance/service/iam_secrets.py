"""Secrets at rest: access-key secrets sealed with AES-256-GCM under a 256-bit key kept in a file of the state
dir's keys/ (created 0600 on first start), never in the metadata store.

A sealed secret is nonce (12 bytes) + ciphertext + tag, stored with the key id (the first 16 hex digits of the
key's SHA-256) and bound to its access key id as associated data: a copy of the LMDB file alone reveals nothing,
and a sealed secret moved to another key id's record does not open. Not a one-way hash: SigV4 needs the secret
itself to compute the expected signature.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.errors import BackendError, ConfigError

__all__ = ["KEY_BYTES", "SecretBox", "load_or_create_key"]

KEY_BYTES = 32
_NONCE = 12


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte key in `path`, created (mode 0600, directory 0700) when absent; two processes racing on first
    start agree on one key (the first link wins)."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return load_or_create_key(path)
    except OSError as exc:
        raise ConfigError(f"iam.key_file {path}: cannot read it ({exc.strerror}); check its owner and mode") from exc
    if len(key) != KEY_BYTES:
        raise ConfigError(f"iam.key_file {path}: expected {KEY_BYTES} bytes, found {len(key)}; restore it from backup")
    return key


class SecretBox:
    """Seals and opens access-key secrets. Holds the current key and, for records sealed before a key change,
    older keys by id."""

    def __init__(self, key: bytes, *older: bytes) -> None:
        self._keys = {self.key_id_of(k): AESGCM(k) for k in (key, *older)}
        self.key_id = self.key_id_of(key)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    @staticmethod
    def key_id_of(key: bytes) -> str:
        if len(key) != KEY_BYTES:
            raise ValueError("an IAM key is 32 bytes")
        return hashlib.sha256(key).hexdigest()[:16]

    def seal(self, access_key: str, secret: str) -> tuple[str, bytes]:
        """(key id, sealed bytes) of `secret`, bound to `access_key`."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._keys[self.key_id].encrypt(nonce, secret.encode("utf-8"), access_key.encode("utf-8"))
        return self.key_id, nonce + sealed

    def open(self, access_key: str, key_id: str, sealed: bytes) -> str:
        """The secret; BackendError when the key is unknown or the record was altered."""
        aead = self._keys.get(key_id)
        if aead is None:
            raise BackendError(f"an access key's secret is sealed with IAM key {key_id}, which this appliance lacks")
        try:
            return aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], access_key.encode("utf-8")).decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise BackendError(f"the sealed secret of access key {access_key} does not open") from exc
