"""The cluster behind the test peer: one cluster peer per real IPFS node, allocation, a pin tracker that really
pins through each node's Kubo RPC API, and the per-peer status (`GlobalPinInfo`) read back from the nodes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.cluster_peer.faults import Faults
from tests.support.cluster_peer.shapes import (
    VERSION,
    ApiError,
    PinOptions,
    cluster_peer_id,
    metric,
    now_rfc3339,
    pin_info,
    pin_json,
)
from tests.support.cluster_peer.state import MAX_PINS, PeerIdentity, SharedState

__all__ = ["Cluster", "Peer"]

_STATUS_TIMEOUT = 15.0  # per peer, like the cluster's status RPCs
_ALIVE_TTL = 1.0
_CONCURRENT_PINS = 10
_NOT_PINNED = "the item should be pinned but it is not"


@dataclass
class Peer:
    index: int
    name: str
    node: str
    id: str
    ipfs_id: str
    client: httpx.AsyncClient
    alive: tuple[float, str | None] = (0.0, None)  # (checked at, error or None)
    addresses: list[str] = field(default_factory=list)
    semaphore: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(_CONCURRENT_PINS))

    def matches(self, key: str) -> bool:
        return key in (self.name, self.id, str(self.index))


@dataclass
class Op:
    kind: str  # pin | unpin
    phase: str = "queued"  # queued | in_progress | error
    error: str = ""
    attempts: int = 0
    task: asyncio.Task[None] | None = None


class KuboError(Exception):
    """The node answered an RPC with an error (its Message)."""


class Cluster:
    def __init__(
        self,
        state: SharedState,
        nodes: list[str],
        *,
        capacity: int,
        tags: Mapping[int, Mapping[str, str]],
        replication: tuple[int, int],
        allocate_by: list[str],
        pin_timeout: float,
        repinning: bool,
        faults: Faults,
    ) -> None:
        self.state, self.faults = state, faults
        self.node_urls = nodes
        self.capacity, self.tags = capacity, tags
        self.default_min, self.default_max = replication
        self.allocate_by, self.pin_timeout, self.repinning = allocate_by, pin_timeout, repinning
        self.peers: list[Peer] = []
        self.ops: dict[tuple[str, int], Op] = {}

    # ---- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        for index, node in enumerate(self.node_urls):
            client = httpx.AsyncClient(base_url=node.rstrip("/"), trust_env=False, timeout=_STATUS_TIMEOUT)
            ident = self.state.identities.get(node)
            peer = Peer(index, f"peer{index}", node, "", "", client)
            try:
                info = await self.rpc(peer, "id", timeout=5.0)
                peer.ipfs_id = str(info["ID"])
                peer.addresses = [str(a) for a in info.get("Addresses") or []]
            except (KuboError, httpx.HTTPError, KeyError, TypeError):
                peer.ipfs_id = ident.ipfs_id if ident else ""
            peer.id = ident.id if ident and ident.ipfs_id == peer.ipfs_id else cluster_peer_id(peer.ipfs_id or node)
            self.state.identities[node] = PeerIdentity(node, peer.ipfs_id, peer.id)
            self.peers.append(peer)
        self.state.save()

    async def close(self) -> None:
        tasks = [op.task for op in self.ops.values() if op.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for peer in self.peers:
            await peer.client.aclose()

    @property
    def api_peer(self) -> Peer:
        return self.peers[0]

    def peer_by_id(self, peer_id: str) -> Peer | None:
        return next((p for p in self.peers if p.id == peer_id), None)

    # ---- the nodes --------------------------------------------------------------------------------

    async def rpc(self, peer: Peer, cmd: str, *, timeout: float = _STATUS_TIMEOUT, **params: str) -> Any:
        # timeout_ → the RPC's own timeout=, cid_base → cid-base
        query = {key.rstrip("_").replace("_", "-"): value for key, value in params.items()}
        reply = await peer.client.post(f"/api/v0/{cmd}", params=query, timeout=timeout)
        if reply.status_code != 200:
            try:
                message = str(reply.json().get("Message", ""))
            except ValueError:
                message = reply.text[:300]
            raise KuboError(message or f"HTTP {reply.status_code}")
        return reply.json()

    def is_down(self, peer: Peer) -> bool:
        return any(peer.matches(key) for key in self.faults.down)

    async def node_error(self, peer: Peer) -> str | None:
        """None if the peer is up and its node answers (cached for a second); else why not."""
        if self.is_down(peer):
            return f"failed to dial {peer.id}: peer is down (injected)"
        checked, error = peer.alive
        if time.monotonic() - checked < _ALIVE_TTL:
            return error
        try:
            await self.rpc(peer, "id", timeout=2.0)
            error = None
        except (KuboError, httpx.HTTPError) as exc:
            error = f"ipfs node at {peer.node} unreachable: {type(exc).__name__}"
        peer.alive = (time.monotonic(), error)
        return error

    async def live_peers(self) -> list[Peer]:
        errors = await asyncio.gather(*(self.node_error(p) for p in self.peers))
        return [p for p, e in zip(self.peers, errors, strict=True) if e is None]

    def _setting(self, peer: Peer, table: Mapping[str, Any]) -> Any:
        return next((value for key, value in table.items() if peer.matches(key)), None)

    def peer_tags(self, peer: Peer) -> dict[str, str]:
        tags = {"group": "default", **self.tags.get(peer.index, {})}
        tags.update(self._setting(peer, self.faults.tags) or {})
        return tags

    def freespace(self, peer: Peer) -> int:
        capacity = self._setting(peer, self.faults.capacity)
        used = self._setting(peer, self.faults.used) or 0
        for cid, pin in self.state.pins.items():
            if not pin["allocations"] or peer.id in pin["allocations"]:
                used += self.state.sizes.get(cid, 0)
        return max(0, (self.capacity if capacity is None else capacity) - used)

    # ---- allocation -------------------------------------------------------------------------------

    def _order(self, peers: list[Peer], by: list[str]) -> list[Peer]:
        """The balanced allocator: partition by each `tag:` metric in turn (round robin), then by freespace."""
        tags = [name[4:] for name in by if name.startswith("tag:")]
        if not peers:
            return []
        if not tags:
            return sorted(peers, key=lambda p: (-self.freespace(p), p.index))
        groups: dict[str, list[Peer]] = {}
        for peer in peers:
            groups.setdefault(self.peer_tags(peer).get(tags[0], ""), []).append(peer)
        rest = [f"tag:{t}" for t in tags[1:]]
        ordered = sorted(
            (self._order(members, rest) for members in groups.values()), key=lambda g: -self.freespace(g[0])
        )
        out: list[Peer] = []
        for rank in range(max(len(g) for g in ordered)):
            out.extend(g[rank] for g in ordered if rank < len(g))
        return out

    async def allocate(self, rmin: int, rmax: int, user: list[str], current: list[str]) -> list[str]:
        if rmin == -1:
            return []
        live = {p.id: p for p in await self.live_peers()}
        valid = [pid for pid in current if pid in live]
        if len(valid) >= rmin:
            return valid[:rmax]
        needed, wanted = rmin - len(valid), rmax - len(valid)
        priority = [pid for pid in dict.fromkeys(user) if pid in live and pid not in valid]
        candidates = [p for pid, p in live.items() if pid not in valid and pid not in priority]
        if len(priority) + len(candidates) < needed:
            raise ApiError(
                500,
                f"not enough peers to allocate CID. Needed at least: {needed}. Wanted at most: {wanted}. "
                f"Available candidates: {len(priority) + len(candidates)}. See logs for more info.",
            )
        chosen = priority + [p.id for p in self._order(candidates, self.allocate_by)]
        return valid + chosen[:wanted]

    # ---- pin / unpin ------------------------------------------------------------------------------

    def targets(self, pin: Mapping[str, Any]) -> list[Peer]:
        allocations = pin["allocations"]
        return [p for p in self.peers if not allocations or p.id in allocations]

    async def pin(self, cid: str, opts: PinOptions) -> dict[str, Any]:
        rmin, rmax = opts.resolve_replication(self.default_min, self.default_max)
        old = self.state.pins.get(cid)
        if old is None and len(self.state.pins) >= MAX_PINS:
            raise ApiError(500, "pin/unpin operation queue is full. Try increasing max_pin_queue_size")
        current = old["allocations"] if old else []
        allocations = await self.allocate(rmin, rmax, opts.user_allocations, current)
        pin = pin_json(cid, opts, rmin, rmax, allocations, now_rfc3339())
        self.state.pins[cid] = pin
        self.state.save()
        self._retarget(cid, old, pin)
        return pin

    def _retarget(self, cid: str, old: Mapping[str, Any] | None, pin: Mapping[str, Any]) -> None:
        keep = {p.index for p in self.targets(pin)}
        for peer in self.peers:
            if peer.index in keep:
                self.enqueue(cid, peer, "pin")
            elif old is not None and peer in self.targets(old):
                self.enqueue(cid, peer, "unpin")

    async def unpin(self, cid: str) -> dict[str, Any]:
        pin = self.state.pins.pop(cid, None)
        if pin is None:
            raise ApiError(404, "pin is not part of the pinset")
        self.state.sizes.pop(cid, None)
        self.state.save()
        for peer in self.targets(pin):
            self.enqueue(cid, peer, "unpin")
        return pin

    def enqueue(self, cid: str, peer: Peer, kind: str) -> None:
        old = self.ops.get((cid, peer.index))
        if old is not None and old.task is not None:
            old.task.cancel()
        op = Op(kind, attempts=(old.attempts if old else 0) + 1)
        self.ops[(cid, peer.index)] = op
        op.task = asyncio.create_task(self._run(cid, peer, op))

    async def _run(self, cid: str, peer: Peer, op: Op) -> None:
        try:
            async with peer.semaphore:
                op.phase = "in_progress"
                if op.kind == "pin":
                    await self._pin_on(cid, peer)
                else:
                    await self._unpin_on(cid, peer)
        except asyncio.CancelledError:
            return
        except (KuboError, httpx.HTTPError) as exc:
            op.phase, op.error = "error", str(exc) or type(exc).__name__
            if op.kind == "unpin" and cid in self.state.pins:
                self.ops.pop((cid, peer.index), None)  # de-allocation clean-up: nobody tracks it
            return
        if self.ops.get((cid, peer.index)) is op:
            del self.ops[(cid, peer.index)]

    async def _pin_on(self, cid: str, peer: Peer) -> None:
        delay = self.faults.pin_delay_of(cid)
        if delay > 0:
            await asyncio.sleep(delay)
        if self.is_down(peer):
            raise KuboError(f"failed to dial {peer.id}: peer is down (injected)")
        if cid in self.faults.pin_errors:
            raise KuboError(self.faults.pin_errors[cid])
        timeout = self.pin_timeout
        await self.rpc(peer, "pin/add", timeout=timeout + 5, arg=cid, recursive="true", timeout_=f"{timeout}s")
        if cid in self.state.pins and cid not in self.state.sizes:
            self.state.sizes[cid] = await self._size(peer, cid)
            self.state.save()

    async def _size(self, peer: Peer, cid: str) -> int:
        for cmd, arg, key in (("files/stat", f"/ipfs/{cid}", "CumulativeSize"), ("block/stat", cid, "Size")):
            with contextlib.suppress(KuboError, httpx.HTTPError, KeyError, TypeError, ValueError):
                return int((await self.rpc(peer, cmd, timeout=5.0, arg=arg, timeout_="4s"))[key])
        return 0

    async def _unpin_on(self, cid: str, peer: Peer) -> None:
        try:
            await self.rpc(peer, "pin/rm", arg=cid)
        except KuboError as exc:
            if "not pinned" not in str(exc):
                raise

    # ---- status -----------------------------------------------------------------------------------

    async def peer_status(self, cid: str, peer: Peer) -> tuple[str, str]:
        pin = self.state.pins.get(cid)
        op = self.ops.get((cid, peer.index))
        error = await self.node_error(peer) if self.is_down(peer) else None
        if error is not None:
            return "cluster_error", error
        if op is not None and op.kind == "unpin" and op.phase != "error":
            return ("unpin_queued" if op.phase == "queued" else "unpinning"), ""
        if pin is None:
            if op is not None and op.kind == "unpin":
                return "unpin_error", op.error
            return "unpinned", ""
        if peer not in self.targets(pin):
            return "remote", ""
        if op is not None and op.kind == "pin":
            return {"queued": "pin_queued", "in_progress": "pinning"}.get(op.phase, "pin_error"), op.error
        try:
            await self.rpc(peer, "pin/ls", arg=cid, type="recursive")
        except KuboError as exc:
            if "not pinned" in str(exc):
                return "unexpectedly_unpinned", _NOT_PINNED
            return "cluster_error", str(exc)
        except httpx.HTTPError as exc:
            return "cluster_error", f"ipfs node at {peer.node} unreachable: {type(exc).__name__}"
        return "pinned", ""

    async def global_pin_info(self, cid: str, *, local: bool = False) -> dict[str, Any]:
        pin = self.state.pins.get(cid)
        peers = [self.api_peer] if local else self.peers
        statuses = await asyncio.gather(*(self.peer_status(cid, p) for p in peers))
        return {
            "cid": cid,
            "name": pin["name"] if pin else "",
            "allocations": pin["allocations"] if pin else [],
            "origins": pin["origins"] if pin else [],
            "created": pin["timestamp"] if pin else "0001-01-01T00:00:00Z",
            "metadata": pin["metadata"] if pin else None,
            "peer_map": {
                p.id: {
                    **pin_info(p.name, p.ipfs_id, p.addresses, status, error),
                    "attempt_count": self._attempts(cid, p),
                }
                for p, (status, error) in zip(peers, statuses, strict=True)
            },
        }

    def _attempts(self, cid: str, peer: Peer) -> int:
        op = self.ops.get((cid, peer.index))
        return op.attempts if op else 0

    async def recover(self, cid: str, *, local: bool = False) -> tuple[dict[str, Any], bool]:
        """Re-queue failed pins (and unpins) of `cid`; with repinning on, first move allocations off peers that are
        down. Returns the new GlobalPinInfo and whether anything was re-queued."""
        pin = self.state.pins.get(cid)
        requeued = False
        if pin is not None and self.repinning and pin["allocations"] and not local:
            live = {p.id for p in await self.live_peers()}
            if any(pid not in live for pid in pin["allocations"]):
                with contextlib.suppress(ApiError):  # not enough peers: keep the allocations, retry in place
                    allocations = await self.allocate(
                        pin["replication_factor_min"],
                        pin["replication_factor_max"],
                        pin["user_allocations"] or [],
                        pin["allocations"],
                    )
                    old, pin = pin, {**pin, "allocations": allocations, "timestamp": now_rfc3339()}
                    self.state.pins[cid] = pin
                    self.state.save()
                    self._retarget(cid, old, pin)
                    requeued = True
        for peer in [self.api_peer] if local else self.peers:
            status, _ = await self.peer_status(cid, peer)
            if status in ("pin_error", "unexpectedly_unpinned"):
                self.enqueue(cid, peer, "pin")
                requeued = True
            elif status == "unpin_error":
                self.enqueue(cid, peer, "unpin")
                requeued = True
        return await self.global_pin_info(cid, local=local), requeued

    # ---- peers, metrics, graph --------------------------------------------------------------------

    async def peer_id_json(self, peer: Peer) -> dict[str, Any]:
        error = await self.node_error(peer)
        ids = [p.id for p in self.peers]
        if self.is_down(peer):
            return {
                "id": peer.id,
                "error": error,
                "peername": "",
                "addresses": [],
                "cluster_peers": [],
                "cluster_peers_addresses": [],
                "version": "",
                "commit": "",
                "rpc_protocol_version": "",
                "ipfs": {"id": "", "addresses": [], "error": ""},
            }
        return {
            "id": peer.id,
            "addresses": [f"/ip4/127.0.0.1/tcp/{9096 + peer.index}/p2p/{peer.id}"],
            "cluster_peers": ids,
            "cluster_peers_addresses": [],
            "version": VERSION,
            "commit": "",
            "rpc_protocol_version": "/ipfscluster/v1.0/rpc",
            "error": "",
            "ipfs": {"id": peer.ipfs_id, "addresses": peer.addresses, "error": error or ""},
            "peername": peer.name,
        }

    def metric_names(self) -> list[str]:
        tags = sorted({name for p in self.peers for name in self.peer_tags(p)})
        return ["ping", "freespace", *(f"tag:{t}" for t in tags)]

    async def metrics(self, name: str) -> list[dict[str, Any]]:
        out = []
        for peer in await self.live_peers():
            if name == "ping":
                out.append(metric("ping", peer.id, "", 0))
            elif name == "freespace":
                free = self.freespace(peer)
                out.append(metric("freespace", peer.id, str(free), free))
            elif name.startswith("tag:") and name[4:] in self.peer_tags(peer):
                out.append(metric(name, peer.id, self.peer_tags(peer)[name[4:]], 0, partitionable=True))
        return out

    async def graph(self) -> dict[str, Any]:
        live = await self.live_peers()
        ipfs_links: dict[str, list[str]] = {}
        for peer in live:
            try:
                swarm = await self.rpc(peer, "swarm/peers", timeout=5.0)
                ipfs_links[peer.ipfs_id] = [str(item["Peer"]) for item in swarm.get("Peers") or []]
            except (KuboError, httpx.HTTPError, KeyError, TypeError):
                ipfs_links[peer.ipfs_id] = []
        return {
            "cluster_id": self.api_peer.id,
            "id_to_peername": {p.id: p.name for p in self.peers},
            "ipfs_links": ipfs_links,
            "cluster_links": {p.id: [o.id for o in live if o is not p] for p in live},
            "cluster_trust_links": {p.id: True for p in self.peers},
            "cluster_to_ipfs": {p.id: p.ipfs_id for p in live},
        }
