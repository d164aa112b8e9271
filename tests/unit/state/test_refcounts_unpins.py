"""CID refcounts and the unpin queue: overwrite, delete, same content, claims, leases and the PUT race."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.state import LmdbMetadataStore, codec
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta


def put(store: LmdbMetadataStore, key: str, cid: str, now: float = 0.0) -> bool:
    return store.put_object(make_meta(key, cid=cid), unpin_grace=GRACE, now=now).repin_needed


def delete(store: LmdbMetadataStore, key: str, now: float = 0.0) -> None:
    store.delete_object(BUCKET, key, unpin_grace=GRACE, now=now)


def test_refcounts_follow_rows(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    put(store, "b", "c1")
    put(store, "c", "c2")
    assert store.cid_refcount("c1") == 2
    assert sorted(store.objects_by_cid("c1")) == [(BUCKET, "a"), (BUCKET, "b")]
    assert store.objects_by_cid("missing") == []
    put(store, "a", "c2")  # overwrite moves the reference
    assert (store.cid_refcount("c1"), store.cid_refcount("c2")) == (1, 2)
    assert store.unpin_queue_depth() == 0
    delete(store, "b", now=100.0)
    assert store.cid_refcount("c1") == 0
    assert store.unpin_queue_depth() == 1
    assert store.claim_due_unpins(100.0 + GRACE - 1, 10) == []  # not due yet
    assert store.claim_due_unpins(100.0 + GRACE, 10) == ["c1"]


def test_same_content_overwrite_changes_nothing(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    assert not put(store, "a", "c1")
    assert store.cid_refcount("c1") == 1
    assert store.unpin_queue_depth() == 0
    assert store.objects_by_cid("c1") == [(BUCKET, "a")]


def test_same_cid_in_other_bucket_keeps_content(store: LmdbMetadataStore) -> None:
    store.create_bucket(make_bucket("other"))
    put(store, "a", "c1")
    store.put_object(make_meta("a", cid="c1", bucket="other"), unpin_grace=GRACE, now=0.0)
    delete(store, "a")
    assert store.cid_refcount("c1") == 1
    assert store.unpin_queue_depth() == 0
    assert store.objects_by_cid("c1") == [("other", "a")]


def test_queued_unpin_is_cancelled_by_a_new_reference(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    delete(store, "a")
    assert store.unpin_queue_depth() == 1
    assert not put(store, "b", "c1")  # queued, not yet in flight: nothing to restore
    assert store.unpin_queue_depth() == 0
    assert store.claim_due_unpins(1e9, 10) == []


def test_unpin_lifecycle(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    delete(store, "a", now=10.0)
    claimed = store.claim_due_unpins(10.0 + GRACE, 10)
    assert claimed == ["c1"]
    assert store.claim_due_unpins(10.0 + GRACE, 10) == []  # in flight: not claimed twice
    assert store.unpin_queue_depth() == 1
    assert store.finish_unpin("c1") is True
    assert store.unpin_queue_depth() == 0
    assert store.finish_unpin("c1") is False  # nothing in flight any more


def test_retry_puts_the_job_back(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    delete(store, "a")
    assert store.claim_due_unpins(GRACE, 10) == ["c1"]
    store.retry_unpin("c1", 500.0)
    assert store.claim_due_unpins(499.0, 10) == []
    assert store.claim_due_unpins(500.0, 10) == ["c1"]
    store.retry_unpin("never-queued", 1.0)  # no job: nothing happens
    assert store.unpin_queue_depth() == 1


def test_put_during_inflight_unpin_needs_repin(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    delete(store, "a")
    assert store.claim_due_unpins(GRACE, 10) == ["c1"]
    assert put(store, "b", "c1") is True  # the unpinner may be removing the pin right now
    assert store.unpin_queue_depth() == 0
    assert store.finish_unpin("c1") is False  # so the unpinner restores the pin too
    assert store.cid_refcount("c1") == 1


def test_put_after_a_finished_unpin_needs_repin_once(store: LmdbMetadataStore) -> None:
    # The PUT's add pinned the content before the unpin finished: the commit must re-pin it.
    put(store, "a", "c1")
    delete(store, "a")
    assert store.claim_due_unpins(GRACE, 10) == ["c1"]
    assert store.finish_unpin("c1") is True
    assert put(store, "b", "c1") is True
    delete(store, "b")
    assert put(store, "b", "c1") is False  # the unpin was accounted for once


def test_finished_unpins_are_forgotten_after_their_ttl(store_path: Path) -> None:
    store = LmdbMetadataStore(store_path, unpinned_ttl=100.0, clock=lambda: 1000.0)
    try:
        store.create_bucket(make_bucket())
        put(store, "a", "c1")
        delete(store, "a")
        assert store.claim_due_unpins(GRACE, 10) == ["c1"]
        assert store.finish_unpin("c1")
        assert store.stats()["unpinned_remembered"] == 1
        store.claim_due_unpins(1099.0, 10)
        assert store.stats()["unpinned_remembered"] == 1
        store.claim_due_unpins(1100.0, 10)
        assert store.stats()["unpinned_remembered"] == 0
        assert put(store, "b", "c1") is False
    finally:
        store.close()


def test_claim_drops_jobs_of_referenced_cids(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    delete(store, "a")  # c1 queued, due at GRACE
    put(store, "b", "c3")
    with store._env.begin(write=True) as txn:  # stray jobs, as a crash in an older release might leave
        codec.set_job(txn, store._dbs, "c2", codec.UnpinJob("queued", 0.0))
        codec.set_job(txn, store._dbs, "c3", codec.UnpinJob("queued", 0.0))
    # c3 is referenced: its job is dropped, not claimed; the others are claimed in due order.
    assert store.claim_due_unpins(GRACE, 10) == ["c2", "c1"]
    assert store.unpin_queue_depth() == 2
    assert store.cid_refcount("c3") == 1
    assert store.finish_unpin("c3") is False


def test_claim_respects_limit_and_due_order(store: LmdbMetadataStore) -> None:
    for i, when in enumerate([30.0, 10.0, 20.0, -5.0]):
        put(store, f"k{i}", f"c{i}")
        delete(store, f"k{i}", now=when)
    assert store.claim_due_unpins(1e6, 2) == ["c3", "c1"]
    assert store.claim_due_unpins(1e6, 0) == []
    assert store.claim_due_unpins(1e6, 10) == ["c2", "c0"]


def test_expired_lease_is_claimable_again(store_path: Path) -> None:
    store = LmdbMetadataStore(store_path, unpin_lease=30.0)
    try:
        store.create_bucket(make_bucket())
        put(store, "a", "c1")
        delete(store, "a")
        assert store.claim_due_unpins(100.0, 10) == ["c1"]
        assert store.claim_due_unpins(129.0, 10) == []
        assert store.claim_due_unpins(130.0, 10) == ["c1"]  # the first claimer died
        assert store.finish_unpin("c1") is True
        assert store.unpin_queue_depth() == 0
    finally:
        store.close()


def test_release_if_unreferenced(store: LmdbMetadataStore) -> None:
    put(store, "a", "c1")
    assert store.release_if_unreferenced("c1", unpin_grace=GRACE, now=0.0) is False
    assert store.release_if_unreferenced("orphan", unpin_grace=GRACE, now=5.0) is True
    assert store.release_if_unreferenced("orphan", unpin_grace=GRACE, now=50.0) is True  # already queued
    assert store.unpin_queue_depth() == 1
    assert store.claim_due_unpins(5.0 + GRACE, 10) == ["orphan"]


def test_release_during_inflight_unpin_requeues(store: LmdbMetadataStore) -> None:
    # A failed PUT pinned the content after the unpinner claimed it: the claim's unpin may have run
    # before that pin, so the job is queued again and the in-flight finish reports False.
    put(store, "a", "c1")
    delete(store, "a")
    assert store.claim_due_unpins(GRACE, 10) == ["c1"]
    assert store.release_if_unreferenced("c1", unpin_grace=GRACE, now=100.0) is True
    assert store.finish_unpin("c1") is False
    assert store.claim_due_unpins(100.0 + GRACE, 10) == ["c1"]
    assert store.finish_unpin("c1") is True


def test_invalid_lease_is_refused(store_path: Path) -> None:
    with pytest.raises(ConfigError):
        LmdbMetadataStore(store_path, unpin_lease=0)


def test_long_key_refs(store: LmdbMetadataStore) -> None:
    long_key = "x" * 1024
    put(store, long_key, "c1")
    put(store, "short", "c1")
    assert sorted(store.objects_by_cid("c1")) == [(BUCKET, "short"), (BUCKET, long_key)]
    put(store, long_key, "c2")
    assert store.objects_by_cid("c1") == [(BUCKET, "short")]
    assert store.objects_by_cid("c2") == [(BUCKET, long_key)]
    delete(store, long_key)
    assert store.cid_refcount("c2") == 0
    assert store.unpin_queue_depth() == 1
