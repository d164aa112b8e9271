"""Admin tokens: issued opaque, stored only as SHA-256 digests, checked in constant time, expire, revoked (also by
another process's store object on the same file), forged and malformed tokens refused."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from appliance.service.admin_tokens import TokenStore, token_id_of


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_issue_check_expire(tmp_path: Path) -> None:
    clock = Clock()
    store = TokenStore(tmp_path / "keys" / "admin-tokens.json", clock=clock)
    token, record = store.issue(user="root", access_key="AK", ttl=3600)
    assert token_id_of(token) == record.id
    checked = store.check(token)
    assert checked is not None and checked.user == "root"
    text = (tmp_path / "keys" / "admin-tokens.json").read_text()
    assert token not in text and token.split("_")[-1] not in text  # a copy of the file cannot be replayed
    assert hashlib.sha256(token.encode()).hexdigest() in text
    assert stat.S_IMODE((tmp_path / "keys" / "admin-tokens.json").stat().st_mode) == 0o600
    clock.now += 3600
    assert store.check(token) is None
    assert store.list() == []


def test_last_used_is_recorded(tmp_path: Path) -> None:
    clock = Clock()
    store = TokenStore(tmp_path / "t.json", clock=clock)
    token, _ = store.issue(user="root", access_key="AK", ttl=3600)
    clock.now += 100
    store.check(token)
    assert store.list()[0].last_used == clock.now


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "Bearer",
        "s3ipfs_at_0123456789abcdef_" + "A" * 43,
        "s3ipfs_at_zz_short",
        "x" * 10_000,
        "s3ipfs_at_0123456789abcdef_" + "A" * 42 + "\u00e9",
    ],
)
def test_forged_tokens(tmp_path: Path, forged: str) -> None:
    store = TokenStore(tmp_path / "t.json")
    store.issue(user="root", access_key="AK", ttl=3600)
    assert store.check(forged) is None


def test_a_token_with_a_known_id_but_another_secret_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.json")
    token, record = store.issue(user="root", access_key="AK", ttl=3600)
    other = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert token_id_of(other) == record.id and store.check(other) is None


def test_revocation_reaches_another_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    daemon, cli = TokenStore(path), TokenStore(path)
    first, one = daemon.issue(user="root", access_key="AK", ttl=3600)
    second, _ = daemon.issue(user="root", access_key="AK", ttl=3600)
    local, _ = daemon.issue(user="root", access_key="AK", ttl=None, local=True)
    assert daemon.check(first) and daemon.check(local)
    assert cli.revoke(one.id) and not cli.revoke(one.id)
    assert daemon.check(first) is None and daemon.check(second) is not None
    assert cli.revoke_all() == 1  # the local token stays
    assert daemon.check(second) is None and daemon.check(local) is not None
    newer, _ = daemon.issue(user="root", access_key="AK", ttl=None, local=True)  # a restart replaces it
    assert daemon.check(local) is None and daemon.check(newer) is not None
    assert cli.revoke_all(include_local=True) == 1 and daemon.check(newer) is None
    assert json.loads(path.read_text())["tokens"] == []
