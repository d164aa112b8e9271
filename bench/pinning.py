"""Pinning scenarios of `make bench`: the pin outbox, cluster acknowledgement latency, recovery of a stopped node.

Runs on 3 loopback nodes (LocalNode: js-ipfs, or Kubo if on PATH) and the IPFS-Cluster test peer over them
(tests/support/cluster_peer), which really pins with `pin/add` on the nodes (bitswap from node 0, where the content is
added). A test peer with an empty pinset is started for every side of every round (pin-ack: every round), since the
test peer rewrites its whole pinset file on each pin and a growing pinset would slow whoever comes later. Each
baseline speaks the bare cluster REST API with httpx; the product side goes through PinOrchestrator + ClusterPinner +
ClusterClient (and the gateway for acknowledgements). Setup (adding blocks, filling the metadata store, stopping a
node) is not timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from appliance.config import PinningConfig
from appliance.ipfsconn.devnode import DevNodeError, LocalNode, kubo_path
from appliance.model import BucketMeta, ObjectMeta, ReplicationPolicy
from appliance.pinning.cluster import ClusterClient
from appliance.pinning.replicated import ClusterPinner
from appliance.service.pin_orchestrator import PIN_METADATA, OrchestratorSettings, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.pin_reconcile import Reconciler
from appliance.state import LmdbMetadataStore
from bench.clients import S3, BenchRequestError
from bench.procs import BenchSetupError, Credentials

# bench.run imports this module lazily (inside _amain), so importing it here is not circular.
from bench.run import Metrics, Scenario, Side, measure
from tests.support.cluster_peer import ClusterPeer, ClusterPeerError
from tests.support.gateway import GatewayError, running_gateway
from tests.support.nodes import running_nodes

__all__ = ["PIN_SCENARIOS", "PinSizes", "footer", "node_impl", "pin_sizes", "run_pinning"]

PIN_SCENARIOS = ("pin-outbox", "pin-ack", "pin-recovery")
REPLICATION = 2
NODES = 3
ACK_TARGET_MS = 100.0
_BATCH = 500  # blocks per /api/v0/add request while preparing
_SWEEP = 0.1  # minimum seconds between two status sweeps of the CIDs still pending
_DEADLINE = 3600.0  # a side that has not converged after this is a failure, not a number
_DETECT = 1.5  # after a node stops: the test peer caches a node's liveness for 1 s
_RETRIES = 30  # a raw pin answered 5xx is retried after _RETRY_DELAY, as the orchestrator retries its jobs
_RETRY_DELAY = 1.0
_ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "pin": "false", "cid-base": "base32"}


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PinSizes:
    rounds: int
    outbox_cids: int
    outbox_rounds: int
    ack_ops: int  # sequential 1 KiB PUTs (or raw pins) per side per round
    recovery_pins: int
    concurrency: int  # the orchestrator's (pinning.outbox_concurrency), used by every baseline too


def pin_sizes(quick: bool, rounds: int, outbox_cids: int | None, outbox_rounds: int | None) -> PinSizes:
    return PinSizes(
        rounds=rounds,
        outbox_cids=outbox_cids or (1_000 if quick else 10_000),
        outbox_rounds=outbox_rounds or (rounds if quick else 1),
        ack_ops=40 if quick else 100,
        recovery_pins=100 if quick else 200,
        concurrency=PinningConfig().outbox_concurrency,
    )


def _settings() -> OrchestratorSettings:
    """The orchestrator's timings from the config defaults (what a deployment without overrides runs)."""
    p = PinningConfig()
    return OrchestratorSettings(
        interval=p.outbox_interval_seconds,
        concurrency=p.outbox_concurrency,
        batch=p.outbox_batch,
        retry_base=p.retry_base_seconds,
        retry_max=p.retry_max_seconds,
        poll=p.status_poll_seconds,
        pin_timeout=p.pin_timeout_seconds,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _workers(items: list[str], concurrency: int, op: Callable[[str], Awaitable[None]]) -> None:
    it = iter(items)

    async def worker() -> None:
        for item in it:
            await op(item)

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, len(items)) or 1):
            tg.create_task(worker())


# ---- the cluster: nodes, test peers, raw REST calls -------------------------------------------------------


