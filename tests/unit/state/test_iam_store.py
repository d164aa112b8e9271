"""The IAM store: one transaction per method, the change counter, secrets sealed at rest (the LMDB file never holds
a secret's bytes, and a sealed record does not open under another key id), concurrent writers in several processes,
and a cache in one process refreshed by a change another process makes."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from appliance.errors import BackendError, EntityAlreadyExists
from appliance.service.iam_secrets import SecretBox, load_or_create_key
from appliance.state import LmdbMetadataStore, migrations
from tests.unit.service.iam_support import make_service

WORKERS = 4
PER_WORKER = 25


def test_schema_6_and_every_write_moves_the_counter(tmp_path: Path) -> None:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    try:
        assert store.schema_version() == migrations.CURRENT_VERSION == 6
        iam = make_service(tmp_path, store)
        seen = [store.iam_generation()]
        iam.create_user("alice")
        seen.append(store.iam_generation())
        iam.create_group("ops")
        seen.append(store.iam_generation())
        iam.set_member("ops", "alice", member=True)
        seen.append(store.iam_generation())
        key = iam.create_key("alice").record.access_key
        seen.append(store.iam_generation())
        iam.set_key_status(key, active=False)
        seen.append(store.iam_generation())
        with pytest.raises(EntityAlreadyExists):
            iam.create_user("alice")  # a failed write changes nothing
        seen.append(store.iam_generation())
        assert seen == [0, 1, 2, 3, 4, 5, 5]
    finally:
        store.close()


def test_secrets_are_sealed_at_rest(tmp_path: Path) -> None:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    try:
        iam = make_service(tmp_path, store)
        iam.create_user("alice")
        secrets = [iam.create_key("alice").secret, iam.create_key("alice").secret]
        iam.create_user("carol")
        imported = iam.create_key("carol", access_key="carolkey", secret="Imported-Secret-Value-1234")
        secrets.append(imported.secret)
        record = store.iam_get_key("carolkey")
        assert record is not None and imported.secret not in repr(record)
    finally:
        store.close()
    raw = (tmp_path / "meta" / "data.mdb").read_bytes()
    assert b"carolkey" in raw  # the records are there...
    for secret in secrets:
        assert secret.encode() not in raw  # ...the secrets are not
    key_file = tmp_path / "keys" / "iam.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and len(key_file.read_bytes()) == 32


def test_a_sealed_secret_is_bound_to_its_key_id_and_iam_key(tmp_path: Path) -> None:
    box = SecretBox(load_or_create_key(tmp_path / "a.key"))
    key_id, sealed = box.seal("AKIAONE", "secret")
    assert box.open("AKIAONE", key_id, sealed) == "secret"
    with pytest.raises(BackendError):
        box.open("AKIATWO", key_id, sealed)  # moved to another record
    with pytest.raises(BackendError):
        box.open("AKIAONE", key_id, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    other = SecretBox(load_or_create_key(tmp_path / "b.key"))
    with pytest.raises(BackendError, match="lacks"):
        other.open("AKIAONE", key_id, sealed)
    assert load_or_create_key(tmp_path / "a.key") == load_or_create_key(tmp_path / "a.key")
    (tmp_path / "short.key").write_bytes(b"x" * 5)
    with pytest.raises(Exception, match="32 bytes"):
        load_or_create_key(tmp_path / "short.key")


def _create_users(path: str, state: str, worker: int) -> None:
    store = LmdbMetadataStore(Path(path), map_size=1 << 26)
    try:
        iam = make_service(Path(state), store)
        for i in range(PER_WORKER):
            iam.create_user(f"w{worker}-u{i}")
            iam.set_member("shared", f"w{worker}-u{i}", member=True)
            iam.create_key(f"w{worker}-u{i}")
            try:
                iam.create_user("contended")
            except EntityAlreadyExists:
                pass
    finally:
        store.close()


def test_processes_write_iam_concurrently(tmp_path: Path) -> None:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    try:
        iam = make_service(tmp_path, store)
        iam.create_group("shared")
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=_create_users, args=(str(tmp_path / "meta"), str(tmp_path), w)) for w in range(WORKERS)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
        assert [proc.exitcode for proc in procs] == [0] * WORKERS
        users = {u.name for u in iam.list_users()}
        assert users == {f"w{w}-u{i}" for w in range(WORKERS) for i in range(PER_WORKER)} | {"contended"}
        assert len(iam.get_group("shared")[1]) == WORKERS * PER_WORKER
        for name in ("w0-u0", f"w{WORKERS - 1}-u{PER_WORKER - 1}"):
            [key] = iam.list_keys(name)
            assert iam.source.principal_for(key.access_key) is not None  # sealed in another process, opens here
    finally:
        store.close()


def _toggle_key(path: str, state: str, access_key: str, ready: multiprocessing.Queue[str]) -> None:  # type: ignore[type-arg]
    store = LmdbMetadataStore(Path(path), map_size=1 << 26)
    try:
        iam = make_service(Path(state), store)
        iam.set_key_status(access_key, active=False)
        ready.put("disabled")
    finally:
        store.close()


def test_a_change_in_another_process_reaches_the_cache(tmp_path: Path) -> None:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    try:
        iam = make_service(tmp_path, store)
        iam.create_user("alice")
        key = iam.create_key("alice").record.access_key
        assert iam.source.principal_for(key) is not None  # cached in this process
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Queue()
        proc = ctx.Process(target=_toggle_key, args=(str(tmp_path / "meta"), str(tmp_path), key, ready))
        proc.start()
        assert ready.get(timeout=60) == "disabled"
        proc.join(timeout=60)
        # The other process has committed: this process must refuse the key within 1 s (in fact at once).
        deadline = time.monotonic() + 1.0
        while iam.source.principal_for(key) is not None:
            assert time.monotonic() < deadline, "the disabled key was still accepted after 1 s"
            time.sleep(0.01)
    finally:
        store.close()
