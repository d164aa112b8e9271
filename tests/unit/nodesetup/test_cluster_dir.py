"""The IPFS-Cluster peer folder: service.json sections, identity.json, peerstore."""

from __future__ import annotations

from appliance.nodesetup.cluster_dir import ClusterSettings, identity_json, peerstore_text, service_json
from appliance.nodesetup.identity import generate_identity
from appliance.nodesetup.multiaddr import parse_peer_addr

OTHER = generate_identity().peer_id


def _settings(**overrides: object) -> ClusterSettings:
    values: dict[str, object] = {
        "identity": generate_identity(),
        "secret": "ab" * 32,
        "peername": "host1",
        "peers": [parse_peer_addr(f"/ip4/10.0.0.2/tcp/9096/p2p/{OTHER}", what="--cluster-peer")],
        "api_username": "s3ipfs",
        "api_password": "pw",
        "replication_min": 2,
        "replication_max": 3,
        "tags": {"group": "rack1"},
    }
    values.update(overrides)
    return ClusterSettings(**values)  # type: ignore[arg-type]


def test_service_json() -> None:
    settings = _settings()
    data = service_json(settings)
    cluster = data["cluster"]
    assert cluster["secret"] == "ab" * 32 and cluster["peername"] == "host1"
    assert cluster["listen_multiaddress"] == ["/ip4/0.0.0.0/tcp/9096"]
    assert (cluster["replication_factor_min"], cluster["replication_factor_max"]) == (2, 3)
    crdt = data["consensus"]["crdt"]
    assert crdt["cluster_name"] == "s3ipfs"
    assert crdt["trusted_peers"] == [settings.identity.peer_id, OTHER]
    rest = data["api"]["restapi"]
    assert rest["http_listen_multiaddress"] == "/ip4/127.0.0.1/tcp/9094"
    assert rest["basic_auth_credentials"] == {"s3ipfs": "pw"}
    assert data["ipfs_connector"]["ipfshttp"]["node_multiaddress"] == "/ip4/127.0.0.1/tcp/5001"
    assert data["informer"]["disk"]["metric_type"] == "freespace"
    assert data["informer"]["tags"]["tags"] == {"group": "rack1"}
    assert data["allocator"]["balanced"]["allocate_by"] == ["tag:group", "freespace"]
    assert "raft" not in data["consensus"]


def test_trust_all() -> None:
    assert service_json(_settings(trust_all=True))["consensus"]["crdt"]["trusted_peers"] == ["*"]


def test_identity_and_peerstore() -> None:
    settings = _settings()
    assert identity_json(settings.identity) == {
        "id": settings.identity.peer_id,
        "private_key": settings.identity.private_key,
    }
    assert peerstore_text(settings.peers) == f"/ip4/10.0.0.2/tcp/9096/p2p/{OTHER}\n"
    assert peerstore_text([]) == ""