@dataclass
class Cluster:
    tmp: Path
    nodes: list[LocalNode]
    client: httpx.AsyncClient
    sizes: PinSizes
    _base: bytes = field(default_factory=lambda: os.urandom(1024))
    _blocks: int = 0
    _serial: int = 0
    retries: int = 0  # raw pins answered 5xx and sent again

    def serial(self) -> int:
        """A new number for a file or directory of this run."""
        self._serial += 1
        return self._serial

    def new_peer(self, port: int | None = None) -> ClusterPeer:
        """A test peer (not started) over the 3 nodes with a new, empty pinset file."""
        state = self.tmp / "peers" / f"pinset-{self.serial()}.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        return ClusterPeer([n.api_url for n in self.nodes], state, port=port, capacity=1 << 40, pin_timeout=120.0)

    async def add_blocks(self, count: int) -> list[str]:
        """`count` new distinct 1 KiB raw blocks on node 0 (not pinned there); their CIDs."""
        cids: list[str] = []
        while len(cids) < count:
            files = []
            for _ in range(min(_BATCH, count - len(cids))):
                self._blocks += 1
                body = f"{self._blocks:016d}".encode() + self._base[16:]
                files.append(("file", (f"b{self._blocks}", body, "application/octet-stream")))
            resp = await self.client.post(f"{self.nodes[0].api_url}/api/v0/add", params=_ADD_PARAMS, files=files)
            if resp.status_code != 200:
                raise BenchRequestError(f"ipfs add of {len(files)} blocks: HTTP {resp.status_code}")
            cids += [line.split('"Hash":"', 1)[1].split('"', 1)[0] for line in resp.text.splitlines() if line]
        return cids

    @contextlib.contextmanager
    def peer(self, port: int | None = None) -> Iterator[ClusterPeer]:
        """A started test peer with an empty pinset, stopped on exit."""
        peer = self.new_peer(port)
        peer.start()
        try:
            yield peer
        finally:
            peer.stop()

    async def raw_pin(self, url: str, cid: str) -> None:
        """POST /pins/{cid} with the parameters ClusterPinner sends (no name: each would differ per side). A 5xx
        is sent again after a second: under load the test peer's liveness probe of a node (`id`, 2 s timeout) can
        fail and it answers "not enough peers to allocate", which the orchestrator also retries."""
        params = {"replication-min": str(REPLICATION), "replication-max": str(REPLICATION)}
        params.update({f"meta-{k}": v for k, v in PIN_METADATA.items()})
        for attempt in range(_RETRIES + 1):
            resp = await self.client.post(f"{url}/pins/{cid}", params=params)
            if resp.status_code == 200:
                return
            if resp.status_code < 500 or attempt == _RETRIES:
                break
            self.retries += 1
            await asyncio.sleep(_RETRY_DELAY)
        raise BenchRequestError(f"POST /pins/{cid}: HTTP {resp.status_code} {resp.text[:200]}")

    async def raw_pinned(self, url: str, cid: str) -> int:
        """GET /pins/{cid}: how many peers report `pinned`."""
        resp = await self.client.get(f"{url}/pins/{cid}")
        if resp.status_code != 200:
            raise BenchRequestError(f"GET /pins/{cid}: HTTP {resp.status_code} {resp.text[:200]}")
        return sum(1 for info in resp.json()["peer_map"].values() if info.get("status") == "pinned")

    async def wait_pinned(self, url: str, cids: list[str]) -> None:
        """Sweep GET /pins/{cid} over the CIDs still pending (with `concurrency` clients) until every one is
        pinned on REPLICATION peers."""
        pending = set(cids)
        deadline = time.monotonic() + _DEADLINE

        async def check(cid: str) -> None:
            if await self.raw_pinned(url, cid) >= REPLICATION:
                pending.discard(cid)

        while pending:
            if time.monotonic() > deadline:
                raise BenchRequestError(f"{len(pending)} CIDs not pinned on {REPLICATION} peers after {_DEADLINE} s")
            started = time.monotonic()
            await _workers(sorted(pending), self.sizes.concurrency, check)
            if pending:
                await asyncio.sleep(max(0.0, _SWEEP - (time.monotonic() - started)))

    async def victim(self, url: str, cids: list[str]) -> tuple[int, list[str]]:
        """The node to stop (1 or 2; node 0 holds the content) and the CIDs allocated to it: the one holding more
        of `cids`. With fast concurrent pins the test peer allocates by stale free space, so allocations can lean
        to one node; picking the fuller one keeps the affected counts of the two sides comparable."""
        held: dict[int, list[str]] = {i: [] for i in range(1, NODES)}
        names = {f"peer{i}": i for i in held}  # the test peer names the peer of nodes[i] `peer{i}`

        async def check(cid: str) -> None:
            info = (await self.client.get(f"{url}/pins/{cid}")).json()
            for pid, p in info["peer_map"].items():
                index = names.get(p.get("peername"))
                if index is not None and pid in info["allocations"]:
                    held[index].append(cid)

        await _workers(cids, self.sizes.concurrency, check)
        index = max(held, key=lambda i: len(held[i]))
        return index, held[index]

    async def stop_node(self, index: int) -> None:
        await asyncio.to_thread(self.nodes[index].stop)
        await asyncio.sleep(_DETECT)

    async def restart_node(self, index: int) -> None:
        node = self.nodes[index]
        await asyncio.to_thread(node.start)
        for other in self.nodes:
            if other is not node:
                await asyncio.to_thread(node.connect, other)


