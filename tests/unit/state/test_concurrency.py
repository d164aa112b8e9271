"""Several processes and threads sharing one store: nothing lost, refcounts right, claims exclusive."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from appliance.state import LmdbMetadataStore, migrations
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta, put_many_worker

WORKERS = 4
PER_WORKER = 150


def expected_rows() -> dict[str, str]:
    """key -> cid after every worker ran put_many_worker."""
    rows: dict[str, str] = {}
    for worker in range(WORKERS):
        for i in range(PER_WORKER):
            rows[f"w{worker}/k{i:04d}"] = f"own-{worker}-{i}" if i % 5 == 0 else f"shared-{i % 10}"
        for i in range(0, PER_WORKER, 7):
            del rows[f"w{worker}/k{i:04d}"]
    return rows


def test_processes_share_one_store(store_path: Path) -> None:
    # The parent keeps the store open while spawned children open (and stamp) it concurrently.
    parent = LmdbMetadataStore(store_path, map_size=1 << 28)
    try:
        parent.create_bucket(make_bucket())
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(target=put_many_worker, args=(str(store_path), worker, PER_WORKER)) for worker in range(WORKERS)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
        assert [proc.exitcode for proc in procs] == [0] * WORKERS
        rows = expected_rows()
        listed = parent.list_objects(BUCKET, max_keys=100_000)
        assert {o.key: o.cid for o in listed.objects} == rows
        for cid, count in Counter(rows.values()).items():
            assert parent.cid_refcount(cid) == count
            assert len(parent.objects_by_cid(cid)) == count
        # Unreferenced now, each queued once: every own-* CID whose row was deleted (i % 35 == 0), and
        # shared-0 / shared-5, whose rows were all overwritten (i % 5 == 0).
        orphaned = {f"own-{w}-{i}" for w in range(WORKERS) for i in range(0, PER_WORKER, 35)}
        orphaned |= {"shared-0", "shared-5"}
        assert parent.unpin_queue_depth() == len(orphaned)
        assert set(parent.claim_due_unpins(1000.0 + GRACE, 1000)) == orphaned
        assert parent.stats()["objects"] == len(rows)
    finally:
        parent.close()


def test_fresh_store_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    LmdbMetadataStore(path).close()  # the bucket must exist before the workers write
    store = LmdbMetadataStore(path)
    store.create_bucket(make_bucket())
    store.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=put_many_worker, args=(str(path), worker, 20)) for worker in range(WORKERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * WORKERS
    store = LmdbMetadataStore(path)
    try:
        assert store.schema_version() == migrations.CURRENT_VERSION
        assert len(store.list_objects(BUCKET).objects) == WORKERS * (20 - 3)
    finally:
        store.close()


def test_threads_share_one_store(store: LmdbMetadataStore) -> None:
    def work(worker: int) -> None:
        for i in range(200):
            key = f"t{worker}/k{i % 50}"
            if i % 3 == 2:
                store.delete_object(BUCKET, key, unpin_grace=GRACE, now=0.0)
            else:
                store.put_object(make_meta(key, cid=f"c{(worker + i) % 7}"), unpin_grace=GRACE, now=0.0)
            if i % 10 == 0:
                store.list_objects(BUCKET, delimiter="/")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    rows = {o.key: o.cid for o in store.list_objects(BUCKET, max_keys=100_000).objects}
    counts = Counter(rows.values())
    for cid in (f"c{n}" for n in range(7)):
        assert store.cid_refcount(cid) == counts[cid]
    # Exactly the CIDs no row references any more are queued for unpinning.
    assert set(store.claim_due_unpins(1e9, 100)) == {f"c{n}" for n in range(7) if counts[f"c{n}"] == 0}
    assert store.stats()["objects"] == len(rows)


def test_claims_are_exclusive_across_threads(store: LmdbMetadataStore) -> None:
    for i in range(300):
        store.release_if_unreferenced(f"orphan-{i}", unpin_grace=0.0, now=0.0)
    claimed: list[str] = []
    lock = threading.Lock()

    def claim() -> None:
        while batch := store.claim_due_unpins(1.0, 7):
            with lock:
                claimed.extend(batch)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(f"orphan-{i}" for i in range(300))


async def test_calls_through_asyncio_to_thread(store: LmdbMetadataStore) -> None:
    await asyncio.gather(
        *(
            asyncio.to_thread(store.put_object, make_meta(f"async/{i}", cid="same"), unpin_grace=GRACE, now=0.0)
            for i in range(64)
        )
    )
    page = await asyncio.to_thread(store.list_objects, BUCKET, prefix="async/")
    assert len(page.objects) == 64
    assert await asyncio.to_thread(store.cid_refcount, "same") == 64
