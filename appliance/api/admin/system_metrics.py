"""Gauges measured when Prometheus scrapes: the metadata store, the pin outbox's age, the IPFS node and its repo, the
cluster's peers, the state directory's disk and the configured TLS certificates' expiry.

Each probe has a deadline; one that fails leaves its gauges out (and sets its `_up` gauge to 0) rather than failing the
scrape, so a down node is visible as `s3ipfs_ipfs_up 0`, not as a missing target.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from appliance.components import ContentStore, MetadataStore, Pinner

__all__ = ["SystemMetrics", "certificate_not_after"]

log = logging.getLogger("appliance.admin")


def certificate_not_after(path: str) -> float:
    """The Unix time the first certificate of a PEM file expires; ValueError/OSError when unreadable."""
    with open(path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    return cert.not_valid_after_utc.timestamp()


@dataclass(eq=False)
class SystemMetrics:
    """A collector whose values `refresh()` measures (called by the /metrics route before rendering)."""

    store: MetadataStore
    content: ContentStore
    pinner: Pinner | None = None
    state_dir: str = ""
    certificates: Sequence[tuple[str, str]] = ()  # (name, PEM file) of every configured certificate
    timeout: float = 5.0
    _families: list[Metric] = field(default_factory=list)

    def collect(self) -> Iterable[Metric]:
        return list(self._families)

    async def refresh(self) -> None:
        families: list[Metric] = []
        families += await asyncio.to_thread(self._store_families)
        families += await self._ipfs_families()
        if self.pinner is not None and self.pinner.kind == "cluster":
            families += await self._cluster_families()
        families += await asyncio.to_thread(self._local_families)
        self._families = families

    def _store_families(self) -> list[Metric]:
        stats_of = getattr(self.store, "stats", None)
        out: list[Metric] = []
        if stats_of is not None:
            stats = stats_of()
            out.append(
                _gauge("s3ipfs_lmdb_map_size_bytes", "The LMDB map size (metadata.map_size).", stats["map_size_bytes"])
            )
            out.append(
                _gauge(
                    "s3ipfs_lmdb_map_used_bytes", "Bytes of the LMDB map in use (last page).", stats["map_used_bytes"]
                )
            )
            out.append(_gauge("s3ipfs_lmdb_readers", "LMDB reader slots in use.", stats.get("readers", 0)))
            out.append(_gauge("s3ipfs_lmdb_max_readers", "LMDB reader slots available.", stats.get("max_readers", 0)))
        oldest_of = getattr(self.store, "pin_outbox_oldest", None)
        if oldest_of is not None:
            oldest = oldest_of()
            age = 0.0 if oldest is None else max(0.0, time.time() - oldest)
            out.append(
                _gauge(
                    "s3ipfs_pin_outbox_oldest_age_seconds",
                    "Age of the oldest pin job queued or in flight (0 when the outbox is empty).",
                    age,
                )
            )
        return out

    async def _ipfs_families(self) -> list[Metric]:
        up = 1
        out: list[Metric] = []
        try:
            await asyncio.wait_for(self.content.ping(), self.timeout)
            repo_stat = getattr(self.content, "repo_stat", None)
            if repo_stat is not None:
                stat = await asyncio.wait_for(repo_stat(), self.timeout)
                out.append(_gauge("s3ipfs_ipfs_repo_size_bytes", "Bytes the IPFS node's repo holds.", stat.repo_size))
                out.append(
                    _gauge("s3ipfs_ipfs_repo_max_bytes", "The IPFS node's repo limit (StorageMax).", stat.storage_max)
                )
        except Exception as exc:  # any failure means the node is not usable now
            log.info("metrics: the IPFS node did not answer (%s)", type(exc).__name__)
            up = 0
        out.append(_gauge("s3ipfs_ipfs_up", "1 when the IPFS node answered the last scrape's probe.", up))
        return out

    async def _cluster_families(self) -> list[Metric]:
        assert self.pinner is not None
        up = 1
        out: list[Metric] = []
        try:
            peers = await asyncio.wait_for(self.pinner.peers(), self.timeout)
        except Exception as exc:
            log.info("metrics: the cluster did not answer (%s)", type(exc).__name__)
            peers = []
            up = 0
        out.append(_gauge("s3ipfs_cluster_up", "1 when the IPFS-Cluster REST API answered the last probe.", up))
        if up:
            healthy = sum(1 for peer in peers if not peer.error)
            total = GaugeMetricFamily(
                "s3ipfs_cluster_peers", "Cluster peers seen, by state (ok, error).", labels=["state"]
            )
            total.add_metric(["ok"], healthy)
            total.add_metric(["error"], len(peers) - healthy)
            out.append(total)
            peer_up = GaugeMetricFamily(
                "s3ipfs_cluster_peer_up",
                "1 for each cluster peer that reports no error, else 0 (by peer name).",
                labels=["peer"],
            )
            for peer in peers:  # one series per cluster member: bounded by the cluster's size
                peer_up.add_metric([peer.name or peer.peer_id], 0 if peer.error else 1)
            out.append(peer_up)
        return out

    def _local_families(self) -> list[Metric]:
        out: list[Metric] = []
        if self.state_dir and os.path.isdir(self.state_dir):
            vfs = os.statvfs(self.state_dir)
            out.append(
                _gauge(
                    "s3ipfs_state_dir_free_bytes",
                    "Free bytes (for unprivileged users) on the state dir's file system.",
                    vfs.f_bavail * vfs.f_frsize,
                )
            )
            out.append(
                _gauge(
                    "s3ipfs_state_dir_size_bytes", "Size of the state dir's file system.", vfs.f_blocks * vfs.f_frsize
                )
            )
        expiry = GaugeMetricFamily(
            "s3ipfs_tls_certificate_expiry_seconds",
            "When each configured TLS certificate expires (Unix time, notAfter).",
            labels=["certificate"],
        )
        for name, path in self.certificates:
            try:
                expiry.add_metric([name], certificate_not_after(path))
            except (OSError, ValueError) as exc:
                log.warning("metrics: cannot read the %s certificate %s (%s)", name, Path(path).name, exc)
        out.append(expiry)
        return out


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
