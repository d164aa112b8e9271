"""Buckets and object rows: CRUD, exact round trips, long keys, errors, operations (backup, stats)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.components import MetadataStore
from appliance.errors import (
    BackendError,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    ConfigError,
    InvalidArgument,
    KeyTooLongError,
    NoSuchBucket,
)
from appliance.model import BucketMeta
from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta


def test_bucket_lifecycle(store: LmdbMetadataStore) -> None:
    assert store.get_bucket(BUCKET) == make_bucket()
    assert store.get_bucket("nope") is None
    store.create_bucket(make_bucket("aaa"))
    store.create_bucket(make_bucket("zzz"))
    assert [b.name for b in store.list_buckets()] == ["aaa", BUCKET, "zzz"]
    with pytest.raises(BucketAlreadyOwnedByYou):
        store.create_bucket(BucketMeta(name="aaa", created=5.0, region="eu", owner="x"))
    assert store.get_bucket("aaa") == make_bucket("aaa")  # the failed create changed nothing
    store.delete_bucket("aaa")
    assert store.get_bucket("aaa") is None
    with pytest.raises(NoSuchBucket):
        store.delete_bucket("aaa")


def test_delete_bucket_refuses_when_not_empty(store: LmdbMetadataStore) -> None:
    store.create_bucket(make_bucket("bkt2"))
    store.put_object(make_meta("k", bucket="bkt2"), unpin_grace=GRACE, now=0.0)
    # A bucket whose name is a prefix of another's must not see the other's keys.
    store.create_bucket(make_bucket("bk"))
    store.delete_bucket("bk")
    with pytest.raises(BucketNotEmpty):
        store.delete_bucket("bkt2")
    store.delete_object("bkt2", "k", unpin_grace=GRACE, now=0.0)
    store.delete_bucket("bkt2")


def test_object_round_trip_is_exact(store: LmdbMetadataStore) -> None:
    meta = make_meta(
        "dir/é file+1.txt",
        content_type="text/plain; charset=utf-8",
        user_meta=(("colour", "blüe"), ("empty", "")),
        headers=(("cache-control", "no-cache"), ("content-encoding", "gzip")),
        checksums=(("crc32c", "sOO8/Q=="),),
        owner="owner-1",
        size=1 << 40,
    )
    outcome = store.put_object(meta, unpin_grace=GRACE, now=0.0)
    assert outcome.previous is None and not outcome.repin_needed
    got = store.get_object(BUCKET, meta.key)
    assert got == meta
    assert got is not None and isinstance(got.user_meta, tuple) and isinstance(got.user_meta[0], tuple)
    assert store.get_object(BUCKET, "dir/other") is None
    assert store.get_object("nope", meta.key) is None


def test_overwrite_returns_previous_and_delete_returns_row(store: LmdbMetadataStore) -> None:
    first = make_meta("k", cid="c1")
    second = make_meta("k", cid="c2", size=9)
    store.put_object(first, unpin_grace=GRACE, now=0.0)
    assert store.put_object(second, unpin_grace=GRACE, now=0.0).previous == first
    assert store.get_object(BUCKET, "k") == second
    assert store.delete_object(BUCKET, "k", unpin_grace=GRACE, now=0.0) == second
    assert store.delete_object(BUCKET, "k", unpin_grace=GRACE, now=0.0) is None
    assert store.get_object(BUCKET, "k") is None


def test_put_into_missing_bucket(store: LmdbMetadataStore) -> None:
    with pytest.raises(NoSuchBucket):
        store.put_object(make_meta("k", bucket="gone"), unpin_grace=GRACE, now=0.0)
    assert store.cid_refcount("bafy-a") == 0
    with pytest.raises(NoSuchBucket):
        store.list_objects("gone")


def test_invalid_keys_are_refused(store: LmdbMetadataStore) -> None:
    with pytest.raises(KeyTooLongError):
        store.put_object(make_meta("k" * 1025), unpin_grace=GRACE, now=0.0)
    with pytest.raises(KeyTooLongError):
        store.put_object(make_meta("é" * 513), unpin_grace=GRACE, now=0.0)  # 1026 bytes


@pytest.mark.parametrize("length", [505, 506, 507, 508, 1024])
def test_long_keys_round_trip(store: LmdbMetadataStore, length: int) -> None:
    # The id is bucket (3) + NUL + key: up to 510 bytes it is an LMDB key of its own, beyond that it lives
    # in a group record; up to 511 bytes it is its own cid_refs value, beyond that a hash stands in.
    keys = [("p" * (length - 1)) + c for c in "bac"] + ["p" * 500 + "/" + "q" * (length - 501)] * (length > 501)
    for i, key in enumerate(keys):
        store.put_object(make_meta(key, cid=f"c{i}"), unpin_grace=GRACE, now=0.0)
    for i, key in enumerate(keys):
        assert store.get_object(BUCKET, key) == make_meta(key, cid=f"c{i}")
        assert store.objects_by_cid(f"c{i}") == [(BUCKET, key)]
    page = store.list_objects(BUCKET)
    assert [o.key for o in page.objects] == sorted(keys, key=str.encode)
    for i, key in enumerate(keys):
        assert store.delete_object(BUCKET, key, unpin_grace=GRACE, now=0.0) == make_meta(key, cid=f"c{i}")
        assert store.cid_refcount(f"c{i}") == 0
    assert store.list_objects(BUCKET).objects == ()
    store.delete_bucket(BUCKET)  # no group record was left behind


def test_keys_with_nul_and_control_characters(store: LmdbMetadataStore) -> None:
    for key in ["a\x00b", "a", "a\x01", "\t"]:
        store.put_object(make_meta(key), unpin_grace=GRACE, now=0.0)
    assert [o.key for o in store.list_objects(BUCKET).objects] == ["\t", "a", "a\x00b", "a\x01"]
    assert sorted(store.objects_by_cid("bafy-a")) == [(BUCKET, k) for k in ["\t", "a", "a\x00b", "a\x01"]]


def test_stats_and_queue_depth(store: LmdbMetadataStore) -> None:
    store.put_object(make_meta("a", cid="c1"), unpin_grace=GRACE, now=0.0)
    store.put_object(make_meta("b", cid="c1"), unpin_grace=GRACE, now=0.0)
    store.put_object(make_meta("c", cid="c2"), unpin_grace=GRACE, now=0.0)
    store.delete_object(BUCKET, "c", unpin_grace=GRACE, now=0.0)
    stats = store.stats()
    assert stats["buckets"] == 1
    assert stats["objects"] == 2
    assert stats["unpin_queue"] == 1 == store.unpin_queue_depth()
    assert stats["map_size_bytes"] == 1 << 28
    assert 0 < stats["map_used_bytes"] <= stats["map_size_bytes"]


def test_backup_is_a_consistent_copy(store: LmdbMetadataStore, tmp_path: Path) -> None:
    store.put_object(make_meta("k", cid="c1"), unpin_grace=GRACE, now=0.0)
    written = store.backup(tmp_path / "backup")
    assert written == tmp_path / "backup" / "data.mdb" and written.is_file()
    with pytest.raises(InvalidArgument):
        store.backup(tmp_path / "backup")
    copy = LmdbMetadataStore(tmp_path / "backup", readonly=True)
    try:
        assert copy.get_object(BUCKET, "k") == make_meta("k", cid="c1")
        assert copy.cid_refcount("c1") == 1
        assert copy.schema_version() == store.schema_version()
    finally:
        copy.close()


def test_readonly_store_reads_and_refuses_writes(store: LmdbMetadataStore, store_path: Path) -> None:
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=0.0)
    store.close()
    readonly = LmdbMetadataStore(store_path, readonly=True)
    try:
        assert readonly.get_object(BUCKET, "k") == make_meta("k")
        with pytest.raises(BackendError, match="read-only"):
            readonly.create_bucket(make_bucket("other"))
    finally:
        readonly.close()


def test_readonly_open_of_missing_store_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metadata"):
        LmdbMetadataStore(tmp_path / "absent", readonly=True)


def test_unusable_path_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match=r"metadata\.path"):
        LmdbMetadataStore(blocker / "meta")


def test_full_map_is_a_backend_error_and_leaves_the_store_usable(tmp_path: Path) -> None:
    small = LmdbMetadataStore(tmp_path / "small", map_size=1 << 20)
    try:
        small.create_bucket(make_bucket())
        big = (("blob", "x" * 100_000),)
        with pytest.raises(BackendError, match=r"metadata\.map_size"):
            for i in range(100):
                small.put_object(make_meta(f"k{i}", cid=f"c{i}", user_meta=big), unpin_grace=GRACE, now=0.0)
        count = len(small.list_objects(BUCKET).objects)
        assert 0 < count < 100
        assert small.stats()["objects"] == count  # the failed transaction left no half-written refs
    finally:
        small.close()


def test_use_after_fork_is_refused(store: LmdbMetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "_pid", os.getpid() + 1)
    with pytest.raises(BackendError, match="fork"):
        store.get_bucket(BUCKET)


def test_use_after_close_is_a_backend_error(store_path: Path) -> None:
    opened = LmdbMetadataStore(store_path)
    opened.close()
    opened.close()  # idempotent
    with pytest.raises(BackendError):
        opened.get_bucket(BUCKET)


def test_list_with_negative_max_keys(store: LmdbMetadataStore) -> None:
    with pytest.raises(InvalidArgument):
        store.list_objects(BUCKET, max_keys=-1)


def test_public_names() -> None:
    import appliance.state
    import appliance.state.codec
    import appliance.state.keys
    import appliance.state.lmdb_store
    import appliance.state.migrations

    for module in (
        appliance.state,
        appliance.state.codec,
        appliance.state.keys,
        appliance.state.lmdb_store,
        appliance.state.migrations,
    ):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_satisfies_the_metadata_store_protocol(store: LmdbMetadataStore) -> None:
    contract: MetadataStore = store  # checked by mypy: every method with the Protocol's signature
    assert contract is store


def test_bucket_configs(store: LmdbMetadataStore) -> None:
    assert store.get_bucket_config(BUCKET, "cors") is None
    store.put_bucket_config(BUCKET, "cors", '{"rules": []}')
    store.put_bucket_config(BUCKET, "tagging", "{}")
    assert store.get_bucket_config(BUCKET, "cors") == '{"rules": []}'
    store.delete_bucket_config(BUCKET, "cors")
    store.delete_bucket_config(BUCKET, "cors")  # absent is fine
    assert store.get_bucket_config(BUCKET, "cors") is None
    for call in (
        lambda: store.put_bucket_config("nope", "cors", "{}"),
        lambda: store.get_bucket_config("nope", "cors"),
        lambda: store.delete_bucket_config("nope", "cors"),
    ):
        with pytest.raises(NoSuchBucket):
            call()
    store.delete_bucket(BUCKET)
    store.create_bucket(make_bucket())
    assert store.get_bucket_config(BUCKET, "tagging") is None  # a re-created bucket starts clean
