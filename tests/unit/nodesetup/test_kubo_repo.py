"""The Kubo repo files for a private LAN node."""

from __future__ import annotations

import json

import pytest

from appliance.nodesetup.identity import generate_identity
from appliance.nodesetup.kubo_repo import KuboSettings, datastore_spec, kubo_config, validate_storage_max
from appliance.nodesetup.multiaddr import parse_peer_addr

A, B = generate_identity().peer_id, generate_identity().peer_id


def _config() -> dict[str, object]:
    peers = [
        parse_peer_addr(f"/ip4/10.0.0.2/tcp/4001/p2p/{A}", what="--peer"),
        parse_peer_addr(f"/ip4/10.0.1.2/tcp/4001/p2p/{A}", what="--peer"),
        parse_peer_addr(f"/ip4/10.0.0.3/tcp/4001/p2p/{B}", what="--peer"),
    ]
    return kubo_config(KuboSettings(identity=generate_identity(), peers=peers, storage_max="100GB"))


def test_private_lan_config() -> None:
    config = _config()
    addresses = config["Addresses"]
    assert isinstance(addresses, dict)
    assert addresses["API"] == "/ip4/127.0.0.1/tcp/5001"
    assert addresses["Gateway"] == "/ip4/127.0.0.1/tcp/8080"
    assert addresses["Swarm"] == ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001"]
    assert config["Bootstrap"] == [
        f"/ip4/10.0.0.2/tcp/4001/p2p/{A}",
        f"/ip4/10.0.1.2/tcp/4001/p2p/{A}",
        f"/ip4/10.0.0.3/tcp/4001/p2p/{B}",
    ]
    assert config["Peering"] == {
        "Peers": [
            {"ID": A, "Addrs": ["/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.1.2/tcp/4001"]},
            {"ID": B, "Addrs": ["/ip4/10.0.0.3/tcp/4001"]},
        ]
    }
    assert config["AutoConf"] == {"Enabled": False}
    assert config["DNS"] == {"Resolvers": {}}
    assert config["Ipns"] == {"DelegatedPublishers": []}
    routing = config["Routing"]
    assert isinstance(routing, dict) and routing["Type"] == "dht" and routing["DelegatedRouters"] == []
    assert config["Discovery"] == {"MDNS": {"Enabled": False}}
    datastore = config["Datastore"]
    assert isinstance(datastore, dict) and datastore["StorageMax"] == "100GB"
    swarm = config["Swarm"]
    assert isinstance(swarm, dict) and swarm["ResourceMgr"] == {"Enabled": True}
    assert swarm["Transports"]["Network"]["QUIC"] is False
    assert "auto" not in json.dumps(config).replace("AutoConf", "").replace("AutoTLS", "").replace("AutoNAT", "")


def test_datastore_spec_is_the_disk_part_of_the_config_spec() -> None:
    assert datastore_spec() == (
        '{"mounts":[{"mountpoint":"/blocks","path":"blocks","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2",'
        '"type":"flatfs"},{"mountpoint":"/","path":"datastore","type":"levelds"}],"type":"mount"}'
    )


@pytest.mark.parametrize("value", ["100GB", "2TiB", "512MB", "1.5TB"])
def test_storage_sizes(value: str) -> None:
    assert validate_storage_max(value) == value


@pytest.mark.parametrize("value", ["", "100", "lots", "-1GB", "10 XB"])
def test_bad_storage_sizes(value: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 100GB"):
        validate_storage_max(value)