# ---- the product side: metadata store + orchestrator ------------------------------------------------------


class Outbox:
    """A fresh LMDB metadata store with the pin outbox on, one object per CID, and an orchestrator over `url`."""

    BUCKET = "pins"

    def __init__(self, path: Path, url: str) -> None:
        self.store = LmdbMetadataStore(path, map_size=1 << 30, pin_outbox=True)
        self.pinner = ClusterPinner(ClusterClient([url]))
        policies = PolicyBook(self.store, ReplicationPolicy(REPLICATION, REPLICATION))
        self.orchestrator = PinOrchestrator(self.store, self.pinner, policies, _settings())
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def put_objects(self, cids: list[str]) -> None:
        """One object per CID through put_object (each queues its pin job), one transaction per call."""
        now = time.time()

        def fill() -> None:
            if self.store.get_bucket(self.BUCKET) is None:
                self.store.create_bucket(BucketMeta(self.BUCKET, now, "us-east-1", "bench"))
            for i, cid in enumerate(cids):
                meta = ObjectMeta(self.BUCKET, f"o{i:06d}-{cid[-8:]}", cid, 1024, "0" * 32, now)
                self.store.put_object(meta, unpin_grace=300.0, now=now)

        await asyncio.to_thread(fill)

    def start(self) -> None:
        self._task = asyncio.create_task(self.orchestrator.run_forever(self._stop))

    async def depth(self) -> int:
        return await asyncio.to_thread(self.store.pin_outbox_depth)

    async def drained(self) -> None:
        deadline = time.monotonic() + _DEADLINE
        while await self.depth() > 0:
            if time.monotonic() > deadline:
                raise BenchRequestError(f"the pin outbox still holds {await self.depth()} jobs after {_DEADLINE} s")
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        self._stop.set()
        self.orchestrator.wake()
        if self._task is not None:
            await self._task
        await self.pinner.aclose()
        self.store.close()


@contextlib.asynccontextmanager
async def _outbox(cluster: Cluster, url: str) -> AsyncIterator[Outbox]:
    box = Outbox(cluster.tmp / "meta" / f"store-{cluster.serial()}", url)
    try:
        yield box
    finally:
        await box.aclose()


# ---- 1. outbox throughput ---------------------------------------------------------------------------------


def scenario_outbox(cluster: Cluster) -> Scenario:
    n, z = cluster.sizes.outbox_cids, cluster.sizes

    async def outbox(r: int) -> Metrics:
        cids = await cluster.add_blocks(n)
        with cluster.peer() as peer:
            async with _outbox(cluster, peer.url) as box:
                await box.put_objects(cids)
                if await box.depth() != n:
                    raise BenchRequestError(f"expected {n} pin jobs, the outbox holds {await box.depth()}")
                t0 = time.perf_counter()
                box.start()
                await box.drained()
                elapsed = time.perf_counter() - t0
                o = box.orchestrator
                return {
                    "ops_per_s": n / elapsed,
                    "elapsed_s": elapsed,
                    "attempts": o.attempts_total,
                    "errors": o.errors_total,
                    "completed": o.completed_total,
                }

    async def bare(r: int) -> Metrics:
        cids = await cluster.add_blocks(n)
        with cluster.peer() as peer:
            retries = cluster.retries
            t0 = time.perf_counter()
            await _workers(cids, z.concurrency, lambda cid: cluster.raw_pin(peer.url, cid))
            posted = time.perf_counter() - t0
            await cluster.wait_pinned(peer.url, cids)
            elapsed = time.perf_counter() - t0
            return {
                "ops_per_s": n / elapsed,
                "elapsed_s": elapsed,
                "post_per_s": n / posted,
                "retries": cluster.retries - retries,
            }

    sides = [
        Side("PinOrchestrator (outbox → ClusterPinner)", True, outbox),
        Side(f"bare POST /pins, {z.concurrency} clients, + poll until pinned", False, bare),
    ]
    title = f"Pin outbox: {n:,} CIDs, replication {REPLICATION} on {NODES} nodes, until drained"
    return Scenario("pin-outbox", title, "ops_per_s", "jobs/s", sides)


