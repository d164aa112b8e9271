"""The pin outbox in the metadata store: one durable job per CID, leases, seq-guarded finishes, exactly-once drains
(across a close and a real kill -9), pins acknowledged by the cluster (mark_pinned), the names of version-only
CIDs, status listings, access statistics and malformed rows."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import BackendError
from appliance.model import PartMeta, PinJob, PinRecord, UploadMeta
from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta

OTHER = "other-bkt"

LEASE = 30.0


def open_store(path: Path) -> LmdbMetadataStore:
    return LmdbMetadataStore(path, map_size=1 << 28, pin_outbox=True)


@pytest.fixture
def outbox(store_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = open_store(store_path)
    opened.create_bucket(make_bucket())
    yield opened
    opened.close()


def put(store: LmdbMetadataStore, key: str, cid: str, now: float = 100.0) -> None:
    store.put_object(make_meta(key, cid), unpin_grace=GRACE, now=now)


def pinned(job: PinJob) -> PinRecord:
    return PinRecord(cid=job.cid, state="pinned", name=job.name, peers=(("p1", "pinned", ""),), updated=1.0)


def finish_all(store: LmdbMetadataStore, now: float) -> None:
    for job in store.claim_pin_jobs(now, 10_000, lease=LEASE):
        assert store.finish_pin_job(job, pinned(job))


def raw_put(store: LmdbMetadataStore, db: str, key: bytes, value: bytes) -> None:
    """Write a row behind the store's back (a corrupt or foreign row)."""
    with store._env.begin(write=True) as txn:
        txn.put(key, value, db=getattr(store._dbs, db))


# Enqueue and cancel with object writes


