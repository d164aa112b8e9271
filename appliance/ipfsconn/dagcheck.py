"""Scrub's view of the local IPFS node: check an object's whole UnixFS DAG block by block, and repair a block.

`check` walks the DAG from the root and reads every block from the node's own blockstore (`block/get` with
`offline=true` and a short deadline, KuboClient.block_local), so a missing block never hangs the walk. Each block must
hash to the CID that links it, each dag-pb node must be a consistent UnixFS file node (unixfs.decode_file_node), each
child must hold the bytes its parent's blocksizes say and the root the size the metadata records. A fault is:

- `missing`: the node does not hold the block (Kubo: "not found locally"; js-ipfs, which has no offline mode: the
  deadline passed while the node is otherwise up);
- `corrupt`: the node's bytes do not hash to the CID (a bad disk, a tampered blockstore) — a peer's copy fixes it;
- `invalid`: the bytes are what the CID names, but they are not a valid part of this file (not a UnixFS file node,
  sizes that do not add up): the DAG itself is wrong and no peer can fix it; the object must be written again.

`repair` removes a corrupt block (`block/rm`; the node refuses to remove a pinned block, so the root's local pin is
released for the exchange and made again afterwards), fetches the block from the node's peers (`block/get` without
`offline`, a longer deadline; bitswap stores what it fetches) and checks it again.
"""

from __future__ import annotations

import asyncio
import logging

from appliance.errors import BackendError, BackendUnavailable, ContentIntegrityError, S3IpfsError
from appliance.ipfsconn import unixfs
from appliance.ipfsconn.kubo import KuboClient
from appliance.model import DAG_PB, BlockFault, Cid, DagCheck

__all__ = ["LocalDagChecker"]

log = logging.getLogger(__name__)

_MAX_DEPTH = 32  # as dagread: deeper than any file we write
_NOT_LOCAL = ("not found", "could not find")