# ---- 2. acknowledgement latency ---------------------------------------------------------------------------


@dataclass
class AckEnv:
    cluster: Cluster
    peer: ClusterPeer
    s3: S3 | None
    admin_url: str
    round_seen: int = -1
    admin_headers: dict[str, str] = field(default_factory=dict)  # the admin API's bearer token

    def stop_peer(self) -> None:
        self.peer.stop()

    async def fresh_round(self, r: int) -> None:
        """Once per round: let the gateway's outbox drain, then restart the test peer on its port with an empty
        pinset (its state file is rewritten whole on every pin, so a growing pinset would slow later rounds)."""
        if r == self.round_seen:
            return
        self.round_seen = r
        if self.admin_url:
            deadline = time.monotonic() + 300.0
            while time.monotonic() < deadline:
                summary = (
                    await self.cluster.client.get(f"{self.admin_url}/pins/summary", headers=self.admin_headers)
                ).json()
                if summary["outbox_depth"] == 0:
                    break
                await asyncio.sleep(0.2)
        self.peer.stop()
        self.peer = self.cluster.new_peer(self.peer.port)  # the port the gateway's config names
        await asyncio.to_thread(self.peer.start)


async def _latencies(op: Callable[[int], Awaitable[float]], total: int, start: int) -> Metrics:
    times = [await op(i) for i in range(start, start + total)]
    return {"p50_ms": statistics.median(times), "p99_ms": _percentile(times, 0.99), "max_ms": max(times)}


def scenario_ack(env: AckEnv) -> Scenario:
    z, small = env.cluster.sizes, env.cluster._base

    def put_side(label: str, bucket: str) -> Side:
        async def op(i: int) -> float:
            assert env.s3 is not None
            body = f"{bucket}-{i:012d}".encode().ljust(24, b"-") + small[24:]
            t0 = time.perf_counter()
            await env.s3.put(bucket, f"k{i}", body)
            return (time.perf_counter() - t0) * 1000

        async def run(r: int) -> Metrics:
            await env.fresh_round(r)
            return await _latencies(op, z.ack_ops, (r + 1) * 1_000_000)

        return Side(label, bucket == "ack-cluster", run, warm=lambda: _latencies(op, 10, 0))

    async def raw_op(i: int) -> float:
        (cid,) = await env.cluster.add_blocks(1)
        url = env.peer.url
        t0 = time.perf_counter()
        await env.cluster.raw_pin(url, cid)
        while await env.cluster.raw_pinned(url, cid) < REPLICATION:
            if time.perf_counter() - t0 > 60.0:
                raise BenchRequestError(f"{cid} not pinned on {REPLICATION} peers within 60 s")
        return (time.perf_counter() - t0) * 1000

    async def raw(r: int) -> Metrics:
        await env.fresh_round(r)
        return await _latencies(raw_op, z.ack_ops, 0)

    async def node_op(i: int) -> float:
        (cid,) = await env.cluster.add_blocks(1)
        t0 = time.perf_counter()
        resp = await env.cluster.client.post(
            f"{env.cluster.nodes[1 + i % 2].api_url}/api/v0/pin/add", params={"arg": cid}
        )
        if resp.status_code != 200:
            raise BenchRequestError(f"pin/add {cid}: HTTP {resp.status_code}")
        return (time.perf_counter() - t0) * 1000

    async def node(r: int) -> Metrics:
        return await _latencies(node_op, z.ack_ops, 0)

    sides = [
        Side("raw POST /pins + GET /pins/{cid} back to back until 2 pinned", False, raw),
        Side("node pin/add of a block only node 0 has (bitswap floor, no cluster)", False, node),
    ]
    sides[0].warm = lambda: _latencies(raw_op, 10, 0)
    sides[1].warm = lambda: _latencies(node_op, 10, 0)
    if env.s3 is not None:
        sides.insert(0, put_side("S3 PutObject, ack local", "ack-local"))
        sides.insert(0, put_side("S3 PutObject, ack cluster", "ack-cluster"))
    title = f"PUT 1 KiB, ack cluster (replication_min {REPLICATION}), 1 client, p50"
    return Scenario("pin-ack", title, "p50_ms", "ms", sides, extra="p99_ms", extra_label="p99")


