"""A fake local IPFS node for scrub tests: a blockstore that can lose or corrupt blocks, pins that refuse block
removal like Kubo and js-ipfs do, and a "peer" holding good copies; plus helpers that build real UnixFS DAGs and a
scrub service on a real LMDB store around them."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import BackendError, BackendUnavailable, ContentIntegrityError
from appliance.ipfsconn import unixfs
from appliance.ipfsconn.dagcheck import LocalDagChecker
from appliance.model import DAG_PB, RAW, Cid, ObjectMeta, ReplicationPolicy
from appliance.pinning.local import LocalPinner
from appliance.service.pin_policy import PolicyBook
from appliance.service.scrub import Scrubber
from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_bucket

__all__ = ["FakeNode", "Sleeper", "build_file", "make_scrubber", "put_file"]


class FakeNode:
    """The parts of KuboClient that LocalDagChecker and LocalPinner call. `missing_style` is how a block the node
    lacks shows: "jsipfs" (the deadline passes: BackendUnavailable) or "kubo" (offline: "not found locally")."""

    def __init__(self, missing_style: str = "jsipfs") -> None:
        self.blocks: dict[str, bytes] = {}
        self.peer: dict[str, bytes] = {}  # what connected peers can provide
        self.pins: set[str] = set()
        self.dags: dict[str, set[str]] = {}  # root -> its blocks (for pinned-block refusal)
        self.missing_style = missing_style
        self.down = False
        self.calls: list[str] = []

    def _up(self) -> None:
        if self.down:
            raise BackendUnavailable("IPFS: the node cannot be reached (ConnectError)")

    async def block_local(self, cid: str, *, deadline: float, limit: int = 4 << 20) -> bytes:
        self._up()
        self.calls.append(f"local {cid}")
        data = self.blocks.get(cid)
        if data is None:
            if self.missing_style == "kubo":
                raise BackendError(f"IPFS block/get: block was not found locally (offline): ipld: could not find {cid}")
            raise BackendUnavailable("IPFS block/get: Failed to get block: request timed out")
        if not Cid.parse(cid).verifies(data):
            raise ContentIntegrityError("bad", block=cid, root=cid, reason="hash mismatch")
        return data

    async def block_get(self, cid: str, *, deadline: float | None = None, limit: int = 4 << 20) -> bytes:
        self._up()
        self.calls.append(f"get {cid}")
        if cid not in self.blocks:
            if cid not in self.peer:
                raise BackendUnavailable("IPFS block/get: Failed to get block: request timed out")
            self.blocks[cid] = self.peer[cid]
        return await self.block_local(cid, deadline=1.0)

    async def block_rm(self, cid: str) -> bool:
        self._up()
        self.calls.append(f"rm {cid}")
        for root in self.pins:
            if cid in self.dags.get(root, ()):
                raise BackendError(f"IPFS block/rm: pinned: indirect through {root}")
        return self.blocks.pop(cid, None) is not None

    async def pin_fetch(self, cid: str, *, deadline: float) -> None:
        self._up()
        self.calls.append(f"pin_fetch {cid}")
        for block in self.dags.get(cid, {cid}):
            if block not in self.blocks:
                if block not in self.peer:
                    raise BackendUnavailable("IPFS pin/add: Failed to add pin: request timed out")
                self.blocks[block] = self.peer[block]
        self.pins.add(cid)

    async def pin(self, cid: str) -> None:
        await self.pin_fetch(cid, deadline=30.0)

    async def unpin(self, cid: str) -> None:
        self._up()
        self.calls.append(f"unpin {cid}")
        self.pins.discard(cid)

    async def is_pinned(self, cid: str) -> bool:
        self._up()
        return cid in self.pins

    async def recursive_pins(self) -> list[str]:
        return sorted(self.pins)

    async def ping(self) -> str:
        self._up()
        return "fake 0.1"


@dataclass
class File:
    """A UnixFS file as the gateway writes it: root, size, every block (cid -> bytes) and its leaves in order."""

    root: str
    size: int
    blocks: dict[str, bytes]
    leaves: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)


def build_file(data: bytes, chunk: int = 4) -> File:
    """Raw leaves of `chunk` bytes under one (or more) dag-pb file nodes; a single chunk is one raw block."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    leaves = {Cid.of_block(p, RAW).text: p for p in pieces}
    order = [Cid.of_block(p, RAW).text for p in pieces]
    if len(pieces) == 1:
        return File(order[0], len(data), dict(leaves), order)
    children = [unixfs.Child(cid, len(p), len(p)) for cid, p in zip(order, pieces, strict=True)]
    inner, root = unixfs.compose_blocks(children)
    blocks = dict(leaves)
    inner_cids = [Cid.of_block(b, DAG_PB).text for b in inner]
    blocks.update(zip(inner_cids, inner, strict=True))
    return File(root, len(data), blocks, order, inner_cids)


def put_file(store: LmdbMetadataStore, node: FakeNode, key: str, data: bytes | None = None, **kw: Any) -> File:
    """Store a file's blocks on the node (and its peer), pin it, and write its object row."""
    file = build_file(os.urandom(10) if data is None else data, **kw)
    node.blocks.update(file.blocks)
    node.peer.update(file.blocks)
    node.dags[file.root] = set(file.blocks)
    node.pins.add(file.root)
    store.put_object(
        ObjectMeta(BUCKET, key, file.root, file.size, "0" * 32, 1700000000.0), unpin_grace=GRACE, now=1700000000.0
    )
    return file


class Sleeper:
    """An injectable monotonic clock and sleep: sleeping advances the clock and records the delay."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.gate: asyncio.Event | None = None  # when set, sleeps beyond the first `free` wait for it
        self.free = 0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.gate is not None and len(self.slept) > self.free:
            await self.gate.wait()
        await asyncio.sleep(0)


def make_scrubber(store: LmdbMetadataStore, node: FakeNode, sleeper: Sleeper | None = None, **kw: Any) -> Scrubber:
    sleeper = sleeper or Sleeper()
    checker = LocalDagChecker(node, check_deadline=0.5, fetch_deadline=1.0)  # type: ignore[arg-type]
    return Scrubber(
        store,
        checker,
        LocalPinner(node),
        PolicyBook(store, ReplicationPolicy()),
        monotonic=sleeper.monotonic,
        sleep=sleeper.sleep,
        **kw,
    )


def open_store(path: Path) -> LmdbMetadataStore:
    store = LmdbMetadataStore(path, map_size=1 << 28)
    store.create_bucket(make_bucket())
    return store
