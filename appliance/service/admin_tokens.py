"""Admin API bearer tokens: opaque random values, stored only as SHA-256 digests in one JSON file.

A token is `s3ipfs_at_<id>_<secret>`: the 16-hex-digit id names it in listings and revocation, the 256-bit secret
makes it unguessable. Opaque rather than signed: revocation and last-used times need server-side state anyway, and
an opaque value has no signing key to protect or rotate. The file (`<state_dir>/keys/admin-tokens.json`, 0600) keeps
`sha256(token)`, never the token, so a copy of it cannot be replayed. Writers (the daemon, `s3ipfs admin revoke
--offline`) take an flock and replace the file atomically; readers reload it when it changed (cheap `stat`), so a
revocation reaches the daemon on its next request.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["TOKEN_PREFIX", "TokenRecord", "TokenStore", "token_id_of"]

TOKEN_PREFIX = "s3ipfs_at_"  # noqa: S105 (a prefix)
_TOKEN = re.compile(r"^s3ipfs_at_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_LAST_USED_EVERY = 60.0  # seconds: last-used times are written at most this often per token


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What is stored of one token (never the token itself)."""

    id: str
    digest: str  # sha256 hex of the whole token
    user: str  # the identity it was issued to ("root" or an IAM user)
    access_key: str  # the key that asked for it
    created: float
    expires: float  # 0: never (the local root token, replaced at every daemon start)
    last_used: float = 0.0
    local: bool = False

    def public(self) -> dict[str, Any]:
        """The record as listed by the API (no digest)."""
        data = asdict(self)
        del data["digest"]
        return data

    def expired(self, now: float) -> bool:
        return bool(self.expires) and now >= self.expires


def token_id_of(token: str) -> str | None:
    """The id of a well-formed token, None otherwise."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The token file of one state dir; every method is one locked read(-modify-write) of it."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._cache: dict[str, TokenRecord] = {}
        self._stamp: tuple[int, int, int] | None = None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def path(self) -> Path:
        return self._path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(str(self._path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _load(self) -> dict[str, TokenRecord]:
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            self._cache, self._stamp = {}, None
            return self._cache
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                data = json.loads(self._path.read_text(encoding="utf-8"))
                self._cache = {t["id"]: TokenRecord(**t) for t in data.get("tokens", [])}
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{self._path}: not a token file ({type(exc).__name__}); remove it") from exc
            self._stamp = stamp
        return self._cache

    def _save(self, tokens: dict[str, TokenRecord]) -> None:
        now = self._clock()
        live = [t for t in tokens.values() if not t.expired(now)]  # expired tokens are pruned on every write
        tmp = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"v": 1, "tokens": [asdict(t) for t in live]}, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
        self._stamp = None
        self._load()

    def issue(self, *, user: str, access_key: str, ttl: float | None, local: bool = False) -> tuple[str, TokenRecord]:
        """A new token for `user` valid `ttl` seconds (None: until revoked); returns (token, its record)."""
        token_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = self._clock()
        record = TokenRecord(
            id=token_id,
            digest=_digest(token),
            user=user,
            access_key=access_key,
            created=now,
            expires=now + ttl if ttl else 0.0,
            local=local,
        )
        with self._locked():
            tokens = dict(self._load())
            if local:  # one local root token at a time: the previous daemon's goes
                tokens = {k: t for k, t in tokens.items() if not t.local}
            tokens[token_id] = record
            self._save(tokens)
        return token, record

    def check(self, token: str) -> TokenRecord | None:
        """The record of a valid, unexpired, unrevoked token (constant-time digest compare), else None."""
        token_id = token_id_of(token)
        if token_id is None:
            return None
        record = self._load().get(token_id)
        now = self._clock()
        if record is None or not hmac.compare_digest(record.digest, _digest(token)) or record.expired(now):
            return None
        if now - record.last_used >= _LAST_USED_EVERY:
            with self._locked():
                tokens = dict(self._load())
                if token_id in tokens:
                    tokens[token_id] = replace(tokens[token_id], last_used=now)
                    self._save(tokens)
        return record

    def list(self) -> list[TokenRecord]:
        """Unexpired tokens, oldest first."""
        now = self._clock()
        return sorted((t for t in self._load().values() if not t.expired(now)), key=lambda t: (t.created, t.id))

    def revoke(self, token_id: str) -> bool:
        """Remove one token; False when there was none with that id."""
        with self._locked():
            tokens = dict(self._load())
            if tokens.pop(token_id, None) is None:
                return False
            self._save(tokens)
        return True

    def revoke_all(self, *, include_local: bool = False) -> int:
        """Remove every token (but the local root token unless `include_local`); returns how many."""
        with self._locked():
            tokens = dict(self._load())
            keep = {k: t for k, t in tokens.items() if t.local and not include_local}
            self._save(keep)
        return len(tokens) - len(keep)