class LocalDagChecker:
    """DagChecker (components.py) over the local node's Kubo RPC client."""

    def __init__(
        self, kubo: KuboClient, *, check_deadline: float = 5.0, fetch_deadline: float = 120.0, parallel: int = 4
    ) -> None:
        if check_deadline <= 0 or fetch_deadline <= 0 or parallel < 1:
            raise ValueError("deadlines must be > 0 and parallel >= 1")
        self._kubo = kubo
        self._check = check_deadline
        self._fetch = fetch_deadline
        self._parallel = parallel

    async def _read(self, cid: Cid) -> tuple[bytes | None, BlockFault | None]:
        """The block's verified bytes, or the fault that kept them from us. A node that is down raises."""
        try:
            return await self._kubo.block_local(cid.text, deadline=self._check), None
        except ContentIntegrityError:
            return None, BlockFault(cid.text, "corrupt", "hash mismatch")
        except BackendUnavailable:
            # js-ipfs: a block it lacks times out. Tell that apart from a node that is down (raises here).
            await self._kubo.ping()
            return None, BlockFault(cid.text, "missing", f"not on the local node (none within {self._check:g} s)")
        except BackendError as exc:
            if any(word in exc.message.lower() for word in _NOT_LOCAL):
                return None, BlockFault(cid.text, "missing", "not on the local node")
            raise

    async def check(self, root: str, size: int) -> DagCheck:
        """Read and check every block of the file `root` (see the module docstring); the faults found."""
        try:
            root_cid = Cid.parse(root)
        except ValueError:
            return DagCheck(root, faults=(BlockFault(root, "invalid", "the recorded root is not a CID"),))
        faults: list[BlockFault] = []
        blocks = 0
        nbytes = 0
        # (cid, the file bytes it must hold, depth); inner nodes are walked depth first, so the stack stays small.
        stack: list[tuple[Cid, int, int]] = [(root_cid, size, 0)]
        while stack:
            cid, expected, depth = stack.pop()
            if depth > _MAX_DEPTH:
                faults.append(BlockFault(cid.text, "invalid", "the DAG is deeper than any file we write"))
                continue
            if cid.is_raw:
                leaves = [(cid, expected)]
                while stack and stack[-1][0].is_raw and len(leaves) < self._parallel:
                    leaf, leaf_size, _ = stack.pop()
                    leaves.append((leaf, leaf_size))
                for (leaf, leaf_size), (block, fault) in zip(
                    leaves, await asyncio.gather(*(self._read(leaf) for leaf, _ in leaves)), strict=True
                ):
                    if block is None:
                        faults.append(fault or BlockFault(leaf.text, "missing", "unreadable"))
                        continue
                    blocks += 1
                    nbytes += len(block)
                    if len(block) != leaf_size:
                        faults.append(_size_fault(leaf, len(block), leaf_size, leaf == root_cid))
                continue
            if cid.codec != DAG_PB:
                faults.append(BlockFault(cid.text, "invalid", f"unexpected codec 0x{cid.codec:x}"))
                continue
            block, fault = await self._read(cid)
            if block is None:
                faults.append(fault or BlockFault(cid.text, "missing", "unreadable"))
                continue
            blocks += 1
            nbytes += len(block)
            try:
                node = unixfs.decode_file_node(block)
            except ValueError as exc:
                faults.append(BlockFault(cid.text, "invalid", f"malformed: {exc}"[:200]))
                continue
            if node.size != expected:
                faults.append(_size_fault(cid, node.size, expected, cid == root_cid))
                continue
            children = zip(node.links, node.blocksizes, strict=True)
            stack.extend(reversed([(link, child_size, depth + 1) for link, child_size in children]))
        return DagCheck(root_cid.text, blocks=blocks, bytes=nbytes, faults=tuple(faults))

    async def block_ok(self, block: str) -> str | None:
        """None when the local node holds `block` with the right hash, else "missing" or "corrupt"."""
        try:
            cid = Cid.parse(block)
        except ValueError:
            return "invalid"
        data, fault = await self._read(cid)
        return None if data is not None else (fault.kind if fault else "missing")

    async def repair(self, block: str, root: str, kind: str) -> str | None:
        """Fetch a good copy of a `missing` or `corrupt` block from the peers (see the module docstring); None when
        it now verifies, else why not. `invalid` blocks cannot be repaired this way."""
        if kind not in ("missing", "corrupt"):
            return "the block is what its CID names but not a valid part of this object: write the object again"
        released = False
        why: str | None = None
        try:
            if kind == "corrupt":
                try:
                    await self._kubo.block_rm(block)
                except BackendError as exc:
                    if "pinned" not in exc.message.lower():
                        raise
                    # Both Kubo and js-ipfs keep pinned blocks: release the root's pin for the exchange.
                    await self._kubo.unpin(root)
                    released = True
                    await self._kubo.block_rm(block)
            await self._kubo.block_get(block, deadline=self._fetch)
        except ContentIntegrityError:
            why = "the copy fetched from the peers does not match its hash either"
        except BackendUnavailable:
            why = f"no peer provided the block within {self._fetch:g} s"
        except BackendError as exc:
            why = exc.message
        finally:
            if released:
                try:
                    await self._kubo.pin_fetch(root, deadline=self._fetch)
                except S3IpfsError as exc:
                    log.warning("scrub: could not pin %s again after repairing %s: %s", root, block, exc.message)
                    why = why or f"the root could not be pinned again: {exc.message}"
        if why is not None:
            return why
        state = await self.block_ok(block)
        return None if state is None else f"the block is still {state} after the repair"


def _size_fault(cid: Cid, found: int, expected: int, is_root: bool) -> BlockFault:
    whose = "the object's metadata records" if is_root else "its parent says"
    return BlockFault(cid.text, "invalid", f"size mismatch: {found} bytes, {whose} {expected}")
