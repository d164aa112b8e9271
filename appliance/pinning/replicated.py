"""The `cluster` pinner: pins across an IPFS-Cluster peer set through its REST API (pinning/cluster.py).

The cluster allocates and replicates; this adapter only turns a bucket's ReplicationPolicy into the pin request:
explicit peers become `user-allocations`, allocation tags (site/rack/region) are resolved to the peers whose
`tag:<name>` metric matches, and the cluster's statuses become PinReports. The same tag metrics give each peer
its tags in `peers()`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from appliance.errors import BackendError, ConfigError
from appliance.model import PeerInfo, PinReport, ReplicationPolicy
from appliance.pinning.cluster import ClusterClient, PinStatus

__all__ = ["DEFAULT_TAG_NAMES", "ClusterPinner", "report_of"]

_TAG_TTL = 30.0  # seconds a resolved tag → peers map is reused (the cluster's informer TTL)
#: Tags `peers()` always reads: `group` is the balanced allocator's default partition and node setup sets it.
DEFAULT_TAG_NAMES = ("group",)


def report_of(status: PinStatus) -> PinReport:
    """The cluster's GlobalPinInfo as a PinReport."""
    peers = tuple(sorted((peer, state, error) for peer, (state, error) in status.peers.items()))
    return PinReport(
        cid=status.cid,
        peers=peers,
        allocations=tuple(status.allocations),
        name=status.name,
        metadata=tuple(sorted(status.metadata.items())),
    )


def _metric_values(items: list[dict[str, Any]]) -> dict[str, str]:
    """peer → value of the valid metrics in a /monitor/metrics answer."""
    values: dict[str, str] = {}
    for item in items:
        peer, value = item.get("peer"), item.get("value")
        if isinstance(peer, str) and isinstance(value, str) and item.get("valid", True) is not False:
            values[peer] = value
    return values


class ClusterPinner:
    """Pinner on an IPFS-Cluster (the client's lifetime is this pinner's)."""

    kind = "cluster"

    def __init__(
        self,
        client: ClusterClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        tag_names: Sequence[str] = DEFAULT_TAG_NAMES,
    ) -> None:
        if any(not name or not name.isprintable() or "/" in name for name in tag_names):
            raise ConfigError("cluster tag names must be non-empty printable names without '/'")
        self._client = client
        self._clock = clock
        self._tag_names = tuple(tag_names)
        self._tags: dict[str, tuple[float, dict[str, str]]] = {}

    async def _tag_values(self, tag: str) -> dict[str, str]:
        cached = self._tags.get(tag)
        if cached is not None and self._clock() - cached[0] < _TAG_TTL:
            return cached[1]
        values = _metric_values(await self._client.metrics(f"tag:{tag}"))
        self._tags[tag] = (self._clock(), values)
        return values

    async def placement(self, policy: ReplicationPolicy) -> tuple[str, ...]:
        """The peers to allocate to first: the policy's explicit peers, else those matching every tag."""
        if policy.allocations:
            return policy.allocations
        if not policy.tags:
            return ()
        matching: set[str] | None = None
        for tag, wanted in policy.tags:
            values = await self._tag_values(tag)
            peers = {peer for peer, value in values.items() if value == wanted}
            matching = peers if matching is None else matching & peers
        if not matching:
            wanted_text = ", ".join(f"{tag}={value}" for tag, value in policy.tags)
            raise BackendError(f"no cluster peer has the allocation tags {wanted_text}")
        return tuple(sorted(matching))

    async def pin(self, cid: str, *, name: str, policy: ReplicationPolicy, metadata: Mapping[str, str]) -> None:
        allocations = await self.placement(policy)
        await self._client.pin(
            cid,
            replication_min=policy.replication_min,
            replication_max=policy.replication_max,
            name=name,
            metadata=metadata,
            user_allocations=allocations,
        )

    async def unpin(self, cid: str) -> None:
        await self._client.unpin(cid)

    async def status(self, cid: str) -> PinReport:
        return report_of(await self._client.status(cid))

    async def recover(self, cid: str) -> PinReport:
        return report_of(await self._client.recover(cid))

    async def pinset(self) -> AsyncIterator[PinReport]:
        for status in await self._client.statuses():
            yield report_of(status)

    async def _peer_tags(self) -> dict[str, list[tuple[str, str]]]:
        """peer → its (tag, value) pairs, from one `tag:<name>` metric call per tag name (the configured names
        and those bucket policies asked for; cached like placement's). A tag the cluster does not report, or
        answers malformed, is left out."""
        tags: dict[str, list[tuple[str, str]]] = {}
        names = {*self._tag_names, *self._tags}
        with contextlib.suppress(BackendError):  # without the names list: the configured names only
            names.update(n.removeprefix("tag:") for n in await self._client.metric_names() if n.startswith("tag:"))
        for tag in sorted(name for name in names if name and name.isprintable() and "/" not in name):
            try:
                values = await self._tag_values(tag)
            except BackendError:
                continue
            for peer, value in values.items():
                tags.setdefault(peer, []).append((tag, value))
        return tags

    async def peers(self) -> Sequence[PeerInfo]:
        found = await self._client.peers()
        try:
            free = _metric_values(await self._client.metrics("freespace"))
        except BackendError:
            free = {}
        tags = await self._peer_tags()
        peers: list[PeerInfo] = []
        for item in found:
            peer_id = item.get("id")
            if not isinstance(peer_id, str):
                continue
            addresses = item.get("addresses")
            space = free.get(peer_id, "")
            peers.append(
                PeerInfo(
                    peer_id=peer_id,
                    name=str(item.get("peername") or ""),
                    addresses=tuple(str(a) for a in addresses) if isinstance(addresses, list) else (),
                    error=str(item.get("error") or ""),
                    freespace=int(space) if space.isdigit() else None,
                    tags=tuple(tags.get(peer_id, ())),
                )
            )
        return peers

    async def aclose(self) -> None:
        await self._client.aclose()
