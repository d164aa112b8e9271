"""The `local` pinner: pins on the gateway's own IPFS node (the default when no cluster is configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from appliance.errors import BackendError
from appliance.model import PeerInfo, PinReport, ReplicationPolicy

__all__ = ["LOCAL_PEER", "LocalNodePins", "LocalPinner"]

LOCAL_PEER = "local"


class LocalNodePins(Protocol):
    """What the local pinner needs of the node's client (ipfsconn.kubo.KuboClient)."""

    async def pin(self, cid: str) -> None: ...

    async def unpin(self, cid: str) -> None: ...

    async def is_pinned(self, cid: str) -> bool: ...

    async def ping(self) -> str: ...

    async def recursive_pins(self) -> list[str]: ...


def _report(cid: str, pinned: bool, name: str = "") -> PinReport:
    return PinReport(cid=cid, peers=((LOCAL_PEER, "pinned" if pinned else "unpinned", ""),), name=name)


class LocalPinner:
    """Pinner on the local node: one peer, replication is always one (the policy's bounds do not apply)."""

    kind = "local"

    def __init__(self, node: LocalNodePins) -> None:
        self._node = node

    async def pin(self, cid: str, *, name: str, policy: ReplicationPolicy, metadata: Mapping[str, str]) -> None:
        await self._node.pin(cid)

    async def unpin(self, cid: str) -> None:
        await self._node.unpin(cid)

    async def status(self, cid: str) -> PinReport:
        return _report(cid, await self._node.is_pinned(cid))

    async def recover(self, cid: str) -> PinReport:
        await self._node.pin(cid)
        return await self.status(cid)

    async def pinset(self) -> AsyncIterator[PinReport]:
        for cid in await self._node.recursive_pins():
            yield _report(cid, True)

    async def peers(self) -> Sequence[PeerInfo]:
        try:
            version = await self._node.ping()
        except BackendError as exc:
            return [PeerInfo(LOCAL_PEER, "local IPFS node", error=exc.message)]
        return [PeerInfo(LOCAL_PEER, f"local IPFS node ({version})")]

    async def aclose(self) -> None:
        """The node client is owned by the caller."""