# ---- 3. recovery of a stopped node's pins -----------------------------------------------------------------


def scenario_recovery(cluster: Cluster) -> Scenario:
    n, z = cluster.sizes.recovery_pins, cluster.sizes

    async def reconcile(r: int) -> Metrics:
        cids = await cluster.add_blocks(n)
        with cluster.peer() as peer:
            async with _outbox(cluster, peer.url) as box:
                await box.put_objects(cids)
                box.start()
                await box.drained()  # every pin at replication 2, through the product path
                victim, affected = await cluster.victim(peer.url, cids)
                await cluster.stop_node(victim)
                try:
                    t0 = time.perf_counter()
                    report = await Reconciler(
                        box.store, box.pinner, orphan_grace=86400.0, on_queued=box.orchestrator.wake
                    ).run()
                    reconciled = time.perf_counter() - t0
                    await cluster.wait_pinned(peer.url, affected)
                    elapsed = time.perf_counter() - t0
                    await box.drained()
                    drained = time.perf_counter() - t0
                finally:
                    await cluster.restart_node(victim)
        return {
            "s": elapsed,
            "affected": len(affected),
            "node": victim,
            "reconcile_s": reconciled,
            "outbox_drained_s": drained,
            "recovered": report.recovered,
            "queued": report.queued,
        }

    async def bare(r: int) -> Metrics:
        cids = await cluster.add_blocks(n)
        with cluster.peer() as peer:
            await _workers(cids, z.concurrency, lambda cid: cluster.raw_pin(peer.url, cid))
            await cluster.wait_pinned(peer.url, cids)
            victim, affected = await cluster.victim(peer.url, cids)
            await cluster.stop_node(victim)
            try:
                t0 = time.perf_counter()

                async def recover(cid: str) -> None:
                    resp = await cluster.client.post(f"{peer.url}/pins/{cid}/recover")
                    if resp.status_code != 200:
                        raise BenchRequestError(f"POST /pins/{cid}/recover: HTTP {resp.status_code}")

                await _workers(affected, z.concurrency, recover)
                recovered = time.perf_counter() - t0
                await cluster.wait_pinned(peer.url, affected)
                elapsed = time.perf_counter() - t0
            finally:
                await cluster.restart_node(victim)
        return {"s": elapsed, "affected": len(affected), "node": victim, "recover_calls_s": recovered}

    sides = [
        Side("Reconciler.run() + PinOrchestrator", True, reconcile),
        Side(f"POST /pins/{{cid}}/recover, {z.concurrency} clients", False, bare),
    ]
    title = f"Recovery: {n} pins at replication {REPLICATION} on {NODES} nodes, 1 node stopped (s)"
    return Scenario("pin-recovery", title, "s", "s", sides)


# ---- the group --------------------------------------------------------------------------------------------


async def _ack_scenario(cluster: Cluster, stack: contextlib.AsyncExitStack, gateway: bool) -> Scenario:
    peer = stack.enter_context(cluster.peer())
    s3, admin = None, ""
    if gateway:
        _log("pin-ack: starting the gateway (2 workers) with cluster.endpoints = the test peer")
        extra = {
            "cluster": {"endpoints": [peer.url]},
            "pinning": {"replication_min": REPLICATION, "replication_max": REPLICATION},
        }
        gw = stack.enter_context(running_gateway(cluster.tmp, cluster.nodes[0], workers=2, extra_config=extra))
        s3 = S3(cluster.client, gw.endpoint, Credentials(gw.access_key, gw.secret_key))
        admin = gw.admin_url
        for bucket, ack in (("ack-cluster", "cluster"), ("ack-local", "local")):
            await s3.create_bucket(bucket)
            doc = {"ack": ack, "replication_min": REPLICATION, "replication_max": REPLICATION}
            resp = await cluster.client.put(f"{admin}/buckets/{bucket}/replication", json=doc, headers=gw.admin_headers)
            if resp.status_code != 200:
                raise BenchRequestError(f"PUT /buckets/{bucket}/replication: HTTP {resp.status_code} {resp.text}")
    env = AckEnv(cluster, peer, s3, admin, admin_headers=gw.admin_headers)
    stack.callback(env.stop_peer)  # the peer fresh_round started last
    return scenario_ack(env)


