"""The files of an IPFS-Cluster peer folder: `service.json`, `identity.json` and `peerstore` (crdt consensus)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.nodesetup.identity import Identity
from appliance.nodesetup.multiaddr import Multiaddr

__all__ = ["ClusterSettings", "identity_json", "peerstore_text", "service_json"]


@dataclass(frozen=True)
class ClusterSettings:
    """What `s3ipfs node init` decides for the local cluster peer."""

    identity: Identity
    secret: str  # 64 hex
    peername: str
    peers: Sequence[Multiaddr]  # other cluster peers, each ending with /p2p/<id>
    api_username: str
    api_password: str
    cluster_name: str = "s3ipfs"
    listen: Sequence[str] = ("/ip4/0.0.0.0/tcp/9096",)
    replication_min: int = -1
    replication_max: int = -1
    tags: Mapping[str, str] = field(default_factory=lambda: {"group": "default"})
    rest_api: str = "/ip4/127.0.0.1/tcp/9094"
    ipfs_api: str = "/ip4/127.0.0.1/tcp/5001"
    trust_all: bool = False


def _trusted(settings: ClusterSettings) -> list[str]:
    if settings.trust_all:
        return ["*"]
    trusted = [settings.identity.peer_id]
    for peer in settings.peers:
        if peer.peer_id is not None and peer.peer_id not in trusted:
            trusted.append(peer.peer_id)
    return trusted


def service_json(settings: ClusterSettings) -> dict[str, Any]:
    """`service.json`: the sections the appliance decides; the cluster fills every other field with its default."""
    return {
        "cluster": {
            "peername": settings.peername,
            "secret": settings.secret,
            "leave_on_shutdown": False,
            "listen_multiaddress": list(settings.listen),
            "enable_relay_hop": False,
            "connection_manager": {"high_water": 400, "low_water": 100, "grace_period": "2m0s"},
            "dial_peer_timeout": "3s",
            "state_sync_interval": "5m0s",
            "pin_recover_interval": "12m0s",
            "replication_factor_min": settings.replication_min,
            "replication_factor_max": settings.replication_max,
            "monitor_ping_interval": "15s",
            "peer_watch_interval": "5s",
            "mdns_interval": "0s",  # the peerstore and trusted peers name every peer; no LAN broadcasts
            "pin_only_on_trusted_peers": False,
            "disable_repinning": False,  # re-allocate a dead peer's pins so replication_min holds
            "follower_mode": False,
            "peer_addresses": [],
        },
        "consensus": {
            "crdt": {
                "cluster_name": settings.cluster_name,
                "trusted_peers": _trusted(settings),
                "batching": {"max_batch_size": 0, "max_batch_age": "0s"},
                "repair_interval": "1h0m0s",
            }
        },
        "api": {
            "restapi": {
                "http_listen_multiaddress": settings.rest_api,
                "read_timeout": "0s",
                "read_header_timeout": "5s",
                "write_timeout": "0s",
                "idle_timeout": "2m0s",
                "max_header_bytes": 4096,
                "basic_auth_credentials": {settings.api_username: settings.api_password},
                "http_log_file": "",
                "headers": {},
                "cors_allowed_origins": [],
                "cors_allowed_methods": ["GET"],
                "cors_allowed_headers": [],
                "cors_exposed_headers": ["Content-Type", "X-Stream-Output", "X-Chunked-Output", "X-Content-Length"],
                "cors_allow_credentials": True,
                "cors_max_age": "0s",
            }
        },
        "ipfs_connector": {
            "ipfshttp": {
                "node_multiaddress": settings.ipfs_api,
                "connect_swarms_delay": "30s",
                "ipfs_request_timeout": "5m0s",
                "pin_timeout": "2m0s",
                "unpin_timeout": "3h0m0s",
                "repogc_timeout": "24h0m0s",
                "informer_trigger_interval": 0,
            }
        },
        "pin_tracker": {
            "stateless": {
                "concurrent_pins": 10,
                "priority_pin_max_age": "24h0m0s",
                "priority_pin_max_retries": 5,
                "max_pin_queue_size": 1000000,
            }
        },
        "monitor": {"pubsubmon": {"check_interval": "15s"}},
        "allocator": {"balanced": {"allocate_by": ["tag:group", "freespace"]}},
        "informer": {
            "disk": {"metric_ttl": "30s", "metric_type": "freespace"},
            "tags": {"metric_ttl": "30s", "tags": dict(settings.tags)},
            "pinqueue": {"metric_ttl": "30s", "weight_bucket_size": 100000},
        },
        "datastore": {"pebble": {"folder": "pebble"}},
    }


def identity_json(identity: Identity) -> dict[str, str]:
    """`identity.json`: the peer's ID and base64 protobuf private key."""
    return {"id": identity.peer_id, "private_key": identity.private_key}


def peerstore_text(peers: Sequence[Multiaddr]) -> str:
    """The `peerstore` file: one multiaddress with /p2p/<id> per line, the addresses the peer dials at start."""
    return "".join(f"{peer.text}\n" for peer in peers)


def dumps(data: Any) -> str:
    """The JSON text written to disk (indented like the daemons' own files)."""
    return json.dumps(data, indent=2) + "\n"
