"""The pin orchestrator and acknowledger against a scripted fake Pinner and a real LMDB store: success, every
failure recorded with backoff, recover, timeouts, a pinner that raises, policies with dynamic extra replicas; PUTs
acknowledged by the cluster; the unpinner releasing the replica first."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

import pytest
from prometheus_client import CollectorRegistry

from appliance.components import ContentStore
from appliance.errors import BackendError, BackendUnavailable
from appliance.model import AddedContent, PeerInfo, PinRecord, PinReport, ReplicationPolicy
from appliance.pinning.cluster import ClusterError
from appliance.service.objects import ObjectService, PutRequest
from appliance.service.pin_orchestrator import (
    PIN_METADATA,
    OrchestratorSettings,
    PinAcknowledger,
    PinOrchestrator,
)
from appliance.service.pin_policy import PolicyBook
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta

__all__ = ["Body", "FakePinner", "MemoryContent", "as_content", "report"]

PEERS = ("peer-a", "peer-b", "peer-c")
DEFAULTS = ReplicationPolicy(2, 3)


def report(cid: str, *statuses: str | tuple[str, str], allocations: tuple[str, ...] = ()) -> PinReport:
    """A PinReport with one peer per status (`status` or `(status, error)`), named peer-a, peer-b, ..."""
    peers = []
    for peer, status in zip(PEERS + tuple(f"peer-{i}" for i in range(3, 20)), statuses, strict=False):
        state, error = (status, "") if isinstance(status, str) else status
        peers.append((peer, state, error))
    return PinReport(cid=cid, peers=tuple(peers), allocations=allocations)


class FakePinner:
    """A Pinner that records its calls and answers from scripts: `pin_failures` are raised by the next pins, a
    CID's `statuses` are answered in order (the last one repeats; an exception is raised). Without a script a
    pinned CID reports `pinned` on every peer, any other `unpinned`."""

    kind = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.pinned: dict[str, ReplicationPolicy] = {}
        self.names: dict[str, str] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.pin_failures: list[BaseException] = []
        self.pin_delay = 0.0
        self.statuses: dict[str, list[PinReport | BaseException]] = {}
        self.recovered: PinReport | None = None
        self.peer_list: list[PeerInfo] = [PeerInfo("peer-a", "a", ("/ip4/10.0.0.1/tcp/9096",), freespace=1 << 30)]

    async def pin(self, cid: str, *, name: str, policy: ReplicationPolicy, metadata: Mapping[str, str]) -> None:
        self.calls.append(("pin", cid))
        if self.pin_delay:
            await asyncio.sleep(self.pin_delay)
        if self.pin_failures:
            raise self.pin_failures.pop(0)
        self.pinned[cid] = policy
        self.names[cid] = name
        self.metadata[cid] = dict(metadata)

    async def unpin(self, cid: str) -> None:
        self.calls.append(("unpin", cid))
        self.pinned.pop(cid, None)

    async def status(self, cid: str) -> PinReport:
        self.calls.append(("status", cid))
        script = self.statuses.get(cid)
        if script:
            answer = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return report(cid, *(["pinned" if cid in self.pinned else "unpinned"] * len(PEERS)))

    async def recover(self, cid: str) -> PinReport:
        self.calls.append(("recover", cid))
        return self.recovered or await self.status(cid)

    async def pinset(self) -> AsyncIterator[PinReport]:
        for cid in list(self.pinned):
            yield await self.status(cid)

    async def peers(self) -> Sequence[PeerInfo]:
        return self.peer_list

    async def aclose(self) -> None:
        """Nothing to release."""


class MemoryContent:
    """A ContentStore in memory that records pins and unpins in `log` (shared with a FakePinner's calls)."""

    def __init__(self, log: list[tuple[str, str]] | None = None) -> None:
        self.blobs: dict[str, bytes] = {}
        self.log = log if log is not None else []

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        data = b"".join([c async for c in chunks])
        cid = "bafk" + hashlib.sha256(data).hexdigest()[:20]
        self.blobs[cid] = data
        return AddedContent(cid=cid, size=len(data))

    async def pin(self, cid: str) -> None:
        self.log.append(("local-pin", cid))

    async def unpin(self, cid: str) -> None:
        self.log.append(("local-unpin", cid))

    async def ping(self) -> str:
        return "mem"

    async def aclose(self) -> None:
        """Nothing to release."""


def as_content(content: MemoryContent) -> ContentStore:
    """The fake as the ContentStore it stands for (it implements only what these tests call)."""
    return cast("ContentStore", content)


class Body:
    """An ObjectBody already verified."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.md5_hex = hashlib.md5(data).hexdigest()
        self.checksums: dict[str, str] = {}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    opened.create_bucket(make_bucket())
    yield opened
    opened.close()


@dataclasses.dataclass
class Rig:
    store: LmdbMetadataStore
    pinner: FakePinner
    policies: PolicyBook
    clock: Clock
    registry: CollectorRegistry
    orchestrator: PinOrchestrator
    settings: OrchestratorSettings

    def put(self, key: str, cid: str) -> None:
        self.store.put_object(make_meta(key, cid), unpin_grace=GRACE, now=self.clock.now)

    def status(self, cid: str) -> PinRecord:
        record = self.store.pin_status(cid)
        assert record is not None
        return record


SETTINGS = OrchestratorSettings(
    interval=0.01, batch=50, lease=60.0, retry_base=2.0, retry_max=20.0, poll=3.0, pin_timeout=100.0
)


def make_rig(store: LmdbMetadataStore, settings: OrchestratorSettings = SETTINGS) -> Rig:
    clock = Clock()
    pinner = FakePinner()
    policies = PolicyBook(store, DEFAULTS, clock=clock)
    registry = CollectorRegistry()
    orchestrator = PinOrchestrator(
        store, pinner, policies, settings, clock=clock, rng=random.Random(7), registry=registry
    )
    return Rig(store, pinner, policies, clock, registry, orchestrator, settings)


@pytest.fixture
def rig(store: LmdbMetadataStore) -> Rig:
    return make_rig(store)


def jitter_bounds(settings: OrchestratorSettings, attempts: int) -> tuple[float, float]:
    base = min(settings.retry_max, settings.retry_base * 2 ** (attempts - 1))
    return 0.5 * base, 1.5 * base


# The success path


async def test_success_pins_verifies_and_finishes(rig: Rig) -> None:
    rig.put("k", "cid-a")
    assert await rig.orchestrator.run_once() == 1
    assert rig.pinner.calls == [("pin", "cid-a"), ("status", "cid-a")]
    assert rig.pinner.pinned["cid-a"] == DEFAULTS
    assert rig.pinner.names["cid-a"] == f"{BUCKET}/k" and rig.pinner.metadata["cid-a"] == PIN_METADATA
    record = rig.status("cid-a")
    assert record.state == "pinned" and record.completions == 1 and record.error == ""
    assert [peer for peer, status, _ in record.peers if status == "pinned"] == list(PEERS)
    assert (record.replication_min, record.replication_max) == (2, 3)
    assert rig.store.pin_outbox_depth() == 0
    assert rig.orchestrator.completed_total == 1 and rig.orchestrator.errors_total == 0
    assert rig.registry.get_sample_value("ipfs_pin_duration_seconds_count", {"pinner": "fake"}) == 1
    assert await rig.orchestrator.run_once() == 0  # nothing left


async def test_pin_in_progress_is_rescheduled_then_finished(rig: Rig) -> None:
    rig.put("k", "cid-a")
    rig.pinner.statuses["cid-a"] = [
        report("cid-a", "pinning", "pin_queued", "pinning"),
        report("cid-a", "pinned", "pinned", "pinning"),
    ]
    await rig.orchestrator.run_once()
    job = rig.store.pin_job("cid-a")
    assert job is not None and job.phase == "verify" and job.state == "queued"
    assert job.due == rig.clock.now + SETTINGS.poll and job.started == 1000.0 and job.attempts == 0
    assert rig.status("cid-a").state == "pinning"
    assert await rig.orchestrator.run_once() == 0  # not due before the poll interval
    rig.clock.now += SETTINGS.poll + 5.0
    await rig.orchestrator.run_once()
    assert [call for call, _ in rig.pinner.calls] == ["pin", "status", "status"]  # verified, not pinned again
    assert rig.status("cid-a").state == "pinned" and rig.store.pin_job("cid-a") is None
    total = rig.registry.get_sample_value("ipfs_pin_duration_seconds_sum", {"pinner": "fake"})
    assert total == pytest.approx(SETTINGS.poll + 5.0)  # from the first pin request


# Failures: recorded, retried with backoff


def test_backoff_is_exponential_capped_and_jittered(rig: Rig) -> None:
    for attempts in range(1, 15):
        low, high = jitter_bounds(SETTINGS, attempts)
        for _ in range(20):
            assert low <= rig.orchestrator.backoff(attempts) <= high
    assert jitter_bounds(SETTINGS, 10) == (10.0, 30.0)  # capped at retry_max before the jitter
    seeded = random.Random(7)
    replay = make_rig(rig.store)
    assert replay.orchestrator.backoff(3) == 8.0 * (0.5 + seeded.random())


@pytest.mark.parametrize(
    ("failure", "text"),
    [
        (BackendUnavailable("IPFS Cluster POST /pins: no endpoint answered"), "no endpoint answered"),
        (
            ClusterError("IPFS Cluster POST /pins: bad cid", code=400, cluster_message="bad cid"),
            "bad cid",
        ),
    ],
)
async def test_pin_request_failure_is_recorded_and_retried(rig: Rig, failure: BaseException, text: str) -> None:
    rig.put("k", "cid-a")
    rig.pinner.pin_failures = [failure, failure]
    for attempts in (1, 2):
        before = rig.clock.now
        assert await rig.orchestrator.run_once() == 1
        record = rig.status("cid-a")
        assert record.state == "error" and record.attempts == attempts
        assert record.error.startswith("pin request failed: ") and text in record.error
        job = rig.store.pin_job("cid-a")
        assert job is not None and job.phase == "pin" and job.attempts == attempts and job.state == "queued"
        low, high = jitter_bounds(SETTINGS, attempts)
        assert before + low <= job.due <= before + high
        rig.clock.now = job.due
    assert rig.orchestrator.errors_total == 2
    await rig.orchestrator.run_once()
    record = rig.status("cid-a")
    assert record.state == "pinned" and record.attempts == 2 and record.completions == 1


async def test_status_failure_after_the_pin_retries_the_verify(rig: Rig) -> None:
    rig.put("k", "cid-a")
    rig.pinner.statuses["cid-a"] = [BackendUnavailable("down"), report("cid-a", "pinned", "pinned")]
    await rig.orchestrator.run_once()
    job = rig.store.pin_job("cid-a")
    assert job is not None and job.phase == "verify" and job.attempts == 1
    assert rig.status("cid-a").error == "status request failed: down"
    rig.clock.now = job.due
    await rig.orchestrator.run_once()
    assert [call for call, _ in rig.pinner.calls].count("pin") == 1
    assert rig.status("cid-a").state == "pinned"


async def test_peer_errors_are_recovered_and_recorded(rig: Rig) -> None:
    rig.put("k", "cid-a")
    rig.pinner.statuses["cid-a"] = [report("cid-a", "pinned", ("pin_error", "context canceled"), "pinning")]
    rig.pinner.recovered = report("cid-a", "pinned", "pin_queued", "pinning")
    await rig.orchestrator.run_once()
    assert ("recover", "cid-a") in rig.pinner.calls
    record = rig.status("cid-a")
    assert record.state == "error" and record.error == "peer-b: pin_error context canceled"
    assert record.peers == rig.pinner.recovered.peers  # the status after the recover
    job = rig.store.pin_job("cid-a")
    assert job is not None and job.phase == "verify" and job.attempts == 1


async def test_a_pin_that_never_reaches_its_minimum_times_out(rig: Rig) -> None:
    rig.put("k", "cid-a")
    rig.pinner.statuses["cid-a"] = [report("cid-a", "pinned", "pinning", "pinning")]
    await rig.orchestrator.run_once()
    assert rig.status("cid-a").state == "pinning"
    rig.clock.now += SETTINGS.pin_timeout + 1
    await rig.orchestrator.run_once()
    record = rig.status("cid-a")
    assert record.state == "error" and record.error == "not pinned on 2 peers after 100 s"
    assert ("recover", "cid-a") in rig.pinner.calls


async def test_a_cid_missing_from_the_pinset_is_pinned_again(rig: Rig) -> None:
    rig.put("k", "cid-a")
    rig.pinner.statuses["cid-a"] = [report("cid-a", "unpinned", "remote"), report("cid-a", "pinned", "pinned")]
    await rig.orchestrator.run_once()
    record = rig.status("cid-a")
    assert record.state == "error" and record.error == "the pin is not in the pinset"
    job = rig.store.pin_job("cid-a")
    assert job is not None and job.phase == "pin"
    rig.clock.now = job.due
    await rig.orchestrator.run_once()
    assert [call for call, _ in rig.pinner.calls].count("pin") == 2
    assert rig.status("cid-a").state == "pinned"


async def test_an_unexpected_exception_never_kills_the_pass(rig: Rig) -> None:
    rig.put("k1", "cid-a")
    rig.put("k2", "cid-b")
    rig.pinner.pin_failures = [RuntimeError("bug")]
    assert await rig.orchestrator.run_once() == 2
    assert rig.orchestrator.errors_total == 1
    states = {cid: rig.status(cid).state for cid in ("cid-a", "cid-b")}
    assert sorted(states.values()) == ["pinned", "queued"]
    (failed,) = [cid for cid, state in states.items() if state == "queued"]
    job = rig.store.pin_job(failed)
    assert job is not None and job.state == "inflight"  # the lease brings it back
    rig.clock.now += SETTINGS.lease
    assert await rig.orchestrator.run_once() == 1
    assert rig.status(failed).state == "pinned"


async def test_a_requeue_during_the_pin_wins(rig: Rig) -> None:
    rig.put("k", "cid-a")
    real_pin = rig.pinner.pin

    async def pin_then_requeue(cid: str, **kwargs: object) -> None:
        await real_pin(cid, **kwargs)  # type: ignore[arg-type]
        rig.store.queue_pins([cid], now=rig.clock.now, force=True)  # a batch re-pin meanwhile

    rig.pinner.pin = pin_then_requeue  # type: ignore[method-assign]
    await rig.orchestrator.run_once()
    assert rig.orchestrator.completed_total == 0
    job = rig.store.pin_job("cid-a")
    assert job is not None and job.seq == 1 and job.state == "queued"
    rig.pinner.pin = real_pin  # type: ignore[method-assign]
    await rig.orchestrator.run_once()
    assert rig.status("cid-a").completions == 1 and rig.orchestrator.completed_total == 1


async def test_recover_claims_and_run_forever_stop(rig: Rig) -> None:
    rig.put("k1", "cid-a")
    rig.store.claim_pin_jobs(rig.clock.now, 10, lease=600.0)  # a killed orchestrator's claim
    rig.put("k2", "cid-b")
    stop = asyncio.Event()
    task = asyncio.create_task(rig.orchestrator.run_forever(stop))
    for _ in range(200):
        if rig.store.pin_outbox_depth() == 0:
            break
        await asyncio.sleep(0.01)
    assert rig.store.pin_outbox_depth() == 0
    rig.put("k3", "cid-c")
    rig.orchestrator.wake()
    for _ in range(200):
        if rig.store.pin_outbox_depth() == 0:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=2.0)
    assert {rig.status(cid).state for cid in ("cid-a", "cid-b", "cid-c")} == {"pinned"}


async def test_run_forever_survives_a_failing_store(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def broken(*args: object, **kwargs: object) -> list[object]:
        nonlocal calls
        calls += 1
        raise BackendError("metadata store error: boom")

    monkeypatch.setattr(rig.store, "claim_pin_jobs", broken)
    monkeypatch.setattr(rig.store, "requeue_inflight_pins", broken)
    stop = asyncio.Event()
    task = asyncio.create_task(rig.orchestrator.run_forever(stop))
    while calls < 4:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=2.0)


# Policies


async def test_bucket_policy_and_dynamic_extra_are_applied(store: LmdbMetadataStore) -> None:
    rig = make_rig(store, dataclasses.replace(SETTINGS, extra_limit=5))
    await rig.policies.put(BUCKET, {"replication_min": 2, "replication_max": 3, "tags": {"site": "paris"}})
    rig.put("k", "cid-a")
    rig.store.queue_pins(["cid-a"], now=rig.clock.now, extra=4)
    await rig.orchestrator.run_once()
    assert rig.pinner.pinned["cid-a"] == ReplicationPolicy(5, 5, "local", (), (("site", "paris"),))
    record = rig.status("cid-a")
    assert (record.replication_min, record.replication_max, record.extra) == (5, 5, 4)


async def test_every_peer_policy_ignores_extra(rig: Rig) -> None:
    await rig.policies.put(BUCKET, {"replication_min": -1, "replication_max": -1})
    rig.put("k", "cid-a")
    rig.store.queue_pins(["cid-a"], now=rig.clock.now, extra=2)
    await rig.orchestrator.run_once()
    assert rig.pinner.pinned["cid-a"] == ReplicationPolicy(-1, -1)
    assert rig.status("cid-a").state == "pinned"  # -1: every holder pinned


# The acknowledger and cluster-acknowledged PUTs


def acknowledger(pinner: FakePinner, store: LmdbMetadataStore, timeout: float = 1.0) -> PinAcknowledger:
    return PinAcknowledger(pinner, PolicyBook(store, DEFAULTS), timeout=timeout, poll=0.01)


async def test_acknowledger_returns_once_satisfied(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    pinner.statuses["cid-a"] = [report("cid-a", "pinning", "pinning"), report("cid-a", "pinned", "pinned")]
    found = await acknowledger(pinner, store).pin_and_wait("cid-a", "b/k", DEFAULTS)
    assert found.pinned == 2
    assert pinner.calls == [("pin", "cid-a"), ("status", "cid-a"), ("status", "cid-a")]


async def test_acknowledger_times_out(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    pinner.statuses["cid-a"] = [report("cid-a", "pinned", "pinning")]
    with pytest.raises(BackendUnavailable, match="did not confirm 2 pinned copies"):
        await acknowledger(pinner, store, timeout=0.1).pin_and_wait("cid-a", "b/k", DEFAULTS)
    pinner.pin_delay = 5.0  # a pin request that hangs is bounded too
    with pytest.raises(BackendUnavailable, match="did not confirm"):
        await asyncio.wait_for(acknowledger(pinner, store, timeout=0.1).pin_and_wait("cid-b", "b/k", DEFAULTS), 2.0)


@pytest.mark.parametrize(
    "failure",
    [BackendUnavailable("down"), ClusterError("refused", code=400, cluster_message="refused")],
)
async def test_acknowledger_pinner_error_is_unavailable(store: LmdbMetadataStore, failure: BaseException) -> None:
    pinner = FakePinner()
    pinner.pin_failures = [failure]
    with pytest.raises(BackendUnavailable, match="could not pin the object"):
        await acknowledger(pinner, store).pin_and_wait("cid-a", "b/k", DEFAULTS)


def service(store: LmdbMetadataStore, pinner: FakePinner, content: MemoryContent) -> ObjectService:
    return ObjectService(store, as_content(content), unpin_grace=GRACE, acknowledger=acknowledger(pinner, store))


async def test_put_in_an_ack_cluster_bucket_is_committed_pinned(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    await PolicyBook(store, DEFAULTS).put(BUCKET, {"ack": "cluster", "replication_min": 2, "replication_max": 2})
    objects = service(store, pinner, MemoryContent())
    meta = await objects.put_object(PutRequest(BUCKET, "k", "text/plain"), Body(b"hello"))
    assert pinner.pinned[meta.cid] == ReplicationPolicy(2, 2, "cluster")
    record = store.pin_status(meta.cid)
    assert record is not None and record.state == "pinned" and record.name == f"{BUCKET}/k"
    assert record.peers == report(meta.cid, "pinned", "pinned", "pinned").peers
    assert (record.replication_min, record.replication_max) == (2, 2)
    assert await objects.pin_state(meta.cid) == "pinned"
    assert await objects.head_object_pin(BUCKET, "k") == (meta, "pinned")


async def test_failed_cluster_ack_commits_nothing_and_releases_the_cid(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    pinner.pin_failures = [BackendUnavailable("down")]
    await PolicyBook(store, DEFAULTS).put(BUCKET, {"ack": "cluster"})
    objects = service(store, pinner, MemoryContent())
    with pytest.raises(BackendUnavailable, match="it was not stored"):
        await objects.put_object(PutRequest(BUCKET, "k", "text/plain"), Body(b"hello"))
    assert store.get_object(BUCKET, "k") is None
    assert store.pin_outbox_depth() == 0 and store.unpin_queue_depth() == 1
    (cid,) = store.claim_due_unpins(1e12, 10)
    assert store.pin_status(cid) is None


async def test_put_in_an_ack_local_bucket_does_not_wait(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    objects = service(store, pinner, MemoryContent())
    meta = await objects.put_object(PutRequest(BUCKET, "k", "text/plain"), Body(b"hello"))
    assert pinner.calls == []
    assert await objects.pin_state(meta.cid) == "queued"
    assert await objects.head_object_pin(BUCKET, "k") == (meta, "queued")
    assert store.pin_job(meta.cid) is not None


async def test_pin_state_without_a_record(store: LmdbMetadataStore, tmp_path: Path) -> None:
    content = MemoryContent()
    assert await ObjectService(store, as_content(content), unpin_grace=GRACE).pin_state("cid-unknown") == "queued"
    local = LmdbMetadataStore(tmp_path / "local", map_size=1 << 26)
    try:
        assert await ObjectService(local, as_content(content), unpin_grace=GRACE).pin_state("cid-unknown") == "pinned"
    finally:
        local.close()


async def test_unpinner_releases_the_replica_first(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    content = MemoryContent(pinner.calls)
    store.put_object(make_meta("k", "cid-a"), unpin_grace=0.0, now=1.0)
    store.delete_object(BUCKET, "k", unpin_grace=0.0, now=2.0)
    unpinner = Unpinner(store, as_content(content), interval=1.0, clock=lambda: 10.0, replica=pinner)
    assert await unpinner.run_once() == 1
    assert pinner.calls == [("unpin", "cid-a"), ("local-unpin", "cid-a")]
    assert store.pin_status("cid-a") is None and store.pin_job("cid-a") is None


async def test_unpinner_keeps_the_local_pin_when_the_replica_fails(store: LmdbMetadataStore) -> None:
    pinner = FakePinner()
    content = MemoryContent(pinner.calls)

    async def refuse(cid: str) -> None:
        pinner.calls.append(("unpin", cid))
        raise BackendUnavailable("cluster down")

    pinner.unpin = refuse  # type: ignore[method-assign]
    store.put_object(make_meta("k", "cid-a"), unpin_grace=0.0, now=1.0)
    store.delete_object(BUCKET, "k", unpin_grace=0.0, now=2.0)
    unpinner = Unpinner(store, as_content(content), interval=1.0, clock=lambda: 10.0, replica=pinner)
    assert await unpinner.run_once() == 0
    assert pinner.calls == [("unpin", "cid-a")] and unpinner.errors_total == 1
    assert store.unpin_queue_depth() == 1
