"""Admin /ready names the degraded component (the cluster too) without internal detail, and /metrics carries the
scrape-time gauges: cluster peers, LMDB, the outbox's oldest job, the IPFS node, the state dir and TLS expiry."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from quart import Quart

from appliance.api.admin.app import AdminState
from appliance.errors import BackendUnavailable
from appliance.model import PeerInfo, ReplicationPolicy
from appliance.service.objects import ObjectService
from appliance.service.pin_orchestrator import OrchestratorSettings, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.support.admin_auth import authed_admin_app
from tests.support.metrics_text import Samples
from tests.support.tls import self_signed
from tests.unit.service.test_pin_orchestrator import FakePinner, MemoryContent, as_content
from tests.unit.state.support import GRACE, make_bucket, make_meta


class ClusterFake(FakePinner):
    kind = "cluster"

    def __init__(self) -> None:
        super().__init__()
        self.peers_error: BaseException | None = None

    async def peers(self) -> list[PeerInfo]:
        if self.peers_error is not None:
            raise self.peers_error
        return list(self.peer_list)


def _app(
    tmp_path: Path, pinner: FakePinner, certificates: tuple[tuple[str, str], ...] = ()
) -> tuple[Quart, LmdbMetadataStore]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    store.create_bucket(make_bucket())
    content = as_content(MemoryContent())
    policies = PolicyBook(store, ReplicationPolicy(2, 3))
    orchestrator = PinOrchestrator(
        store, pinner, policies, OrchestratorSettings(), rng=random.Random(1), registry=CollectorRegistry()
    )
    state = AdminState(
        objects=ObjectService(store, content, unpin_grace=GRACE),
        content=content,
        store=store,
        unpinner=Unpinner(store, content, interval=1.0),
        pinner=pinner,
        policies=policies,
        orchestrator=orchestrator,
        state_dir=str(tmp_path),
        certificates=certificates,
    )
    return authed_admin_app(state, tmp_path), store


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Quart, LmdbMetadataStore, ClusterFake]]:
    pinner = ClusterFake()
    cert, _key = self_signed(tmp_path)
    app, store = _app(tmp_path, pinner, (("s3", str(cert)),))
    yield app, store, pinner
    store.close()


async def test_ready_covers_the_cluster(cluster: tuple[Quart, LmdbMetadataStore, ClusterFake]) -> None:
    app, _store, pinner = cluster
    response = await app.test_client().get("/ready")
    body = await response.get_json()
    assert response.status_code == 200 and body["components"]["cluster"] == {"ready": True}
    pinner.peers_error = BackendUnavailable("IPFS Cluster GET /peers: no endpoint answered (http://10.9.8.7:9094)")
    response = await app.test_client().get("/ready")
    body = await response.get_json()
    assert response.status_code == 503 and body["not_ready"] == ["cluster"]
    reason = body["components"]["cluster"]["reason"]
    assert reason.startswith("the IPFS cluster cannot be reached (request id ") and "10.9.8.7" not in reason
    assert body["components"]["ipfs"]["ready"] and body["components"]["metadata"]["ready"]


async def test_ready_has_no_cluster_without_one(tmp_path: Path) -> None:
    app, store = _app(tmp_path, FakePinner())
    try:
        body = await (await app.test_client().get("/ready")).get_json()
        assert set(body["components"]) == {"ipfs", "metadata"}
    finally:
        store.close()


async def test_metrics_gauges_measured_at_scrape(cluster: tuple[Quart, LmdbMetadataStore, ClusterFake]) -> None:
    app, store, pinner = cluster
    pinner.peer_list = [PeerInfo("id-a", "a"), PeerInfo("id-b", "b", error="unreachable"), PeerInfo("id-c", "")]
    store.put_object(
        make_meta("k", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"),
        unpin_grace=GRACE,
        now=time.time() - 100,
    )
    samples = Samples(await (await app.test_client().get("/metrics")).get_data(as_text=True))
    assert samples.value("s3ipfs_cluster_up") == 1
    assert (
        samples.value("s3ipfs_cluster_peers", state="ok") == 2
        and samples.value("s3ipfs_cluster_peers", state="error") == 1
    )
    assert [samples.value("s3ipfs_cluster_peer_up", peer=p) for p in ("a", "b", "id-c")] == [1, 0, 1]
    assert samples.value("s3ipfs_lmdb_map_size_bytes") == 1 << 26
    assert 0 < samples.value("s3ipfs_lmdb_map_used_bytes") < 1 << 26
    assert samples.value("s3ipfs_lmdb_max_readers") == 1024
    assert samples.value("s3ipfs_pin_outbox_depth") == 1
    assert samples.value("s3ipfs_pin_outbox_oldest_age_seconds") >= 99
    assert samples.value("s3ipfs_ipfs_up") == 1
    assert samples.value("s3ipfs_state_dir_size_bytes") >= samples.value("s3ipfs_state_dir_free_bytes") > 0
    expiry = samples.value("s3ipfs_tls_certificate_expiry_seconds", certificate="s3")
    assert time.time() < expiry <= time.time() + 86400 + 60
    assert samples.has("ipfs_pin_duration_seconds_count", pinner="cluster")  # exported before the first pin
    pinner.peers_error = BackendUnavailable("down")
    down = Samples(await (await app.test_client().get("/metrics")).get_data(as_text=True))
    assert down.value("s3ipfs_cluster_up") == 0 and not down.has("s3ipfs_cluster_peer_up")
