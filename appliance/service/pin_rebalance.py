"""Rebalancing: move pin allocations off cluster peers that are low on free space or hold far more pins than the rest.

The cluster's own metrics decide: `freespace` per peer (`/monitor/metrics/freespace`, through Pinner.peers) and the
allocations of the pinset. A peer is a *source* when its free space is below `min_free` or its allocation count is
above the healthy peers' mean times `overload_factor`. A pin of the gateway allocated to a source is moved to the
healthy peer with the most free space that does not hold it yet, in two steps so its replication never drops:
grow (pin with the target added and replication_max + 1; wait until the target reports `pinned`), then shrink
(pin with the source left out and the original replication). At most `max_moves` moves per pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable

from appliance.components import Pinner
from appliance.errors import S3IpfsError
from appliance.model import PeerInfo, PinReport, ReplicationPolicy
from appliance.service.pin_orchestrator import PIN_METADATA

__all__ = ["RebalanceReport", "RebalanceSettings", "Rebalancer"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class RebalanceSettings:
    """config: pinning.rebalance_*."""

    min_free: int = 10 * 1024**3
    overload_factor: float = 1.5
    max_moves: int = 20
    move_timeout: float = 300.0  # seconds to wait for the new replica before giving the move up
    poll: float = 1.0


@dataclasses.dataclass
class RebalanceReport:
    """Sources found, moves planned and done."""

    dry_run: bool
    started: float
    finished: float = 0.0
    peers: dict[str, dict[str, int | None]] = dataclasses.field(default_factory=dict)
    sources: dict[str, str] = dataclasses.field(default_factory=dict)  # peer -> why
    planned: list[dict[str, str]] = dataclasses.field(default_factory=list)
    moved: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)


def _ours(report: PinReport) -> bool:
    return all(dict(report.metadata).get(key) == value for key, value in PIN_METADATA.items())


class Rebalancer:
    """Plans and performs moves (once per appliance; a cluster pinner only)."""

    def __init__(
        self,
        pinner: Pinner,
        settings: RebalanceSettings,
        *,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[int], None] = lambda count: None,
    ) -> None:
        self._pinner = pinner
        self._settings = settings
        self._clock = clock
        self._on_change = on_change
        self._lock = asyncio.Lock()
        self.last: RebalanceReport | None = None

    async def run(self, *, dry_run: bool = False) -> RebalanceReport:
        async with self._lock:
            report = RebalanceReport(dry_run=dry_run, started=self._clock())
            try:
                await self._pass(report)
            except S3IpfsError as exc:
                report.failures.append(exc.message)
            report.finished = self._clock()
            if not dry_run:
                self.last = report
            if report.moved:
                self._on_change(report.moved)
            return report

    async def _pass(self, report: RebalanceReport) -> None:
        if self._pinner.kind != "cluster":
            report.failures.append("rebalancing needs a cluster (cluster.endpoints)")
            return
        peers = [p for p in await self._pinner.peers() if not p.error]
        pins = [item async for item in self._pinner.pinset() if _ours(item) and item.allocations]
        load = Counter(peer for item in pins for peer in item.allocations)
        for peer in peers:
            report.peers[peer.peer_id] = {"freespace": peer.freespace, "allocations": load.get(peer.peer_id, 0)}
        sources = self._sources(peers, load)
        report.sources = sources
        if not sources:
            return
        healthy = [p for p in peers if p.peer_id not in sources]
        moves = 0
        for item in pins:
            if moves >= self._settings.max_moves:
                break
            source = next((peer for peer in item.allocations if peer in sources), None)
            if source is None or item.pinned < len(item.allocations):
                continue  # not on a source, or still settling: leave it
            target = self._target(healthy, item, load)
            if target is None:
                continue
            report.planned.append({"cid": item.cid, "from": source, "to": target})
            moves += 1
            if report.dry_run:
                continue
            try:
                await self._move(item, source, target)
            except S3IpfsError as exc:
                report.failures.append(f"{item.cid}: {exc.message}"[:300])
                continue
            load[source] -= 1
            load[target] += 1
            report.moved += 1

    def _sources(self, peers: list[PeerInfo], load: Counter[str]) -> dict[str, str]:
        sources: dict[str, str] = {}
        if not peers:
            return sources
        mean = sum(load.get(p.peer_id, 0) for p in peers) / len(peers)
        for peer in peers:
            if peer.freespace is not None and peer.freespace < self._settings.min_free:
                sources[peer.peer_id] = f"free space {peer.freespace} < {self._settings.min_free} bytes"
            elif mean > 0 and load.get(peer.peer_id, 0) > mean * self._settings.overload_factor:
                sources[peer.peer_id] = (
                    f"{load.get(peer.peer_id, 0)} pins > mean {mean:.1f} times {self._settings.overload_factor}"
                )
        if len(sources) == len(peers):
            return {}  # every peer is short: moving cannot help
        return sources

    @staticmethod
    def _target(healthy: list[PeerInfo], item: PinReport, load: Counter[str]) -> str | None:
        candidates = [p for p in healthy if p.peer_id not in item.allocations]
        if not candidates:
            return None
        best = max(candidates, key=lambda p: (p.freespace or 0, -load.get(p.peer_id, 0)))
        return best.peer_id

    async def _move(self, item: PinReport, source: str, target: str) -> None:
        """Grow, then swap. The cluster keeps a pin's current allocations while they meet replication-min and
        drops an arbitrary one when above replication-max, so a move cannot be one re-pin: (1) re-pin with one
        more replica, the target first in user-allocations, and wait until the target reports pinned; (2) swap:
        unpin and at once pin again with exactly the kept peers (the source left out) as user-allocations. The
        kept peers hold the blocks throughout (an unpin frees nothing until a GC), and if the gateway stops
        between the two calls, reconcile finds the referenced CID missing and queues its pin again."""
        count = len(item.allocations)
        grown = ReplicationPolicy(count + 1, count + 1, allocations=(target,))
        await self._pinner.pin(item.cid, name=item.name, policy=grown, metadata=PIN_METADATA)
        await self._wait(item.cid, lambda peers: target in peers, f"{target} did not pin")
        kept = (*(peer for peer in item.allocations if peer != source), target)
        swapped = ReplicationPolicy(count, count, allocations=kept)
        await self._pinner.unpin(item.cid)
        await self._pinner.pin(item.cid, name=item.name, policy=swapped, metadata=PIN_METADATA)
        await self._wait(item.cid, lambda peers: set(kept) <= peers, f"the kept peers of {item.cid} did not pin")
        log.info("rebalance: moved %s from %s to %s", item.cid, source, target)

    async def _wait(self, cid: str, done: Callable[[set[str]], bool], what: str) -> None:
        deadline = self._clock() + self._settings.move_timeout
        while True:
            status = await self._pinner.status(cid)
            if done({peer for peer, state, _ in status.peers if state == "pinned"}):
                return
            if self._clock() > deadline:
                raise _MoveTimeout(f"{what} within {self._settings.move_timeout:.0f} s; move given up")
            await asyncio.sleep(self._settings.poll)


class _MoveTimeout(S3IpfsError):
    """A move's new replica did not arrive in time (the grown pin stays; the next pass may retry)."""
