"""The schema-version stamp: fresh stores, current stores, stores from a newer s3ipfs, migration order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb
import pytest

from appliance.errors import ConfigError
from appliance.state import LmdbMetadataStore, migrations, store_base
from appliance.state.keys import SCHEMA_VERSION_KEY, Dbs
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta


def stamp(path: Path, value: bytes) -> None:
    env = lmdb.open(str(path), max_dbs=32)
    try:
        meta = env.open_db(b"meta")
        with env.begin(write=True) as txn:
            txn.put(SCHEMA_VERSION_KEY, value, db=meta)
    finally:
        env.close()


def test_fresh_store_is_stamped_current(store_path: Path) -> None:
    store = LmdbMetadataStore(store_path)
    try:
        assert store.schema_version() == migrations.CURRENT_VERSION == 6
    finally:
        store.close()


def test_reopening_a_current_store_keeps_its_data(store_path: Path) -> None:
    store = LmdbMetadataStore(store_path)
    store.create_bucket(make_bucket())
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=0.0)
    store.close()
    again = LmdbMetadataStore(store_path)
    try:
        assert again.schema_version() == migrations.CURRENT_VERSION
        assert again.get_object(BUCKET, "k") == make_meta("k")
        assert again.cid_refcount("bafy-a") == 1
    finally:
        again.close()


def test_store_from_a_newer_release_is_refused(store_path: Path) -> None:
    LmdbMetadataStore(store_path).close()
    stamp(store_path, b"99")
    for readonly in (False, True):
        with pytest.raises(ConfigError, match="upgrade s3ipfs") as caught:
            LmdbMetadataStore(store_path, readonly=readonly)
        assert "99" in caught.value.message and str(store_path) in caught.value.message
    # The refused open wrote nothing: the stamp is still the newer one.
    env = lmdb.open(str(store_path), max_dbs=32, readonly=True)
    try:
        with env.begin() as txn:
            assert txn.get(SCHEMA_VERSION_KEY, db=env.open_db(b"meta", txn=txn, create=False)) == b"99"
    finally:
        env.close()


def test_unreadable_stamp_is_a_config_error(store_path: Path) -> None:
    LmdbMetadataStore(store_path).close()
    stamp(store_path, b"garbage")
    with pytest.raises(ConfigError, match="schema version"):
        LmdbMetadataStore(store_path)


def test_readonly_open_of_an_old_store_asks_for_a_writable_open(store_path: Path) -> None:
    LmdbMetadataStore(store_path).close()
    stamp(store_path, b"0")
    with pytest.raises(ConfigError, match="migration"):
        LmdbMetadataStore(store_path, readonly=True)
    LmdbMetadataStore(store_path).close()  # a writable open migrates it
    LmdbMetadataStore(store_path, readonly=True).close()


def test_migrations_run_in_order_from_the_stamp(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    LmdbMetadataStore(store_path).close()
    stamp(store_path, b"1")
    ran: list[int] = []

    def step(version: int) -> migrations.Migration:
        def apply(txn: Any, dbs: Dbs) -> None:
            ran.append(version)
            txn.put(f"v{version}".encode(), b"done", db=dbs.meta)

        return apply

    monkeypatch.setattr(migrations, "MIGRATIONS", ((1, step(1)), (2, step(2)), (3, step(3))))
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 3)
    monkeypatch.setattr(store_base, "CURRENT_VERSION", 3)
    store = LmdbMetadataStore(store_path)
    try:
        assert ran == [2, 3]
        assert store.schema_version() == 3
    finally:
        store.close()
    LmdbMetadataStore(store_path).close()
    assert ran == [2, 3]  # already current: nothing runs again


def test_a_failing_migration_leaves_the_store_untouched(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    LmdbMetadataStore(store_path).close()
    stamp(store_path, b"1")

    def broken(txn: Any, dbs: Dbs) -> None:
        txn.put(b"half", b"written", db=dbs.meta)
        raise ConfigError("migration 2 cannot convert this store")

    monkeypatch.setattr(migrations, "MIGRATIONS", ((1, migrations.MIGRATIONS[0][1]), (2, broken)))
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 2)
    with pytest.raises(ConfigError, match="migration 2"):
        LmdbMetadataStore(store_path)
    monkeypatch.undo()
    env = lmdb.open(str(store_path), max_dbs=32, readonly=True)
    try:
        with env.begin() as txn:
            meta = env.open_db(b"meta", txn=txn, create=False)
            assert txn.get(SCHEMA_VERSION_KEY, db=meta) == b"1"
            assert txn.get(b"half", db=meta) is None
    finally:
        env.close()


def test_version_1_store_gains_multipart_and_keeps_its_data(store_path: Path) -> None:
    store = LmdbMetadataStore(store_path)
    store.create_bucket(make_bucket())
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=0.0)
    store.close()
    stamp(store_path, b"1")
    again = LmdbMetadataStore(store_path)
    try:
        assert again.schema_version() == migrations.CURRENT_VERSION
        assert again.get_object(BUCKET, "k") == make_meta("k")
        assert again.list_uploads(BUCKET) == []
    finally:
        again.close()


def test_version_4_store_gains_completed_upload_records(store_path: Path) -> None:
    """A store written before schema 5 has no completed_uploads / completed_due databases: a writable open adds
    them and keeps every row."""
    store = LmdbMetadataStore(store_path)
    store.create_bucket(make_bucket())
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=0.0)
    store.close()
    env = lmdb.open(str(store_path), max_dbs=32)
    try:
        with env.begin(write=True) as txn:
            for name in (b"completed_uploads", b"completed_due"):
                txn.drop(env.open_db(name, txn=txn), delete=True)
            txn.put(SCHEMA_VERSION_KEY, b"4", db=env.open_db(b"meta", txn=txn))
    finally:
        env.close()
    again = LmdbMetadataStore(store_path)
    try:
        assert again.schema_version() == migrations.CURRENT_VERSION == 6
        assert again.get_object(BUCKET, "k") == make_meta("k")
        assert again.get_completed_upload("any") is None
        assert again.expire_completed_uploads(1e12) == 0
    finally:
        again.close()


def test_version_5_store_gains_iam(store_path: Path) -> None:
    """A store written before schema 6 has no iam / iam_usage databases: a writable open adds them (empty) and keeps
    every row."""
    store = LmdbMetadataStore(store_path)
    store.create_bucket(make_bucket())
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=0.0)
    store.close()
    env = lmdb.open(str(store_path), max_dbs=32)
    try:
        with env.begin(write=True) as txn:
            for name in (b"iam", b"iam_usage"):
                txn.drop(env.open_db(name, txn=txn), delete=True)
            txn.put(SCHEMA_VERSION_KEY, b"5", db=env.open_db(b"meta", txn=txn))
    finally:
        env.close()
    again = LmdbMetadataStore(store_path)
    try:
        assert again.schema_version() == migrations.CURRENT_VERSION == 6
        assert again.get_object(BUCKET, "k") == make_meta("k")
        assert again.iam_list_users() == [] and again.iam_generation() == 0
    finally:
        again.close()
