"""The files of a Kubo repo for a private LAN node: `config`, `swarm.key`, `datastore_spec` and `version`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.nodesetup.identity import Identity
from appliance.nodesetup.multiaddr import Multiaddr

__all__ = ["KUBO_REPO_VERSION", "KuboSettings", "datastore_spec", "kubo_config", "validate_storage_max"]

# fs-repo version of Kubo >= 0.38 (migration 17->18). An older Kubo refuses the repo; a newer one migrates it
# (`ipfs daemon --migrate`, as s3ipfs-ipfs.service runs it).
KUBO_REPO_VERSION = 18
_STORAGE = re.compile(r"^\d+(\.\d+)?\s*([kKMGTP]i?B|B)$")

# Kubo's default flatfs + leveldb layout; `datastore_spec` must be the compact, key-sorted JSON of its disk part.
_FLATFS_SHARD = "/repo/flatfs/shard/v1/next-to-last/2"
_SPEC: dict[str, Any] = {
    "mounts": [
        {
            "child": {"path": "blocks", "shardFunc": _FLATFS_SHARD, "sync": True, "type": "flatfs"},
            "mountpoint": "/blocks",
            "prefix": "flatfs.datastore",
            "type": "measure",
        },
        {
            "child": {"compression": "none", "path": "datastore", "type": "levelds"},
            "mountpoint": "/",
            "prefix": "leveldb.datastore",
            "type": "measure",
        },
    ],
    "type": "mount",
}


def validate_storage_max(value: str) -> str:
    """`value` if Kubo can parse it as a size (e.g. `100GB`, `2TiB`); ValueError otherwise."""
    if not _STORAGE.match(value.strip()):
        raise ValueError(f"storage size {value!r} must be a number and a unit, e.g. 100GB or 2TiB")
    return value.strip()


@dataclass(frozen=True)
class KuboSettings:
    """What `s3ipfs node init` decides for the local Kubo node."""

    identity: Identity
    peers: Sequence[Multiaddr]  # each ends with /p2p/<id>
    swarm_listen: Sequence[str] = ("/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001")
    announce: Sequence[str] = ()
    api: str = "/ip4/127.0.0.1/tcp/5001"
    gateway: str = "/ip4/127.0.0.1/tcp/8080"
    storage_max: str = "10GB"
    mdns: bool = False
    resource_max_memory: str = ""  # empty: Kubo's default (half of the RAM)
    extra: dict[str, Any] = field(default_factory=dict)


def _peering(peers: Sequence[Multiaddr]) -> list[dict[str, Any]]:
    grouped: dict[str, list[str]] = {}
    for peer in peers:
        assert peer.peer_id is not None  # parse_peer_addr guarantees it
        addrs = grouped.setdefault(peer.peer_id, [])
        if peer.transport_text and peer.transport_text not in addrs:
            addrs.append(peer.transport_text)
    return [{"ID": peer_id, "Addrs": addrs} for peer_id, addrs in grouped.items()]


def kubo_config(settings: KuboSettings) -> dict[str, Any]:
    """The Kubo `config` JSON for a node of a private LAN network: APIs on loopback, bootstrap and peering only
    with the given peers, AutoConf and every public-network service off, TCP only (what a swarm key allows)."""
    resource_mgr: dict[str, Any] = {"Enabled": True}
    if settings.resource_max_memory:
        resource_mgr["MaxMemory"] = settings.resource_max_memory
    return {
        "Identity": {"PeerID": settings.identity.peer_id, "PrivKey": settings.identity.private_key},
        "Datastore": {
            "StorageMax": settings.storage_max,
            "StorageGCWatermark": 90,
            "GCPeriod": "1h",
            "Spec": _SPEC,
            "HashOnRead": False,
            "BloomFilterSize": 0,
        },
        "Addresses": {
            "API": settings.api,
            "Gateway": settings.gateway,
            "Swarm": list(settings.swarm_listen),
            "Announce": list(settings.announce),
            "AppendAnnounce": [],
            "NoAnnounce": [],
        },
        "API": {"HTTPHeaders": {}},
        "Bootstrap": [peer.text for peer in settings.peers],
        "Peering": {"Peers": _peering(settings.peers)},
        "AutoConf": {"Enabled": False},
        "AutoTLS": {"Enabled": False},
        "DNS": {"Resolvers": {}},
        "Ipns": {"DelegatedPublishers": []},
        # A private network has no public DHT to join: a LAN DHT among our own peers; no delegated HTTP routers.
        "Routing": {"Type": "dht", "DelegatedRouters": [], "AcceleratedDHTClient": False},
        "Discovery": {"MDNS": {"Enabled": settings.mdns}},
        "Swarm": {
            "DisableNatPortMap": True,
            "RelayClient": {"Enabled": False},
            "RelayService": {"Enabled": False},
            "EnableHolePunching": False,
            "Transports": {
                "Network": {
                    "TCP": True,
                    "QUIC": False,
                    "Websocket": False,
                    "WebTransport": False,
                    "WebRTCDirect": False,
                }
            },
            "ResourceMgr": resource_mgr,
            "ConnMgr": {"Type": "basic", "LowWater": 100, "HighWater": 400, "GracePeriod": "1m"},
        },
        "AutoNAT": {"ServiceMode": "disabled"},
        "Gateway": {"NoFetch": True, "PublicGateways": {}},
        "Provide": {"Enabled": True, "Strategy": "pinned"},
        "Experimental": {"FilestoreEnabled": False, "UrlstoreEnabled": False},
        **settings.extra,
    }


def datastore_spec() -> str:
    """The `datastore_spec` file Kubo compares with `Datastore.Spec` (`DiskSpec`: child paths and types only)."""
    mounts = []
    for mount in _SPEC["mounts"]:
        child = mount["child"]
        disk = {"mountpoint": mount["mountpoint"], "path": child["path"], "type": child["type"]}
        if child["type"] == "flatfs":
            disk["shardFunc"] = child["shardFunc"]
        mounts.append(disk)
    return json.dumps({"mounts": mounts, "type": "mount"}, sort_keys=True, separators=(",", ":"))
