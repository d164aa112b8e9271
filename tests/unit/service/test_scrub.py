"""The scrub service on a real LMDB store and the real DAG checker over a fake node: clean runs, missing blocks
(js-ipfs and Kubo styles), wrong hashes, malformed nodes, size mismatches, pins not where the policy says, repairs,
re-checks of read reports, resume after a stop, pacing, cancel, one run at a time, a node that goes down."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.model import DAG_PB, Cid, DamageReport, ObjectMeta, PartMeta, ReplicationPolicy, UploadMeta
from appliance.service.pin_policy import PolicyBook
from appliance.service.scrub import Scrubber, ScrubBusy
from appliance.service.scrub_run import ScrubOptions
from appliance.state import LmdbMetadataStore
from tests.unit.service.scrub_fakes import FakeNode, Sleeper, make_scrubber, open_store, put_file
from tests.unit.service.test_pin_orchestrator import FakePinner, report
from tests.unit.state.support import BUCKET, GRACE


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = open_store(tmp_path / "meta")
    yield opened
    opened.close()


async def run_once(scrubber: Scrubber, **options: object) -> dict[str, object]:
    await scrubber.start(ScrubOptions(**options))  # type: ignore[arg-type]
    run = await scrubber.wait()
    assert run is not None and run.state in ("done", "failed", "cancelled")
    return run.summary()


async def test_clean_run_counts_blocks_and_keeps_a_summary(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    files = [put_file(store, node, f"k{i}", os.urandom(10)) for i in range(3)]
    summary = await run_once(make_scrubber(store, node))
    assert summary["state"] == "done"
    assert summary["objects_checked"] == 3 and summary["pins_checked"] == 3
    assert summary["blocks_checked"] == sum(len(f.blocks) for f in files)
    assert summary["bytes_checked"] == sum(len(b) for f in files for b in f.blocks.values())
    assert (summary["damaged"], summary["missing"], summary["unrepaired"], summary["pins_wrong"]) == (0, 0, 0, 0)
    assert store.scrub_history()[0]["id"] == summary["id"]
    assert store.scrub_state()["state"] == "done"  # type: ignore[index]
    assert store.damage_count() == 0


@pytest.mark.parametrize("style", ["jsipfs", "kubo"])
async def test_missing_block_is_reported_then_repaired_from_the_peer(store: LmdbMetadataStore, style: str) -> None:
    node = FakeNode(style)
    file = put_file(store, node, "k", b"0123456789ab")
    lost = file.leaves[1]
    del node.blocks[lost]
    summary = await run_once(make_scrubber(store, node))
    assert (summary["missing"], summary["damaged"], summary["unrepaired"], summary["repaired"]) == (1, 0, 1, 0)
    (found,) = store.damage_reports()
    assert (found.block, found.root, found.reason, found.source) == (lost, file.root, "missing", "scrub")
    assert lost not in node.blocks  # a report-only run changes nothing

    summary = await run_once(make_scrubber(store, node), repair=True)
    assert (summary["repaired"], summary["unrepaired"]) == (1, 0)
    assert node.blocks[lost] == file.blocks[lost] and store.damage_count() == 0


async def test_wrong_hash_is_repaired_through_the_pinned_root(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "k", b"0123456789ab")
    bad = file.leaves[0]
    node.blocks[bad] = b"evil"
    summary = await run_once(make_scrubber(store, node))
    assert (summary["damaged"], summary["missing"], summary["unrepaired"]) == (1, 0, 1)
    assert store.damage_reports()[0].reason == "hash mismatch"

    node.calls.clear()
    summary = await run_once(make_scrubber(store, node), repair=True)
    assert (summary["damaged"], summary["repaired"], summary["unrepaired"]) == (1, 1, 0)
    assert node.blocks[bad] == file.blocks[bad]
    assert file.root in node.pins  # pinned again after the exchange
    repair = [c for c in node.calls if not c.startswith("local")]
    assert repair == [f"rm {bad}", f"unpin {file.root}", f"rm {bad}", f"get {bad}", f"pin_fetch {file.root}"]
    assert store.damage_count() == 0


async def test_damaged_inner_node_uncovers_its_children_after_repair(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "k", b"0123456789ab")
    node.pins.discard(file.root)  # not pinned: the corrupt root is removed without a re-pin fetching everything
    node.blocks[file.root] = b"garbage"  # the root node is corrupt: its leaves cannot be reached
    del node.blocks[file.leaves[2]]  # and one leaf is gone too
    summary = await run_once(make_scrubber(store, node), repair=True)
    assert (summary["damaged"], summary["missing"], summary["repaired"], summary["unrepaired"]) == (1, 1, 2, 0)
    assert (summary["pins_wrong"], summary["pins_repaired"]) == (1, 1)
    assert all(node.blocks[c] == b for c, b in file.blocks.items()) and file.root in node.pins


async def test_repinning_a_damaged_root_brings_back_its_missing_blocks(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "k", b"0123456789ab")
    node.blocks[file.root] = b"garbage"
    del node.blocks[file.leaves[2]]  # unseen under the corrupt root; the re-pin after the exchange fetches it
    summary = await run_once(make_scrubber(store, node), repair=True)
    assert (summary["damaged"], summary["missing"], summary["repaired"], summary["unrepaired"]) == (1, 0, 1, 0)
    assert all(node.blocks[c] == b for c, b in file.blocks.items()) and file.root in node.pins


async def test_malformed_node_is_invalid_and_not_repairable(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    directory = b"\x0a\x02\x08\x01"  # dag-pb with UnixFS Data of type Directory: the hash is right, the file is not
    cid = Cid.of_block(directory, DAG_PB).text
    node.blocks[cid] = node.peer[cid] = directory
    node.pins.add(cid)
    store.put_object(ObjectMeta(BUCKET, "dir", cid, 0, "0" * 32, 1.0), unpin_grace=GRACE, now=1.0)
    summary = await run_once(make_scrubber(store, node), repair=True)
    assert (summary["damaged"], summary["repaired"], summary["unrepaired"]) == (1, 0, 1)
    assert store.damage_reports()[0].reason.startswith("malformed: UnixFS node of type 1")
    assert any("write the object again" in str(s.get("repair_failed", "")) for s in summary["samples"])  # type: ignore[attr-defined]


async def test_size_mismatch_with_the_metadata(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "k", b"0123456789ab")
    store.put_object(ObjectMeta(BUCKET, "k", file.root, 13, "0" * 32, 1.0), unpin_grace=GRACE, now=1.0)
    summary = await run_once(make_scrubber(store, node))
    assert (summary["damaged"], summary["unrepaired"]) == (1, 1)
    assert store.damage_reports()[0].reason == "size mismatch: 12 bytes, the object's metadata records 13"


async def test_child_size_mismatch_with_its_parent(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "k", b"0123456789ab")
    # A leaf that hashes right but holds 5 bytes where the parent says 4: swap in another file's root.
    other = put_file(store, node, "other", b"01234", chunk=8)
    wrong = other.leaves[0]
    from appliance.ipfsconn import unixfs

    blocks, root = unixfs.compose_blocks([unixfs.Child(wrong, 4, 4), unixfs.Child(file.leaves[1], 4, 4)])
    node.blocks[root] = node.peer[root] = blocks[-1]
    node.pins.add(root)
    store.put_object(ObjectMeta(BUCKET, "mixed", root, 8, "0" * 32, 1.0), unpin_grace=GRACE, now=1.0)
    summary = await run_once(make_scrubber(store, node), bucket=BUCKET, prefix="mixed")
    assert (summary["objects_checked"], summary["damaged"]) == (1, 1)
    assert store.damage_reports()[0].reason == "size mismatch: 5 bytes, its parent says 4"


async def test_pin_missing_is_reported_and_pinned_again(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "k")
    node.pins.discard(file.root)
    summary = await run_once(make_scrubber(store, node))
    assert (summary["pins_checked"], summary["pins_wrong"], summary["pins_repaired"]) == (1, 1, 0)
    summary = await run_once(make_scrubber(store, node), repair=True)
    assert (summary["pins_wrong"], summary["pins_repaired"]) == (1, 1)
    assert file.root in node.pins


async def test_cluster_pin_below_policy_is_queued_in_the_outbox(tmp_path: Path) -> None:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 28, pin_outbox=True)
    from tests.unit.state.support import make_bucket

    store.create_bucket(make_bucket())
    node = FakeNode()
    file = put_file(store, node, "k")
    for job in store.claim_pin_jobs(2e9, 10, lease=60.0):  # the PUT's job is done
        store.finish_pin_job(job, store.pin_status(job.cid) or _record(job.cid))
    pinner = FakePinner()
    pinner.kind = "cluster"
    pinner.statuses[file.root] = [report(file.root, "pinned", "unpinned", "unpinned")]
    woken: list[bool] = []
    from appliance.ipfsconn.dagcheck import LocalDagChecker
    from tests.unit.service.scrub_fakes import Sleeper

    sleeper = Sleeper()
    scrubber = Scrubber(
        store,
        LocalDagChecker(node, check_deadline=0.5),  # type: ignore[arg-type]
        pinner,
        PolicyBook(store, ReplicationPolicy(2, 2)),
        monotonic=sleeper.monotonic,
        sleep=sleeper.sleep,
        on_queued=lambda: woken.append(True),
    )
    summary = await run_once(scrubber, repair=True)
    assert (summary["pins_wrong"], summary["pins_repaired"]) == (1, 1)
    assert store.pin_job(file.root) is not None and woken == [True]
    store.close()


def _record(cid: str):  # type: ignore[no-untyped-def]
    from appliance.model import PinRecord

    return PinRecord(cid=cid, state="pinned", name=f"{BUCKET}/k")


async def test_same_content_under_two_keys_is_read_once(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    file = put_file(store, node, "a", b"same bytes!")
    store.put_object(ObjectMeta(BUCKET, "b", file.root, file.size, "0" * 32, 1.0), unpin_grace=GRACE, now=1.0)
    summary = await run_once(make_scrubber(store, node))
    assert (summary["objects_checked"], summary["objects_skipped"], summary["pins_checked"]) == (1, 1, 1)


async def test_versions_and_parts_are_walked_and_bucket_prefix_scope(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    store.put_bucket_config(BUCKET, "versioning", "Enabled")
    put_file(store, node, "logs/a")
    old = put_file(store, node, "logs/b")
    put_file(store, node, "logs/b")  # `old` becomes a noncurrent version
    put_file(store, node, "other")
    store.create_upload(UploadMeta("up1", BUCKET, "logs/big", 1.0))
    part = put_file(store, node, "tmp-part")
    store.put_part("up1", PartMeta(1, part.root, part.size, "0" * 32, 1.0), unpin_grace=GRACE, now=1.0)
    del node.blocks[old.leaves[0]]
    summary = await run_once(make_scrubber(store, node), bucket=BUCKET, prefix="logs/")
    # logs/a, logs/b (current), logs/b (noncurrent), the part of logs/big
    assert summary["objects_checked"] == 4 and summary["missing"] == 1
    assert store.damage_reports()[0].root == old.root
    whole = await run_once(make_scrubber(store, node))
    # + other, + tmp-part (the same content as the part: read once)
    assert (whole["objects_checked"], whole["objects_skipped"]) == (5, 1)


async def test_read_reports_are_rechecked_at_the_start(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    good = put_file(store, node, "good", b"0123456789ab")
    bad = put_file(store, node, "bad", b"abcdefghijkl")
    node.blocks[bad.leaves[0]] = b"evil"
    for block, root, reason in (
        (good.leaves[0], good.root, "hash mismatch"),  # fine now (a transient read error)
        ("bafkreiaaaa" + "a" * 48, "bafybeigone" + "a" * 48, "hash mismatch"),  # its object is gone
        (bad.leaves[0], bad.root, "hash mismatch"),  # still bad
    ):
        store.report_damage(DamageReport(block, root, reason, 1.0, 1.0, source="read"))
    summary = await run_once(make_scrubber(store, node), repair=True, bucket=BUCKET, prefix="nothing-here")
    assert (summary["reports_rechecked"], summary["reports_cleared"]) == (3, 2)
    assert (summary["damaged"], summary["repaired"], summary["objects_checked"]) == (1, 1, 0)
    assert store.damage_count() == 0 and node.blocks[bad.leaves[0]] == bad.blocks[bad.leaves[0]]


async def test_rate_paces_objects(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    for i in range(5):
        put_file(store, node, f"k{i}")
    sleeper = Sleeper()
    summary = await run_once(make_scrubber(store, node, sleeper), rate=2.0)
    assert summary["objects_checked"] == 5
    assert sleeper.slept == pytest.approx([0.5] * 4)


async def test_resume_after_a_stop_continues_after_the_last_object(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    files = [put_file(store, node, f"k{i:02d}") for i in range(10)]
    sleeper = Sleeper()
    sleeper.gate, sleeper.free = asyncio.Event(), 4  # the 5th pause never ends: "kill" the daemon there
    first = make_scrubber(store, node, sleeper)
    run = await first.start(ScrubOptions(rate=1.0))
    while len(sleeper.slept) < 5:
        await asyncio.sleep(0.01)
    await first.aclose()  # a shutdown, not a cancel
    stored = store.scrub_state()
    assert stored is not None and stored["state"] == "running"
    done = stored["counters"]["objects_checked"]
    assert done == run.done == 5
    assert (await first.status())["current"]["state"] == "interrupted"

    node.calls.clear()
    second = make_scrubber(store, node)
    resumed = await second.resume()
    assert resumed is not None and resumed.id == run.id
    ended = await second.wait()
    assert ended is not None and ended.state == "done"
    summary = ended.summary()
    assert (summary["objects_checked"], summary["resumes"]) == (10, 1)
    checked_again = {c.split()[1] for c in node.calls if c.startswith("local")}
    assert {f.root for f in files[:done]}.isdisjoint(checked_again)
    assert {f.root for f in files[done:]} <= checked_again
    assert await make_scrubber(store, node).resume() is None  # nothing left to resume


async def test_cancel_records_the_run_as_cancelled(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    for i in range(5):
        put_file(store, node, f"k{i}")
    sleeper = Sleeper()
    sleeper.gate = asyncio.Event()
    scrubber = make_scrubber(store, node, sleeper)
    await scrubber.start(ScrubOptions())
    await asyncio.sleep(0.05)
    assert scrubber.running
    with pytest.raises(ScrubBusy):
        await scrubber.start(ScrubOptions())
    assert scrubber.cancel()
    run = await scrubber.wait()
    assert run is not None and run.state == "cancelled" and not scrubber.running
    assert not scrubber.cancel()
    assert store.scrub_history()[0]["state"] == "cancelled"
    assert await make_scrubber(store, node).resume() is None


async def test_node_down_fails_the_run(store: LmdbMetadataStore) -> None:
    node = FakeNode()
    put_file(store, node, "k")
    node.down = True
    summary = await run_once(make_scrubber(store, node))
    assert summary["state"] == "failed" and "cannot be reached" in str(summary["error"])
    assert summary["missing"] == 0


async def test_unknown_bucket_is_refused(store: LmdbMetadataStore) -> None:
    from appliance.errors import NoSuchBucket

    with pytest.raises(NoSuchBucket):
        await make_scrubber(store, FakeNode()).start(ScrubOptions(bucket="nope"))
    assert store.scrub_state() is None


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan"), 1e9])
def test_options_refuse_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        ScrubOptions(rate=rate)
    with pytest.raises(ValueError, match="prefix"):
        ScrubOptions(prefix="a/")