def test_put_queues_exactly_one_job_per_cid(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k1", "cid-a", now=100.0)
    job = outbox.pin_job("cid-a")
    assert job == PinJob(cid="cid-a", name=f"{BUCKET}/k1", bucket=BUCKET, due=100.0, created=100.0)
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "queued" and record.name == f"{BUCKET}/k1"
    assert outbox.pin_outbox_depth() == 1
    put(outbox, "k2", "cid-a", now=200.0)  # a second key, same content (a copy)
    assert outbox.pin_job("cid-a") == job
    assert outbox.pin_outbox_depth() == 1
    put(outbox, "k1", "cid-a", now=300.0)  # rewriting a key with its own CID adds no reference
    assert outbox.pin_job("cid-a") == job


def test_put_of_a_pinned_cid_queues_nothing(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k1", "cid-a")
    finish_all(outbox, 100.0)
    assert outbox.pin_outbox_depth() == 0
    put(outbox, "k2", "cid-a", now=150.0)
    assert outbox.pin_job("cid-a") is None
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "pinned" and record.completions == 1


def test_without_the_outbox_a_put_records_a_local_pin(store: LmdbMetadataStore) -> None:
    assert not store.pin_outbox
    put(store, "k", "cid-a", now=5.0)
    assert store.pin_outbox_depth() == 0
    assert store.pin_status("cid-a") == PinRecord(
        cid="cid-a", state="pinned", name=f"{BUCKET}/k", peers=(("local", "pinned", ""),), updated=5.0
    )
    store.delete_object(BUCKET, "k", unpin_grace=GRACE, now=6.0)
    put(store, "k2", "cid-a", now=7.0)
    record = store.pin_status("cid-a")
    assert record is not None and record.state == "pinned" and store.pin_outbox_depth() == 0


def test_last_reference_going_cancels_the_job(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k1", "cid-a")
    put(outbox, "k2", "cid-a")
    outbox.delete_object(BUCKET, "k1", unpin_grace=GRACE, now=110.0)
    assert outbox.pin_job("cid-a") is not None  # k2 still references it
    outbox.delete_object(BUCKET, "k2", unpin_grace=GRACE, now=120.0)
    assert outbox.pin_job("cid-a") is None
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "unpinning"
    assert outbox.pin_outbox_depth() == 0 and outbox.unpin_queue_depth() == 1


def test_overwrite_moves_the_job_to_the_new_cid(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    put(outbox, "k", "cid-b", now=101.0)
    assert outbox.pin_job("cid-a") is None and outbox.pin_job("cid-b") is not None
    old = outbox.pin_status("cid-a")
    assert old is not None and old.state == "unpinning"


def test_reput_before_the_unpin_queues_the_pin_again(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    finish_all(outbox, 100.0)
    outbox.delete_object(BUCKET, "k", unpin_grace=GRACE, now=110.0)
    put(outbox, "k", "cid-a", now=120.0)
    job = outbox.pin_job("cid-a")
    assert job is not None and job.due == 120.0
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "queued" and record.completions == 1
    assert outbox.unpin_queue_depth() == 0  # the re-put took the unpin back


def test_finish_unpin_forgets_status_and_job(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    finish_all(outbox, 100.0)
    outbox.delete_object(BUCKET, "k", unpin_grace=GRACE, now=110.0)
    assert outbox.claim_due_unpins(110.0 + GRACE, 10) == ["cid-a"]
    assert outbox.finish_unpin("cid-a")
    assert outbox.pin_status("cid-a") is None and outbox.pin_job("cid-a") is None


def test_versions_keep_their_cids_queued_until_the_last_version_goes(outbox: LmdbMetadataStore) -> None:
    outbox.put_bucket_config(BUCKET, "versioning", "Enabled")
    put(outbox, "k", "cid-v1", now=100.0)
    put(outbox, "k", "cid-v2", now=101.0)
    assert {outbox.pin_job("cid-v1") is not None, outbox.pin_job("cid-v2") is not None} == {True}
    outbox.delete_object(BUCKET, "k", unpin_grace=GRACE, now=102.0)  # a delete marker: both stay referenced
    assert outbox.pin_outbox_depth() == 2
    versions = outbox.list_versions(
        BUCKET, prefix="", delimiter="", key_marker="", version_id_marker="", max_keys=10
    ).versions
    v1 = next(meta for meta, _ in versions if meta.cid == "cid-v1")
    outbox.delete_version(BUCKET, "k", v1.version_id, unpin_grace=GRACE, now=103.0)
    assert outbox.pin_job("cid-v1") is None and outbox.pin_job("cid-v2") is not None
    record = outbox.pin_status("cid-v1")
    assert record is not None and record.state == "unpinning"


def test_multipart_complete_queues_the_final_cid_only(outbox: LmdbMetadataStore) -> None:
    outbox.create_upload(UploadMeta("u1", BUCKET, "big", 1.0))
    for number in (1, 2):
        part = PartMeta(number, f"cid-part{number}", 5, f"{number:032x}", 2.0)
        outbox.put_part("u1", part, unpin_grace=GRACE, now=2.0)
    assert outbox.pin_outbox_depth() == 0  # parts are pinned by their add, not through the outbox
    outbox.complete_upload("u1", make_meta("big", "cid-final", parts=(5, 5)), unpin_grace=GRACE, now=3.0)
    assert outbox.pin_outbox_depth() == 1
    assert outbox.pin_job("cid-final") is not None
    for number in (1, 2):
        assert outbox.pin_job(f"cid-part{number}") is None
        assert outbox.pin_status(f"cid-part{number}") is None


# Claims, leases and seq-guarded finishes


def test_claim_leases_due_jobs_only(outbox: LmdbMetadataStore) -> None:
    put(outbox, "a", "cid-a", now=100.0)
    put(outbox, "b", "cid-b", now=200.0)
    claimed = outbox.claim_pin_jobs(150.0, 10, lease=LEASE)
    assert [job.cid for job in claimed] == ["cid-a"]
    assert claimed[0].state == "inflight" and claimed[0].due == 150.0 + LEASE
    assert outbox.pin_job("cid-a") == claimed[0]
    assert outbox.claim_pin_jobs(150.0 + LEASE - 1, 10, lease=LEASE) == []  # leased: nobody else gets it
    # The claimer died: once the lease ran out the job is claimable again.
    again = outbox.claim_pin_jobs(181.0, 10, lease=LEASE)
    assert [job.cid for job in again] == ["cid-a"] and again[0].due == 181.0 + LEASE
    assert sorted(job.cid for job in outbox.claim_pin_jobs(250.0, 10, lease=LEASE)) == ["cid-a", "cid-b"]


def test_claim_respects_the_limit_in_due_order(outbox: LmdbMetadataStore) -> None:
    for i in range(5):
        put(outbox, f"k{i}", f"cid-{i}", now=100.0 - i)
    assert [job.cid for job in outbox.claim_pin_jobs(100.0, 2, lease=LEASE)] == ["cid-4", "cid-3"]
    assert outbox.claim_pin_jobs(100.0, 0, lease=LEASE) == []


def test_requeue_inflight_pins(outbox: LmdbMetadataStore) -> None:
    put(outbox, "a", "cid-a", now=100.0)
    put(outbox, "b", "cid-b", now=100.0)
    outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    assert outbox.requeue_inflight_pins(110.0) == 1
    states = {cid: outbox.pin_job(cid) for cid in ("cid-a", "cid-b")}
    assert all(job is not None and job.state == "queued" for job in states.values())
    assert sorted(job.cid for job in outbox.claim_pin_jobs(110.0, 10, lease=LEASE)) == ["cid-a", "cid-b"]
    assert outbox.requeue_inflight_pins(111.0) == 2


def test_requeue_looks_at_the_state_not_at_the_name(outbox: LmdbMetadataStore) -> None:
    # A queued job whose name holds the text `"inflight"` must keep its (backoff) due time.
    put(outbox, 'x"inflight', "cid-a", now=100.0)
    job = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)[0]
    assert outbox.reschedule_pin_job(dataclasses.replace(job, due=900.0), pinned(job))
    assert outbox.requeue_inflight_pins(110.0) == 0
    still = outbox.pin_job("cid-a")
    assert still is not None and still.due == 900.0


def test_finish_of_a_stale_claim_keeps_the_new_job(outbox: LmdbMetadataStore) -> None:
    put(outbox, "a", "cid-a", now=100.0)
    (old,) = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    assert outbox.queue_pins(["cid-a"], now=105.0, force=True) == 1  # re-queued meanwhile
    newer = outbox.pin_job("cid-a")
    assert newer is not None and newer.seq == old.seq + 1 and newer.state == "queued"
    assert not outbox.finish_pin_job(old, pinned(old))
    assert not outbox.reschedule_pin_job(dataclasses.replace(old, due=999.0), pinned(old))
    assert outbox.pin_job("cid-a") == newer
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "queued" and record.completions == 0
    (current,) = outbox.claim_pin_jobs(105.0, 1, lease=LEASE)
    assert outbox.finish_pin_job(current, pinned(current))
    assert not outbox.finish_pin_job(current, pinned(current))  # a second finish changes nothing
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "pinned" and record.completions == 1
    assert outbox.pin_job("cid-a") is None


def test_finish_of_a_cancelled_job_writes_nothing(outbox: LmdbMetadataStore) -> None:
    put(outbox, "a", "cid-a")
    (job,) = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    outbox.delete_object(BUCKET, "a", unpin_grace=GRACE, now=101.0)
    assert not outbox.finish_pin_job(job, pinned(job))
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "unpinning"


def test_reschedule_moves_the_due_index(outbox: LmdbMetadataStore) -> None:
    put(outbox, "a", "cid-a", now=100.0)
    (job,) = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    error = PinRecord(cid="cid-a", state="error", name=job.name, error="boom", updated=100.0, attempts=1)
    later = dataclasses.replace(job, due=500.0, attempts=1, phase="verify")
    assert outbox.reschedule_pin_job(later, error)
    stored = outbox.pin_job("cid-a")
    assert stored == dataclasses.replace(later, state="queued")
    assert outbox.pin_status("cid-a") == error
    # Neither the old due time nor the lease expiry is left in the index.
    assert outbox.claim_pin_jobs(499.0, 10, lease=LEASE) == []
    with outbox._env.begin() as txn:
        assert txn.stat(outbox._dbs.pin_due)["entries"] == 1
    (again,) = outbox.claim_pin_jobs(500.0, 10, lease=LEASE)
    assert again.phase == "verify" and again.attempts == 1


# A pin acknowledged by the cluster (ack: cluster) finishes the job its pin satisfies


def acked(cid: str, name: str = f"{BUCKET}/k", extra: int = 0) -> PinRecord:
    """The status confirm_replication records: pinned with the bucket's policy, no extra replicas."""
    return PinRecord(
        cid=cid, state="pinned", name=name, peers=(("p1", "pinned", ""),), updated=150.0, replication_min=1, extra=extra
    )


def test_mark_pinned_finishes_the_job_of_the_put(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    assert outbox.mark_pinned(acked("cid-a"))
    assert outbox.pin_job("cid-a") is None and outbox.pin_outbox_depth() == 0
    assert outbox.claim_pin_jobs(1e9, 10, lease=LEASE) == []  # nothing left for the orchestrator to redo
    assert outbox.pin_status("cid-a") == dataclasses.replace(acked("cid-a"), completions=1)
    assert outbox.mark_pinned(acked("cid-a"))  # a second acknowledgement completes nothing more
    record = outbox.pin_status("cid-a")
    assert record is not None and record.completions == 1


def test_mark_pinned_finishes_a_job_in_any_phase(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    (job,) = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    verifying = dataclasses.replace(job, phase="verify", attempts=2, due=120.0)
    assert outbox.reschedule_pin_job(verifying, dataclasses.replace(pinned(job), state="error"))
    assert outbox.mark_pinned(acked("cid-a"))
    assert outbox.pin_job("cid-a") is None
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "pinned" and record.completions == 1


def test_mark_pinned_and_a_claim_in_flight_complete_once(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    (claimed,) = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    assert outbox.mark_pinned(acked("cid-a"))
    # The orchestrator's claim lost its job: its finish and its reschedule write nothing.
    assert not outbox.finish_pin_job(claimed, pinned(claimed))
    assert not outbox.reschedule_pin_job(dataclasses.replace(claimed, due=999.0), pinned(claimed))
    record = outbox.pin_status("cid-a")
    assert record is not None and record.completions == 1 and record.updated == 150.0
    assert outbox.pin_job("cid-a") is None


def test_mark_pinned_after_the_orchestrator_finished_completes_nothing_more(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    finish_all(outbox, 100.0)
    assert outbox.mark_pinned(acked("cid-a"))
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "pinned" and record.completions == 1


def test_mark_pinned_keeps_a_job_asking_for_more_replicas(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    assert outbox.queue_pins(["cid-a"], now=110.0, extra=2) == 1  # the dynamic policy boosted it
    boosted = outbox.pin_job("cid-a")
    assert outbox.mark_pinned(acked("cid-a"))
    assert outbox.pin_job("cid-a") == boosted
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "pinned" and record.completions == 0


def test_mark_pinned_keeps_the_job_of_another_buckets_policy(outbox: LmdbMetadataStore) -> None:
    outbox.create_bucket(make_bucket(OTHER))
    put(outbox, "k", "cid-a")  # queued with the policy of BUCKET
    outbox.put_object(make_meta("k2", "cid-a", bucket=OTHER), unpin_grace=GRACE, now=101.0)
    job = outbox.pin_job("cid-a")
    assert job is not None and job.bucket == BUCKET
    assert outbox.mark_pinned(acked("cid-a", name=f"{OTHER}/k2"))  # the ack pinned it with OTHER's policy
    assert outbox.pin_job("cid-a") == job
    (claimed,) = outbox.claim_pin_jobs(200.0, 1, lease=LEASE)
    assert outbox.finish_pin_job(claimed, pinned(claimed))
    record = outbox.pin_status("cid-a")
    assert record is not None and record.completions == 1


def test_mark_pinned_of_an_unreferenced_cid_writes_nothing(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    outbox.delete_object(BUCKET, "k", unpin_grace=GRACE, now=110.0)
    assert not outbox.mark_pinned(acked("cid-a"))
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "unpinning" and record.completions == 0
    assert outbox.unpin_queue_depth() == 1


# The last reference going stamps the status with the caller's time


def test_cancel_on_overwrite_is_stamped_with_the_callers_time(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a", now=100.0)
    put(outbox, "k", "cid-b", now=101.0)
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "unpinning" and record.updated == 101.0


def test_cancel_of_a_replaced_null_version_is_stamped_with_the_callers_time(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a", now=100.0)  # before versioning: becomes the "null" version
    outbox.put_bucket_config(BUCKET, "versioning", "Enabled")
    put(outbox, "k", "cid-b", now=101.0)  # the null version is kept as noncurrent
    outbox.put_bucket_config(BUCKET, "versioning", "Suspended")
    put(outbox, "k", "cid-c", now=102.0)  # replaces the null version: cid-a loses its last reference
    record = outbox.pin_status("cid-a")
    assert record is not None and record.state == "unpinning" and record.updated == 102.0


def drain(store: LmdbMetadataStore, now: float, batch: int) -> Counter[str]:
    finished: Counter[str] = Counter()
    while jobs := store.claim_pin_jobs(now, batch, lease=LEASE):
        for job in jobs:
            finished[job.cid] += 1
            assert store.finish_pin_job(job, pinned(job))
    return finished


def put_many(store: LmdbMetadataStore, count: int) -> list[str]:
    cids = [f"cid-{i:04d}" for i in range(count)]
    for i, cid in enumerate(cids):
        put(store, f"k{i:04d}", cid, now=float(i % 17))  # due times out of key order
    return cids


def assert_each_completed_once(store: LmdbMetadataStore, cids: list[str]) -> None:
    assert store.pin_outbox_depth() == 0
    records = store.pin_statuses(limit=10_000)
    assert [r.cid for r in records] == sorted(cids)
    assert {(r.state, r.completions) for r in records} == {("pinned", 1)}


def test_thousand_jobs_drain_exactly_once(outbox: LmdbMetadataStore) -> None:
    cids = put_many(outbox, 1000)
    finished = drain(outbox, 100.0, batch=37)
    assert sorted(finished) == cids and set(finished.values()) == {1}
    assert_each_completed_once(outbox, cids)


def test_drain_survives_a_close_between_claim_and_finish(store_path: Path) -> None:
    store = open_store(store_path)
    store.create_bucket(make_bucket())
    cids = put_many(store, 1000)
    first = drain_some(store, batches=2)
    orphaned = store.claim_pin_jobs(100.0, 250, lease=LEASE)  # claimed, never finished
    store.close()
    reopened = open_store(store_path)
    try:
        assert reopened.requeue_inflight_pins(100.0) == len(orphaned) == 250
        rest = drain(reopened, 100.0, batch=64)
        assert not set(rest) & set(first)
        assert sorted(first + list(rest)) == cids
        assert_each_completed_once(reopened, cids)
    finally:
        reopened.close()


def drain_some(store: LmdbMetadataStore, *, batches: int) -> list[str]:
    done: list[str] = []
    for _ in range(batches):
        for job in store.claim_pin_jobs(100.0, 100, lease=LEASE):
            assert store.finish_pin_job(job, pinned(job))
            done.append(job.cid)
    return done


def claim_then_die(path: str) -> None:
    """In a spawned child: finish one batch, claim another, then SIGKILL ourselves mid-work."""
    store = open_store(Path(path))
    drain_some(store, batches=1)
    store.claim_pin_jobs(100.0, 300, lease=LEASE)
    os.kill(os.getpid(), signal.SIGKILL)


def test_drain_survives_kill_9_between_claim_and_finish(store_path: Path) -> None:
    store = open_store(store_path)
    store.create_bucket(make_bucket())
    cids = put_many(store, 1000)
    store.close()
    child = multiprocessing.get_context("spawn").Process(target=claim_then_die, args=(str(store_path),))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    reopened = open_store(store_path)
    try:
        assert reopened.pin_state_counts()["pinned"] == 100
        assert reopened.requeue_inflight_pins(100.0) == 300
        rest = drain(reopened, 100.0, batch=128)
        assert len(rest) == 900 and set(rest.values()) == {1}
        assert_each_completed_once(reopened, cids)
    finally:
        reopened.close()


# Listings, counts, batch queueing


def test_pin_statuses_pages_and_filters(outbox: LmdbMetadataStore) -> None:
    cids = [f"cid-{i:02d}" for i in range(25)]
    for i, cid in enumerate(cids):
        put(outbox, f"k{i}", cid)
    for job in outbox.claim_pin_jobs(100.0, 10, lease=LEASE):  # the 10 first (equal due: CID order)
        outbox.finish_pin_job(job, pinned(job))
    pages: list[list[str]] = []
    after = ""
    while page := outbox.pin_statuses(after=after, limit=10):
        pages.append([r.cid for r in page])
        after = page[-1].cid
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [cid for p in pages for cid in p] == cids
    assert [r.cid for r in outbox.pin_statuses(state="pinned")] == cids[:10]
    assert [r.cid for r in outbox.pin_statuses(state="queued", after="cid-12", limit=3)] == cids[13:16]
    assert outbox.pin_statuses(state="error") == []
    assert outbox.pin_statuses(after="zzz") == []
    with pytest.raises(ValueError, match="unknown pin state"):
        outbox.pin_statuses(state="bogus")


def test_pin_state_counts(outbox: LmdbMetadataStore) -> None:
    for i in range(4):
        put(outbox, f"k{i}", f"cid-{i}")
    (job,) = outbox.claim_pin_jobs(100.0, 1, lease=LEASE)
    outbox.finish_pin_job(job, pinned(job))
    outbox.delete_object(BUCKET, "k3", unpin_grace=GRACE, now=101.0)
    assert outbox.pin_state_counts() == {"queued": 2, "pinning": 0, "pinned": 1, "error": 0, "unpinning": 1}
    assert outbox.pin_outbox_depth() == 2


def test_queue_pins_skips_unreferenced_and_part_only_cids(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    finish_all(outbox, 100.0)
    outbox.create_upload(UploadMeta("u1", BUCKET, "big", 1.0))
    outbox.put_part("u1", PartMeta(1, "cid-part", 5, "0" * 32, 2.0), unpin_grace=GRACE, now=2.0)
    assert outbox.queue_pins(["cid-a", "cid-none", "cid-part"], now=200.0, extra=2) == 1
    job = outbox.pin_job("cid-a")
    assert job is not None and job.extra == 2 and job.due == 200.0 and job.name == f"{BUCKET}/k"
    assert outbox.pin_job("cid-none") is None and outbox.pin_job("cid-part") is None
    # The boost is remembered in the status once the job finished, and carried into the next enqueue.
    (claimed,) = outbox.claim_pin_jobs(200.0, 1, lease=LEASE)
    assert outbox.finish_pin_job(claimed, dataclasses.replace(pinned(claimed), extra=claimed.extra))
    assert outbox.queue_pins(["cid-a"], now=300.0) == 1
    again = outbox.pin_job("cid-a")
    assert again is not None and again.extra == 2


def test_queue_pins_without_force_leaves_pinned_cids(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    finish_all(outbox, 100.0)
    outbox.queue_pins(["cid-a"], now=200.0, force=False)
    assert outbox.pin_job("cid-a") is None


def test_referenced_cids_pages_and_skips_parts(outbox: LmdbMetadataStore) -> None:
    for i in range(7):
        put(outbox, f"k{i}", f"cid-{i}")
    put(outbox, "copy", "cid-3")
    outbox.create_upload(UploadMeta("u1", BUCKET, "big", 1.0))
    outbox.put_part("u1", PartMeta(1, "cid-4x-part", 5, "0" * 32, 2.0), unpin_grace=GRACE, now=2.0)
    first = outbox.referenced_cids(limit=4)
    assert [cid for cid, _, _ in first] == ["cid-0", "cid-1", "cid-2", "cid-3"]
    assert first[0] == ("cid-0", BUCKET, "k0")
    rest = outbox.referenced_cids(after=first[-1][0], limit=100)
    assert [cid for cid, _, _ in rest] == ["cid-4", "cid-5", "cid-6"]
    assert outbox.referenced_cids(after="cid-6") == []


def test_referenced_cids_names_a_version_only_cid(outbox: LmdbMetadataStore) -> None:
    outbox.put_bucket_config(BUCKET, "versioning", "Enabled")
    put(outbox, "k", "cid-old", now=100.0)
    put(outbox, "k", "cid-new", now=101.0)
    assert outbox.referenced_cids() == [("cid-new", BUCKET, "k"), ("cid-old", BUCKET, "k")]


def test_a_version_only_cid_is_named_by_its_version_row(outbox: LmdbMetadataStore) -> None:
    # The status keeps the name of the first key (BUCKET/a), which no longer references the CID.
    outbox.create_bucket(make_bucket(OTHER))
    outbox.put_bucket_config(OTHER, "versioning", "Enabled")
    put(outbox, "a", "cid-x", now=100.0)
    outbox.put_object(make_meta("b", "cid-x", bucket=OTHER), unpin_grace=GRACE, now=101.0)
    outbox.put_object(make_meta("b", "cid-y", bucket=OTHER), unpin_grace=GRACE, now=102.0)
    outbox.delete_object(BUCKET, "a", unpin_grace=GRACE, now=103.0)
    record = outbox.pin_status("cid-x")
    assert record is not None and record.name == f"{BUCKET}/a"
    assert ("cid-x", OTHER, "b") in outbox.referenced_cids()
    assert outbox.queue_pins(["cid-x"], now=200.0) == 1
    job = outbox.pin_job("cid-x")
    assert job is not None and (job.bucket, job.name) == (OTHER, f"{OTHER}/b")  # OTHER's policy applies


def test_a_version_only_cid_without_a_status_is_named(outbox: LmdbMetadataStore) -> None:
    outbox.put_bucket_config(BUCKET, "versioning", "Enabled")
    put(outbox, "k", "cid-old", now=100.0)
    put(outbox, "k", "cid-new", now=101.0)
    with outbox._env.begin(write=True) as txn:  # a status lost (or never written, before schema 3)
        txn.delete(b"cid-old", db=outbox._dbs.pin_status)
    assert outbox.referenced_cids() == [("cid-new", BUCKET, "k"), ("cid-old", BUCKET, "k")]
    assert outbox.queue_pins(["cid-old"], now=200.0) == 1
    job = outbox.pin_job("cid-old")
    assert job is not None and (job.bucket, job.name) == (BUCKET, f"{BUCKET}/k")


def test_a_reference_to_a_missing_version_row_is_skipped(outbox: LmdbMetadataStore) -> None:
    outbox.put_bucket_config(BUCKET, "versioning", "Enabled")
    put(outbox, "k", "cid-old", now=100.0)
    put(outbox, "k", "cid-new", now=101.0)
    with outbox._env.begin(write=True) as txn:
        txn.drop(outbox._dbs.versions, delete=False)  # the version rows went; their cid_refs entries stayed
    assert outbox.referenced_cids() == [("cid-new", BUCKET, "k")]
    assert outbox.queue_pins(["cid-old"], now=200.0) == 0


# Access statistics


def test_access_scores_decay_by_half_life(outbox: LmdbMetadataStore) -> None:
    outbox.record_access({"cid-a": 4, "cid-b": 1}, now=0.0, half_life=10.0)
    scores = outbox.access_scores(now=10.0, half_life=10.0)
    assert scores == pytest.approx({"cid-a": 2.0, "cid-b": 0.5})
    outbox.record_access({"cid-a": 1}, now=10.0, half_life=10.0)  # 2 decayed + 1
    assert outbox.access_scores(now=20.0, half_life=10.0)["cid-a"] == pytest.approx(1.5)
    assert len(outbox.access_scores(now=20.0, half_life=10.0, limit=1)) == 1


def test_access_scores_prune_what_decayed_away(outbox: LmdbMetadataStore) -> None:
    outbox.record_access({"cid-a": 1, "cid-b": 1000}, now=0.0, half_life=1.0)
    raw_put(outbox, "access_stats", b"cid-bad", b"short")  # a row of the wrong size is dropped too
    later = outbox.access_scores(now=12.0, half_life=1.0)  # a: 2**-12 < 1e-3 goes; b: ~0.24 stays
    assert set(later) == {"cid-b"} and later["cid-b"] == pytest.approx(1000 * math.pow(0.5, 12))
    assert set(outbox.access_scores(now=0.0, half_life=1.0)) == {"cid-b"}  # a's row is gone for good


# Malformed rows are domain errors

OVERFLOW_ROW = b'["n","b",1' + b"0" * 400 + b',"pin","queued",0,0,0,0,0]'  # a due time no float holds


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        b"not json",
        b"null",
        b"[]",
        b'{"a": 1}',
        b'["n","b","soon","pin","queued",0,0,0,0,0]',
        b"[1e999999]",
        OVERFLOW_ROW,
    ],
)
def test_malformed_job_rows_are_backend_errors(outbox: LmdbMetadataStore, raw: bytes) -> None:
    put(outbox, "k", "cid-a")
    raw_put(outbox, "pin_jobs", b"cid-a", raw)
    with pytest.raises(BackendError, match="pin job"):
        outbox.pin_job("cid-a")
    with pytest.raises(BackendError, match="pin job"):
        outbox.claim_pin_jobs(100.0, 10, lease=LEASE)
    assert outbox.pin_outbox_depth() == 1


def test_malformed_inflight_row_stops_the_requeue(outbox: LmdbMetadataStore) -> None:
    put(outbox, "k", "cid-a")
    raw_put(outbox, "pin_jobs", b"cid-a", b'["n","b",1,"pin","inflight"]')
    with pytest.raises(BackendError, match="malformed pin job"):
        outbox.requeue_inflight_pins(100.0)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x80",
        b"{",
        b"7",
        b'["queued"]',
        b'["queued","n",[["p","pinned"]],"",0,0,0,0,0]',
        b'["queued","n",5,"",0,0,0,0,0]',
        b'["queued","n",[],"",0,"x",0,0,0]',
        b'["queued","n",[],"",0,0,' + b"9" * 5000 + b",0,0]",
    ],
)
def test_malformed_status_rows_are_backend_errors(outbox: LmdbMetadataStore, raw: bytes) -> None:
    put(outbox, "k", "cid-a")
    raw_put(outbox, "pin_status", b"cid-a", raw)
    for call in (
        lambda: outbox.pin_status("cid-a"),
        outbox.pin_statuses,
        outbox.pin_state_counts,
        lambda: put(outbox, "k2", "cid-a"),
    ):
        with pytest.raises(BackendError, match="pin status"):
            call()
