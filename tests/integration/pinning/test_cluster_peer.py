"""The cluster test peer over three real IPFS nodes, driven by the product's ClusterClient: real pins moved by
bitswap, allocation, statuses, streams, auth, a node down and recover, restarts, and injected faults."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from appliance.errors import BackendError, BackendUnavailable
from appliance.ipfsconn.devnode import LocalNode
from appliance.pinning.cluster import ClusterClient, ClusterError, PinStatus
from tests.integration.pinning.conftest import AUTH, CAPACITY
from tests.support.cluster_peer import ClusterPeer

GiB = 1024**3


def client(peer: ClusterPeer, *more: ClusterPeer, **kwargs: Any) -> ClusterClient:
    kwargs.setdefault("basic_auth", AUTH)
    kwargs.setdefault("timeout", 20.0)
    return ClusterClient([peer.url, *(p.url for p in more)], **kwargs)


def rpc(node: LocalNode, cmd: str, **params: Any) -> httpx.Response:
    return httpx.post(f"{node.api_url}/api/v0/{cmd}", params=params, timeout=30.0, trust_env=False)


def add(node: LocalNode, size: int = 300 * 1024) -> tuple[str, bytes]:
    """Fresh random bytes added (not pinned) on `node`: a multi-block dag-pb file, CIDv1 base32."""
    data = os.urandom(size)
    params = {"pin": "false", "cid-version": "1", "raw-leaves": "true", "cid-base": "base32"}
    reply = httpx.post(f"{node.api_url}/api/v0/add", params=params, files={"file": data}, timeout=30.0)
    reply.raise_for_status()
    return str(reply.json()["Hash"]), data


def pinned_on(node: LocalNode, cid: str) -> bool:
    return rpc(node, "pin/ls", arg=cid, type="recursive").status_code == 200


def cat(node: LocalNode, cid: str) -> bytes:
    reply = rpc(node, "cat", arg=cid, timeout="10s")
    reply.raise_for_status()
    return reply.content


async def wait_for(c: ClusterClient, cid: str, done: Callable[[PinStatus], bool], timeout: float = 30.0) -> PinStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await c.status(cid)
        if done(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"status of {cid} never reached the goal: {dict(status.peers)}")
        await asyncio.sleep(0.2)


async def peer_ids(c: ClusterClient) -> list[str]:
    return [p["id"] for p in await c.peers()]


# ---- identity ----------------------------------------------------------------------------------


async def test_id_version_peers_graph(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    async with client(peer) as c:
        assert await c.version() == "1.1.6"
        me = await c.id()
        peers = await c.peers()
        graph = await c.health_graph()
    assert me["peername"] == "peer0" and me["ipfs"]["id"] == nodes[0].peer_id()
    assert [p["peername"] for p in peers] == ["peer0", "peer1", "peer2"]
    assert [p["ipfs"]["id"] for p in peers] == [n.peer_id() for n in nodes]
    assert all(p["id"].startswith("12D3KooW") and p["cluster_peers"] == [q["id"] for q in peers] for p in peers)
    assert graph["cluster_id"] == me["id"]
    assert graph["cluster_to_ipfs"] == {p["id"]: p["ipfs"]["id"] for p in peers}
    assert set(graph["ipfs_links"][nodes[0].peer_id()]) >= {nodes[1].peer_id(), nodes[2].peer_id()}


# ---- pinning -----------------------------------------------------------------------------------


async def test_pin_by_freespace_moves_content_by_bitswap(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, data = add(nodes[0])
    peer.set_faults(used={"peer0": 5 * GiB})  # peer0 is the fullest: the two emptiest are peer1, peer2
    async with client(peer) as c:
        ids = await peer_ids(c)
        pin = await c.pin(cid, replication_min=2, replication_max=2, name="b/k", metadata={"bucket": "b"})
        assert sorted(pin["allocations"]) == sorted(ids[1:])
        assert pin["metadata"] == {"bucket": "b"} and pin["name"] == "b/k"
        assert pin["replication_factor_min"] == pin["replication_factor_max"] == 2
        status = await wait_for(c, cid, lambda s: s.fully_pinned)
        freespace = {m["peer"]: int(m["value"]) for m in await c.metrics("freespace")}
    assert status.peers[ids[0]] == ("remote", "")
    assert status.pinned == 2 and status.metadata == {"bucket": "b"}
    assert [pinned_on(n, cid) for n in nodes] == [False, True, True]
    assert cat(nodes[1], cid) == data and cat(nodes[2], cid) == data
    assert freespace[ids[0]] == CAPACITY - 5 * GiB
    assert CAPACITY - freespace[ids[1]] >= len(data)  # the pin's cumulative size counts as used


async def test_user_allocations_first(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, data = add(nodes[1])
    async with client(peer) as c:
        ids = await peer_ids(c)
        pin = await c.pin(cid, replication_min=1, replication_max=1, name="", metadata={}, user_allocations=[ids[2]])
        assert pin["allocations"] == [ids[2]] and pin["user_allocations"] == [ids[2]]
        await wait_for(c, cid, lambda s: s.fully_pinned)
    assert pinned_on(nodes[2], cid) and not pinned_on(nodes[1], cid)
    assert cat(nodes[2], cid) == data


async def test_not_enough_peers(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, _ = add(nodes[0], 1000)
    async with client(peer) as c:
        with pytest.raises(ClusterError) as info:
            await c.pin(cid, replication_min=4, replication_max=5, name="", metadata={})
    assert info.value.code == 500
    assert info.value.cluster_message.startswith(
        "not enough peers to allocate CID. Needed at least: 4. Wanted at most: 5. Available candidates: 3."
    )


async def test_pin_everywhere_then_unpin(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, _ = add(nodes[2])
    async with client(peer) as c:
        pin = await c.pin(cid, replication_min=-1, replication_max=-1, name="all", metadata={})
        assert pin["allocations"] == []
        status = await wait_for(c, cid, lambda s: s.fully_pinned)
        assert status.pinned == 3
        assert all(pinned_on(n, cid) for n in nodes)
        await c.unpin(cid)
        await wait_for(c, cid, lambda s: all(st == "unpinned" for st, _ in s.peers.values()))
        await c.unpin(cid)  # not in the pinset: 404 "pin is not part of the pinset", which unpin takes as done
        assert cid not in [a["cid"] for a in await c.allocations()]
    assert not any(pinned_on(n, cid) for n in nodes)
    reply = httpx.delete(f"{peer.url}/pins/{cid}", auth=AUTH)
    assert (reply.status_code, reply.json()) == (404, {"code": 404, "message": "pin is not part of the pinset"})
    reply = httpx.get(f"{peer.url}/allocations/{cid}", auth=AUTH)
    assert reply.status_code == 404


async def test_streams_with_filters(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    good, _ = add(nodes[0], 2000)
    bad, _ = add(nodes[0], 2000)
    peer.set_faults(pin_errors={bad: "failed to pin: injected"})
    async with client(peer) as c:
        for cid in (good, bad):
            await c.pin(cid, replication_min=1, replication_max=1, name=cid[-6:], metadata={})
        await wait_for(c, good, lambda s: s.fully_pinned)
        failed = await wait_for(c, bad, lambda s: s.errors == 1)
        assert ("pin_error", "failed to pin: injected") in failed.peers.values()
        assert [s.cid for s in await c.statuses(filter="pin_error")] == [bad]
        assert [s.cid for s in await c.statuses(filter="error", cids=[good, bad])] == [bad]
        assert good in [s.cid for s in await c.statuses(filter="pinned")]
        assert [s.cid for s in await c.statuses(cids=[good])] == [good]
        local = await c.statuses(cids=[good], local=True)
        assert len(local[0].peers) == 1
        allocations = {a["cid"]: a for a in await c.allocations()}
        assert {good, bad} <= set(allocations) and allocations[good]["type"] == "pin"
        assert [a["cid"] for a in await c.allocations(filter="pin") if a["cid"] in (good, bad)] == [good, bad]
        peer.clear_faults()
        recovered = await c.recover(bad)
        assert recovered.errors == 0
        await wait_for(c, bad, lambda s: s.fully_pinned)
    reply = httpx.get(f"{peer.url}/pins", params={"filter": "nonsense"}, auth=AUTH)
    assert (reply.status_code, reply.json()["message"]) == (400, "invalid filter value")


async def test_slow_pin_goes_through_pinning(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, _ = add(nodes[0], 1500)
    peer.set_faults(pin_delay={cid: 1.5})
    async with client(peer) as c:
        await c.pin(cid, replication_min=1, replication_max=1, name="", metadata={})
        seen = await wait_for(c, cid, lambda s: "pinning" in {st for st, _ in s.peers.values()}, timeout=5)
        assert not seen.fully_pinned
        await wait_for(c, cid, lambda s: s.fully_pinned)


async def test_metrics_and_tags(peer: ClusterPeer) -> None:
    peer.set_faults(tags={"peer0": {"region": "eu"}, "peer1": {"region": "us"}, "peer2": {"region": "eu"}})
    async with client(peer) as c:
        ids = await peer_ids(c)
        freespace = await c.metrics("freespace")
        regions = {m["peer"]: m["value"] for m in await c.metrics("tag:region")}
        ping = await c.metrics("ping")
    assert sorted(m["peer"] for m in freespace) == sorted(ids)
    assert all(m["name"] == "freespace" and m["valid"] and m["weight"] == int(m["value"]) for m in freespace)
    assert regions == {ids[0]: "eu", ids[1]: "us", ids[2]: "eu"}
    assert len(ping) == 3


# ---- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"basic_auth": None}, "unauthorized: no auth provided"),
        ({"basic_auth": ("admin", "wrong")}, "unauthorized: access denied"),
        ({"basic_auth": None, "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhZG1pbiJ9.bad"}, "unauthorized: invalid token"),
    ],
)
async def test_auth_refused(peer: ClusterPeer, kwargs: dict[str, Any], message: str) -> None:
    async with client(peer, **kwargs) as c:
        with pytest.raises(ClusterError) as info:
            await c.version()
        with pytest.raises(ClusterError) as streamed:
            await c.peers()
    assert (info.value.code, info.value.cluster_message) == (401, message)
    assert streamed.value.code == 401


async def test_jwt_from_token_route_and_health_without_auth(peer: ClusterPeer) -> None:
    assert httpx.get(f"{peer.url}/health").status_code == 204
    reply = httpx.post(f"{peer.url}/token", auth=AUTH)
    token = reply.json()["token"]
    async with client(peer, basic_auth=None, jwt=token) as c:
        assert await c.version() == "1.1.6"
        assert len(await c.peers()) == 3
    assert httpx.get(f"{peer.url}/version").headers["www-authenticate"].startswith("Basic realm=")


# ---- faults: nodes, peers, the API -------------------------------------------------------------


async def test_node_down_then_recover_reallocates(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, data = add(nodes[0])
    async with client(peer) as c:
        ids = await peer_ids(c)
        await c.pin(cid, replication_min=2, replication_max=2, name="", metadata={}, user_allocations=ids[1:])
        await wait_for(c, cid, lambda s: s.fully_pinned)
        nodes[1].stop()
        down = await c.status(cid)
        assert down.peers[ids[1]][0] == "cluster_error" and down.errors == 1
        assert [s.cid for s in await c.statuses(filter="cluster_error", cids=[cid])] == [cid]
        assert ids[1] not in {m["peer"] for m in await c.metrics("freespace")}
        recovered = await c.recover(cid)
        assert sorted(recovered.allocations) == sorted([ids[0], ids[2]])
        status = await wait_for(c, cid, lambda s: s.fully_pinned)
        assert status.peers[ids[1]][0] == "remote"
    assert pinned_on(nodes[0], cid) and pinned_on(nodes[2], cid)
    assert cat(nodes[0], cid) == data


async def test_injected_peer_down(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, _ = add(nodes[0], 3000)
    async with client(peer) as c:
        ids = await peer_ids(c)
        await c.pin(cid, replication_min=-1, replication_max=-1, name="", metadata={})
        await wait_for(c, cid, lambda s: s.fully_pinned)
        peer.set_faults(down=["peer2"])
        status = await c.status(cid)
        peers = {p["id"]: p for p in await c.peers()}
        with pytest.raises(ClusterError) as info:
            await c.pin(add(nodes[0], 100)[0], replication_min=3, replication_max=3, name="", metadata={})
    assert status.peers[ids[2]][0] == "cluster_error" and status.pinned == 2
    assert peers[ids[2]]["error"] and not peers[ids[0]]["error"]
    assert "Available candidates: 2" in info.value.cluster_message


async def test_unexpectedly_unpinned(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, _ = add(nodes[0], 2500)
    async with client(peer) as c:
        ids = await peer_ids(c)
        await c.pin(cid, replication_min=1, replication_max=1, name="", metadata={}, user_allocations=[ids[1]])
        await wait_for(c, cid, lambda s: s.fully_pinned)
        rpc(nodes[1], "pin/rm", arg=cid).raise_for_status()
        lost = await c.status(cid)
        assert lost.peers[ids[1]] == ("unexpectedly_unpinned", "the item should be pinned but it is not")
        await c.recover(cid)
        await wait_for(c, cid, lambda s: s.fully_pinned)


async def test_restart_keeps_pinset_and_identities(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    cid, _ = add(nodes[0], 2000)
    async with client(peer) as c:
        before = await peer_ids(c)
        await c.pin(cid, replication_min=2, replication_max=2, name="kept", metadata={"k": "v"})
        await wait_for(c, cid, lambda s: s.fully_pinned)
    peer.kill()
    async with client(peer, connect_timeout=0.5) as c:
        with pytest.raises(BackendUnavailable):
            await c.status(cid)
    peer.start()
    async with client(peer) as c:
        assert await peer_ids(c) == before
        pins = {a["cid"]: a for a in await c.allocations()}
        assert pins[cid]["name"] == "kept" and pins[cid]["metadata"] == {"k": "v"}
        status = await c.status(cid)
    assert status.fully_pinned and status.pinned == 2


async def test_stream_error_in_trailer_and_cut(peer: ClusterPeer, nodes: list[LocalNode]) -> None:
    async with client(peer) as c:
        for _ in range(2):
            await c.pin(add(nodes[0], 500)[0], replication_min=1, replication_max=1, name="", metadata={})
        peer.set_faults(cut_stream={"path": "/allocations", "after": 1, "error": "failed to read the pinset"})
        with pytest.raises(ClusterError) as info:
            await c.allocations()
        assert (info.value.code, info.value.cluster_message) == (500, "failed to read the pinset")
        assert len(await c.allocations()) >= 2  # one cut only
        peer.set_faults(cut_stream={"path": "/peers", "after": 1, "abort": True})
        with pytest.raises(BackendUnavailable):
            await c.peers()
        peer.set_faults(cut_stream={"path": "/peers", "after": 0, "error": "no peers today"})
        with pytest.raises(ClusterError) as before_first:
            await c.peers()
        assert (before_first.value.code, before_first.value.cluster_message) == (500, "no peers today")


async def test_failover_and_api_faults(peer: ClusterPeer, nodes: list[LocalNode], tmp_path: Any) -> None:
    cid, _ = add(nodes[0], 700)
    with ClusterPeer([n.api_url for n in nodes], tmp_path / "second.json", basic_auth=AUTH) as second:
        peer.set_faults(fail_next={"count": 1, "code": 500, "message": "boom"})
        async with client(peer, second) as c:
            assert await c.version() == "1.1.6"
            assert c._current == 1  # the 500 moved it to the second peer
        peer.set_faults(fail_next={"count": 1, "code": 503, "message": "busy"})
        second.set_faults(fail_next={"count": 1, "code": 503, "message": "busy"})
        async with client(peer, second) as c:
            with pytest.raises(BackendUnavailable):
                await c.version()
    peer.set_faults(malformed_next=1)
    async with client(peer) as c:
        with pytest.raises(BackendError):
            await c.id()
        peer.set_faults(reject={cid: {"code": 400, "message": "error decoding Cid: injected"}})
        with pytest.raises(ClusterError) as info:
            await c.pin(cid, replication_min=1, replication_max=1, name="", metadata={})
        assert (info.value.code, info.value.cluster_message) == (400, "error decoding Cid: injected")
    reply = httpx.get(f"{peer.url}/pins/not-a-cid", auth=AUTH)
    assert reply.status_code == 400 and reply.json()["message"].startswith("error decoding Cid")
    assert httpx.get(f"{peer.url}/nowhere", auth=AUTH).json() == {"code": 404, "message": "not found"}
    assert httpx.get(f"{peer.url}/pins/", auth=AUTH).status_code == 307
