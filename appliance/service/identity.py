"""Credentials: the root key pair, generated on first start (full IAM comes later)."""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ConfigError

__all__ = ["Credentials", "Identity", "load_or_create_root"]

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


class Identity:
    """Looks up the secret of an access key."""

    def __init__(self, credentials: list[Credentials]) -> None:
        self._by_key = {c.access_key: c for c in credentials}

    def lookup_secret(self, access_key: str) -> str | None:
        """The secret for `access_key`, or None."""
        creds = self._by_key.get(access_key)
        return creds.secret_key if creds else None

    def owner_of(self, access_key: str) -> str:
        """The owner id shown in listings for requests signed by `access_key`."""
        return access_key
