"""Credentials: the root key pair (generated on first start, rotatable with a grace period) and the Identity the S3
app asks for secrets and owners, over the root keys and the IAM users' keys.

keys/root.json holds {"access_key", "secret_key"} (the current root key), and after a rotation also "account" (the
root's stable canonical id: the first root access key, so buckets it owns stay its own) and "previous": a list of
{"access_key", "secret_key", "expires"} still valid until their expiry. Every process re-reads the file when it
changes (checked at most every ROOT_RECHECK seconds)."""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from appliance.errors import ConfigError
from appliance.model import Principal

__all__ = ["ROOT_RECHECK", "Credentials", "Identity", "RootKeys", "load_or_create_root", "read_root", "rotate_root"]

ROOT_RECHECK = 0.2  # seconds between checks whether root.json changed (a rotation in another process)

_AK_ALPHABET = string.ascii_uppercase + string.digits
_SK_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key and its secret. The secret never appears in repr or logs."""

    access_key: str
    secret_key: str

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key!r}, secret_key='***')"


def _generate() -> Credentials:
    access = "S3IPFS" + "".join(secrets.choice(_AK_ALPHABET) for _ in range(14))
    # Letters and digits only: safe to paste into shells, config files and command-line flags.
    secret = "".join(secrets.choice(_SK_ALPHABET) for _ in range(40))
    return Credentials(access, secret)


def load_or_create_root(path: Path) -> tuple[Credentials, bool]:
    """Read the root key pair from `path`, creating it (mode 0600) if absent. Returns (creds, created)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        creds = _generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"access_key": creds.access_key, "secret_key": creds.secret_key}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            # Two processes racing on first start: the first link wins, the other reads it back.
            os.link(tmp, path)
        except FileExistsError:
            tmp.unlink(missing_ok=True)
            return load_or_create_root(path)[0], False
        tmp.unlink(missing_ok=True)
        return creds, True
    except (OSError, ValueError) as exc:
        raise ConfigError(f"auth.root_credentials_file {path}: cannot read it ({exc}); fix or remove the file") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("access_key"), str)
        or not isinstance(data.get("secret_key"), str)
    ):
        raise ConfigError(f"auth.root_credentials_file {path}: expected {{'access_key': ..., 'secret_key': ...}}")
    return Credentials(data["access_key"], data["secret_key"]), False


@dataclass(frozen=True, slots=True)
class RootKeys:
    """The root key pair, its stable account id, and earlier root keys still valid until their expiry."""

    current: Credentials
    account: str
    previous: tuple[tuple[Credentials, float], ...] = ()

    def secret_of(self, access_key: str, now: float) -> str | None:
        if access_key == self.current.access_key:
            return self.current.secret_key
        for creds, expires in self.previous:
            if creds.access_key == access_key and now < expires:
                return creds.secret_key
        return None

    def holds(self, access_key: str) -> bool:
        return access_key == self.current.access_key or any(c.access_key == access_key for c, _ in self.previous)


def read_root(path: Path) -> RootKeys:
    """The root keys in `path` (created when absent, like load_or_create_root)."""
    current, _created = load_or_create_root(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        previous = tuple(
            (Credentials(str(p["access_key"]), str(p["secret_key"])), float(p["expires"]))
            for p in data.get("previous", ())
        )
        account = str(data.get("account") or current.access_key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"auth.root_credentials_file {path}: its previous root keys are unreadable ({exc})") from exc
    return RootKeys(current, account, previous)


def rotate_root(path: Path, grace: float, now: float) -> tuple[RootKeys, Credentials]:
    """Make a new root key current; the old one stays valid for `grace` seconds (0: refused at once). Rewrites
    `path` atomically (mode 0600). Returns the new keys and the new pair (its secret, shown once)."""
    old = read_root(path)
    new = _generate()
    previous = [(c, e) for c, e in old.previous if e > now]
    if grace > 0:
        previous.append((old.current, now + grace))
    doc = {
        "access_key": new.access_key,
        "secret_key": new.secret_key,
        "account": old.account,
        "previous": [{"access_key": c.access_key, "secret_key": c.secret_key, "expires": e} for c, e in previous],
    }
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return RootKeys(new, old.account, tuple(previous)), new


class _Principals(Protocol):
    def principal_for(self, access_key: str) -> tuple[Principal, str] | None: ...


class Identity:
    """Looks up the secret and the owner id of an access key: the root keys first, then the IAM users' keys."""

    def __init__(
        self,
        credentials: list[Credentials],
        *,
        root_file: Path | None = None,
        users: _Principals | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._static = {c.access_key: c for c in credentials}
        self._root_file = root_file
        self._users = users
        self._clock = clock
        self._lock = threading.Lock()
        self._root: RootKeys | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")

    def _root_keys(self) -> RootKeys | None:
        """The root keys of root_file, re-read when the file changed (checked every ROOT_RECHECK seconds)."""
        if self._root_file is None:
            return None
        now = time.monotonic()
        with self._lock:
            if now - self._checked < ROOT_RECHECK and self._root is not None:
                return self._root
            self._checked = now
            try:
                st = os.stat(self._root_file)
            except OSError:
                return self._root
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._root = read_root(self._root_file)
                self._stamp = stamp
            return self._root

    def lookup_secret(self, access_key: str) -> str | None:
        """The secret for `access_key`, or None (unknown, disabled or expired)."""
        creds = self._static.get(access_key)
        if creds is not None:
            return creds.secret_key
        root = self._root_keys()
        if root is not None and root.holds(access_key):
            return root.secret_of(access_key, self._clock())
        if self._users is not None:
            found = self._users.principal_for(access_key)
            if found is not None:
                return found[1]
        return None

    def is_root(self, access_key: str) -> bool:
        """Whether `access_key` is one of the root keys (current or in its grace period)."""
        root = self._root_keys()
        return access_key in self._static or (
            root is not None and root.secret_of(access_key, self._clock()) is not None
        )

    def owner_of(self, access_key: str) -> str:
        """The owner id shown in listings for requests signed by `access_key`: the root's stable account id for a
        root key, an IAM user's id for its keys (both survive key rotation), else the key itself."""
        root = self._root_keys()
        if root is not None and root.holds(access_key):
            return root.account
        if self._users is not None and access_key not in self._static:
            found = self._users.principal_for(access_key)
            if found is not None:
                return found[0].account
        return access_key
