"""Reconcile against a fake pinner over a real LMDB store: missing pins re-queued, errors recovered, our orphans
released after the grace, foreign pins untouched, dry runs change nothing, and a job that finishes while the pinset
is being listed is not queued a second time (exactly-once completions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.errors import BackendUnavailable
from appliance.model import PinReport
from appliance.service.pin_orchestrator import PIN_METADATA
from appliance.service.pin_reconcile import Reconciler
from appliance.state import LmdbMetadataStore
from tests.unit.service.test_pin_orchestrator import Clock, FakePinner, Rig, make_rig, report

GRACE = 60.0


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    from tests.unit.state.support import make_bucket

    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    store.create_bucket(make_bucket())
    return make_rig(store)


def reconciler(rig: Rig, woken: list[int] | None = None) -> Reconciler:
    return Reconciler(
        rig.store,
        rig.pinner,
        orphan_grace=GRACE,
        clock=rig.clock,
        on_queued=(lambda: woken.append(1)) if woken is not None else (lambda: None),
    )


async def drain(rig: Rig) -> None:
    for _ in range(4):
        await rig.orchestrator.run_once()
        rig.clock.now += 5.0


class ClusterFake(FakePinner):
    kind = "cluster"

    def __init__(self) -> None:
        super().__init__()
        self.extra: dict[str, PinReport] = {}  # pins in the pinset the metadata does not know

    async def pinset(self) -> AsyncIterator[PinReport]:
        async for item in super().pinset():
            yield item
        for item in self.extra.values():
            yield item


def ours(cid: str) -> PinReport:
    base = report(cid, "pinned", "pinned")
    return PinReport(cid=cid, peers=base.peers, allocations=("peer-a",), metadata=tuple(sorted(PIN_METADATA.items())))


async def test_missing_pins_are_queued_again_and_pinned_once(rig: Rig) -> None:
    rig.put("a", "cid-a")
    await drain(rig)
    assert rig.status("cid-a").state == "pinned" and rig.status("cid-a").completions == 1
    rig.pinner.pinned.pop("cid-a")  # the cluster lost it
    woken: list[int] = []
    found = await reconciler(rig, woken).run()
    assert (found.referenced, found.missing, found.queued) == (1, 1, 1)
    assert found.samples["missing"] == ["cid-a"] and woken == [1]
    await drain(rig)
    assert "cid-a" in rig.pinner.pinned
    assert rig.status("cid-a").completions == 2  # a second job, run once


async def test_dry_run_reports_and_changes_nothing(rig: Rig) -> None:
    rig.put("a", "cid-a")
    await drain(rig)
    rig.pinner.pinned.pop("cid-a")
    calls = len(rig.pinner.calls)
    found = await reconciler(rig).run(dry_run=True)
    assert found.dry_run and found.missing == 1 and found.queued == 0
    assert rig.store.pin_job("cid-a") is None
    assert len(rig.pinner.calls) == calls  # no pin, recover or unpin
    assert reconciler(rig).last is None


async def test_errored_pins_are_recovered_and_tracked(rig: Rig) -> None:
    rig.put("a", "cid-a")
    await drain(rig)
    rig.pinner.statuses["cid-a"] = [report("cid-a", "pinned", ("pin_error", "disk full"))]
    found = await reconciler(rig).run()
    assert (found.errored, found.recovered, found.queued) == (1, 1, 1)
    assert ("recover", "cid-a") in rig.pinner.calls
    assert rig.store.pin_job("cid-a") is not None


async def test_a_job_finished_during_the_listing_is_not_queued_again(rig: Rig) -> None:
    rig.put("a", "cid-race")
    pinner = rig.pinner

    async def stale_pinset() -> AsyncIterator[PinReport]:
        snapshot = list(pinner.pinned)  # the listing starts before the pin exists...
        await drain(rig)  # ...and the job pins, verifies and finishes meanwhile
        for cid in snapshot:
            yield await pinner.status(cid)

    pinner.pinset = stale_pinset  # type: ignore[method-assign]
    found = await reconciler(rig).run()
    assert found.missing == 1 and found.queued == 0
    assert rig.store.pin_job("cid-race") is None
    await drain(rig)
    assert rig.status("cid-race").completions == 1


async def test_our_orphans_are_released_after_the_grace_and_foreign_pins_never(tmp_path: Path) -> None:
    from tests.unit.state.support import make_bucket

    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    store.create_bucket(make_bucket())
    try:
        pinner = ClusterFake()
        pinner.extra["cid-orphan"] = ours("cid-orphan")
        pinner.extra["cid-foreign"] = report("cid-foreign", "pinned")
        clock = Clock()
        rec = Reconciler(store, pinner, orphan_grace=GRACE, clock=clock)
        found = await rec.run()
        assert (found.orphans, found.orphans_queued, found.foreign) == (1, 1, 1)
        assert store.claim_due_unpins(clock.now, 10) == []  # not before the grace
        assert store.claim_due_unpins(clock.now + GRACE + 1, 10) == ["cid-orphan"]
        assert ("unpin", "cid-foreign") not in pinner.calls
    finally:
        store.close()


async def test_a_local_pinner_never_releases_unreferenced_pins(rig: Rig) -> None:
    rig.pinner.pinned["cid-other"] = rig.pinner.pinned.get("cid-other") or rig.policies.defaults
    found = await reconciler(rig).run()
    assert found.orphans == 0 and found.foreign == 1
    assert rig.store.claim_due_unpins(rig.clock.now + 10 * GRACE, 10) == []


async def test_an_unreachable_pinner_is_a_failure_in_the_report(rig: Rig) -> None:
    rig.put("a", "cid-a")

    async def down() -> AsyncIterator[PinReport]:
        raise BackendUnavailable("no endpoint answered")
        yield  # pragma: no cover

    rig.pinner.pinset = down  # type: ignore[method-assign]
    rec = reconciler(rig)
    found = await rec.run()
    assert found.failures == ["no endpoint answered"]
    assert rec.last is found and not rec.running