def node_impl() -> str:
    return "kubo" if kubo_path() else "js-ipfs"


async def run_pinning(tmp: Path, wanted: set[str], sizes: PinSizes, *, gateway: bool) -> list[Scenario]:
    """Start 3 nodes, run the wanted pinning scenarios (interleaved rounds, medians), stop everything."""
    try:
        return await _run(tmp, wanted, sizes, gateway=gateway)
    except (ClusterPeerError, GatewayError, DevNodeError) as exc:
        raise BenchSetupError(str(exc)) from exc


async def _run(tmp: Path, wanted: set[str], sizes: PinSizes, *, gateway: bool) -> list[Scenario]:
    done: list[Scenario] = []
    _log(f"pinning: starting {NODES} js-ipfs/Kubo nodes")
    with running_nodes(tmp / "pin-nodes", NODES) as nodes:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0), limits=limits) as client:
            cluster = Cluster(tmp, nodes, client, sizes)
            for key in PIN_SCENARIOS:
                if key not in wanted:
                    continue
                async with contextlib.AsyncExitStack() as stack:
                    if key == "pin-outbox":
                        scn, rounds = scenario_outbox(cluster), sizes.outbox_rounds
                    elif key == "pin-ack":
                        scn, rounds = await _ack_scenario(cluster, stack, gateway), sizes.rounds
                    else:
                        scn, rounds = scenario_recovery(cluster), sizes.rounds
                    t0 = time.monotonic()
                    await measure(scn, rounds)
                    _log(f"{key}: {time.monotonic() - t0:.0f} s")
                done.append(scn)
    return done


def footer(scenarios: list[Scenario], sizes: PinSizes) -> list[str]:
    """The notes under the table for the pinning rows that ran."""
    keys = {s.key for s in scenarios}
    settings = _settings()
    lines = [
        f"Pinning: {NODES} loopback nodes under the IPFS-Cluster test peer (tests/support/cluster_peer, a fresh "
        f"pinset per side and round); orchestrator timings = the config defaults (concurrency {settings.concurrency}, "
        f"batch {settings.batch}, status poll {settings.poll:.0f} s); every baseline uses {sizes.concurrency} clients "
        "where it runs concurrently. Ack and recovery: medians of per-round values, ratio = product / baseline in ms "
        "or s (>1: product slower)."
    ]
    if "pin-outbox" in keys:
        lines.append(
            f"Pin outbox: median of {sizes.outbox_rounds} round(s) of {sizes.outbox_cids:,} CIDs per side, timed from "
            "the orchestrator's start until the outbox is empty (baseline: until every CID reports 2 peers pinned); "
            "ratio = outbox / baseline jobs/s (>1: outbox faster)."
        )
    ack = next((s for s in scenarios if s.key == "pin-ack"), None)
    gw = next((s for s in ack.sides if s.is_gateway), None) if ack else None
    if gw is not None and gw.samples:
        p50 = gw.median("p50_ms")
        verdict = "met" if p50 < ACK_TARGET_MS else "NOT met"
        lines.append(
            f"Ack target (issue): p50 < {ACK_TARGET_MS:.0f} ms for a 1 KiB PUT with ack cluster on loopback: "
            f"{verdict} ({p50:.1f} ms; {sizes.ack_ops} sequential PUTs per side per round)."
        )
    rec = next((s for s in scenarios if s.key == "pin-recovery"), None)
    if rec is not None and all(side.samples for side in rec.sides):
        affected = " and ".join(f"{side.median('affected'):.0f}" for side in rec.sides)
        lines.append(
            f"Recovery: timed from {_DETECT} s after the node stopped until every CID allocated to it (median "
            f"{affected} of {sizes.recovery_pins} per side) reports 2 live peers pinned; the stopped node is the one "
            "of node 1 and node 2 that holds more of the side's allocations."
        )
    return lines
