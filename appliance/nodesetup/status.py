"""`s3ipfs node status`: both daemons' health, versions, peers, and where their binaries are (every call bounded)."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from appliance.config import AppConfig
from appliance.errors import BackendUnavailable, S3IpfsError
from appliance.ipfsconn.kubo import KuboClient
from appliance.pinning.cluster import ClusterClient

__all__ = ["BinaryStatus", "ClusterStatus", "KuboStatus", "NodeStatus", "find_binary", "gather", "render"]

KUBO_BINARY = "ipfs"
CLUSTER_BINARY = "ipfs-cluster-service"
_STATUS_TIMEOUT = 5.0  # seconds for one status call: status must answer even when a daemon hangs


@dataclass(frozen=True)
class BinaryStatus:
    name: str
    path: str | None  # None: not found
    configured: str  # node.kubo_binary / node.cluster_binary, "" = look on PATH


@dataclass
class KuboStatus:
    url: str
    up: bool = False
    error: str = ""
    version: str = ""
    peer_id: str = ""
    agent: str = ""
    swarm_peers: int | None = None


@dataclass
class ClusterStatus:
    endpoints: list[str]
    configured: bool
    up: bool = False
    error: str = ""
    version: str = ""
    peer_id: str = ""
    peername: str = ""
    ipfs_peer_id: str = ""
    peers: list[dict[str, str]] = field(default_factory=list)  # {"id", "peername", "error"}
    healthy: bool = False


@dataclass
class NodeStatus:
    kubo: KuboStatus
    cluster: ClusterStatus
    binaries: list[BinaryStatus]

    @property
    def healthy(self) -> bool:
        """Every configured daemon up and (cluster) no peer reporting an error."""
        return self.kubo.up and (not self.cluster.configured or self.cluster.healthy)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def find_binary(configured: str, name: str) -> str | None:
    """The configured binary if it is an executable file, else `name` on PATH."""
    if configured:
        path = Path(configured)
        return str(path) if path.is_file() and shutil.which(str(path)) else None
    return shutil.which(name)


class _StatusKuboClient(KuboClient):
    """The two read-only calls status needs beyond the ContentStore (`id`, `swarm/peers`), through the same
    chokepoint."""

    async def node_id(self) -> dict[str, Any]:
        return await self._call("id")

    async def swarm_peer_count(self) -> int:
        peers = (await self._call("swarm/peers")).get("Peers") or []
        return len(peers) if isinstance(peers, list) else 0


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, S3IpfsError) else f"{type(exc).__name__}: {exc}"


async def _kubo(config: AppConfig, transport: httpx.AsyncBaseTransport | None, call_timeout: float) -> KuboStatus:
    status = KuboStatus(url=config.ipfs.api_url)
    client = _StatusKuboClient(
        config.ipfs.api_url,
        timeout=call_timeout,
        connect_timeout=min(call_timeout, config.ipfs.connect_timeout),
        auth_header=config.ipfs.auth_header,
        transport=transport,
    )
    try:
        async with client:
            status.version = await client.ping()
            status.up = True
            info = await client.node_id()
            status.peer_id = str(info.get("ID") or "")
            status.agent = str(info.get("AgentVersion") or "")
            status.swarm_peers = await client.swarm_peer_count()
    except (S3IpfsError, httpx.HTTPError, ValueError) as exc:
        status.error = _reason(exc)
    return status


async def _cluster(config: AppConfig, transport: httpx.AsyncBaseTransport | None, call_timeout: float) -> ClusterStatus:
    section = config.cluster
    status = ClusterStatus(endpoints=list(section.endpoints), configured=bool(section.endpoints))
    if not status.configured:
        return status
    client = ClusterClient(
        section.endpoints,
        basic_auth=(section.username, section.password) if section.username else None,
        jwt=section.jwt or None,
        timeout=call_timeout,
        connect_timeout=min(call_timeout, section.connect_timeout),
        transport=transport,
    )
    try:
        async with client:
            status.version = await client.version()
            status.up = True
            own = await client.id()
            status.peer_id = str(own.get("id") or "")
            status.peername = str(own.get("peername") or "")
            ipfs = own.get("ipfs")
            status.ipfs_peer_id = str(ipfs.get("id") or "") if isinstance(ipfs, dict) else ""
            for peer in await client.peers():
                status.peers.append(
                    {
                        "id": str(peer.get("id") or ""),
                        "peername": str(peer.get("peername") or ""),
                        "error": str(peer.get("error") or ""),
                    }
                )
            own_error = str(own.get("error") or "")
            ipfs_error = str(ipfs.get("error") or "") if isinstance(ipfs, dict) else ""
            if own_error or ipfs_error:
                status.error = own_error or f"its IPFS node: {ipfs_error}"
            status.healthy = not status.error and not any(p["error"] for p in status.peers)
    except (S3IpfsError, httpx.HTTPError, ValueError) as exc:
        # Unreachable and "answered with an error" (e.g. 401: wrong credentials) need different fixes.
        status.error = ("unreachable: " if isinstance(exc, BackendUnavailable) else "") + _reason(exc)
    return status


async def gather(
    config: AppConfig,
    *,
    kubo_transport: httpx.AsyncBaseTransport | None = None,
    cluster_transport: httpx.AsyncBaseTransport | None = None,
    call_timeout: float = _STATUS_TIMEOUT,
) -> NodeStatus:
    """Ask both daemons at once; an unreachable one is a status, never an exception."""
    kubo, cluster = await asyncio.gather(
        _kubo(config, kubo_transport, min(call_timeout, config.ipfs.timeout)),
        _cluster(config, cluster_transport, min(call_timeout, config.cluster.timeout)),
    )
    binaries = [
        BinaryStatus(KUBO_BINARY, find_binary(config.node.kubo_binary, KUBO_BINARY), config.node.kubo_binary),
        BinaryStatus(
            CLUSTER_BINARY, find_binary(config.node.cluster_binary, CLUSTER_BINARY), config.node.cluster_binary
        ),
    ]
    return NodeStatus(kubo, cluster, binaries)


def _kubo_lines(kubo: KuboStatus) -> list[str]:
    if not kubo.up:
        return [f"ipfs      DOWN  {kubo.url}: {kubo.error}"]
    peers = "?" if kubo.swarm_peers is None else str(kubo.swarm_peers)
    line = f"ipfs      up    {kubo.url}  version {kubo.version}  peer {kubo.peer_id or '?'}  swarm peers {peers}"
    lines = [line]
    if kubo.agent:
        lines.append(f"          agent {kubo.agent}")
    if kubo.error:
        lines.append(f"          warning: {kubo.error}")
    return lines


def _cluster_lines(cluster: ClusterStatus) -> list[str]:
    if not cluster.configured:
        return ["cluster   not configured (cluster.endpoints is empty): pins stay on the local IPFS node"]
    where = ", ".join(cluster.endpoints)
    if not cluster.up:
        return [f"cluster   DOWN  {where}: {cluster.error}"]
    state = "up   " if cluster.healthy else "UNHEALTHY"
    lines = [
        f"cluster   {state} {where}  version {cluster.version}  peer {cluster.peer_id or '?'}"
        f" ({cluster.peername or '?'})  peers {len(cluster.peers)}"
    ]
    if cluster.error:
        lines.append(f"          error: {cluster.error}")
    for peer in cluster.peers:
        mark = f"ERROR {peer['error']}" if peer["error"] else "ok"
        lines.append(f"          peer {peer['id']} ({peer['peername'] or '?'}): {mark}")
    return lines


def render(status: NodeStatus) -> str:
    """The human-readable report."""
    lines = _kubo_lines(status.kubo) + _cluster_lines(status.cluster)
    for binary in status.binaries:
        if binary.path:
            lines.append(f"binary    {binary.name}: {binary.path}")
        elif binary.configured:
            lines.append(f"binary    {binary.name}: MISSING at {binary.configured} (node.*_binary in the config)")
        else:
            lines.append(
                f"binary    {binary.name}: MISSING (not on PATH; install it with `s3ipfs node install --from …`)"
            )
    lines.append("healthy" if status.healthy else "NOT healthy")
    return "\n".join(lines) + "\n"
