"""The pinners: ClusterPinner through ClusterClient on httpx.MockTransport (placement by peers or tags, the pin
request, reports, peers with free space and tags) and LocalPinner on a fake node."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from appliance.errors import BackendError, ConfigError
from appliance.model import PeerInfo, PinReport, ReplicationPolicy
from appliance.pinning.cluster import ClusterClient, PinStatus
from appliance.pinning.local import LOCAL_PEER, LocalPinner
from appliance.pinning.replicated import ClusterPinner, report_of

CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
P1, P2, P3 = "12D3KooWPeerOne", "12D3KooWPeerTwo", "12D3KooWPeerThree"


class FakeCluster:
    """Answers the cluster REST endpoints the pinner uses and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.metrics: dict[str, list[dict[str, Any]]] = {}
        self.peer_status = {P1: "pinned", P2: "pinning"}
        self.names: list[Any] | None = None  # GET /monitor/metrics; None: not served (an older cluster)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/monitor/metrics":
            if self.names is None:
                return httpx.Response(404, json={"code": 404, "message": "not found"})
            return httpx.Response(200, json=self.names)
        if path.startswith("/monitor/metrics/"):
            name = path.removeprefix("/monitor/metrics/")
            if name not in self.metrics:
                return httpx.Response(500, json={"code": 500, "message": "metric not found"})
            return httpx.Response(200, json=self.metrics[name])
        if path == "/peers":
            lines = [
                {"id": P1, "peername": "one", "addresses": ["/ip4/10.0.0.1/tcp/9096"], "error": ""},
                {"id": P2, "peername": "two", "addresses": None, "error": "dial backoff"},
                {"id": 7, "peername": "broken"},
            ]
            return httpx.Response(200, content=b"".join(json.dumps(item).encode() + b"\n" for item in lines))
        if request.method == "POST" and path == f"/pins/{CID}":
            return httpx.Response(200, json={"cid": CID})
        if path in (f"/pins/{CID}", f"/pins/{CID}/recover"):
            peer_map = {peer: {"status": status, "error": ""} for peer, status in self.peer_status.items()}
            return httpx.Response(
                200,
                json={
                    "cid": CID,
                    "name": "bkt/k",
                    "allocations": [P2, P1],
                    "metadata": {"s3ipfs": "1"},
                    "peer_map": peer_map,
                },
            )
        return httpx.Response(404, json={"code": 404, "message": "not found"})

    def pin_params(self) -> dict[str, str]:
        (request,) = [r for r in self.requests if r.method == "POST" and r.url.path == f"/pins/{CID}"]
        return dict(request.url.params)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pinner_of(cluster: FakeCluster, clock: Clock | None = None, **options: Any) -> ClusterPinner:
    client = ClusterClient(["http://cluster.example:9094"], transport=httpx.MockTransport(cluster.handle))
    return ClusterPinner(client, clock=clock or Clock(), **options)


def metric(peer: Any, value: Any, valid: bool = True) -> dict[str, Any]:
    return {"name": "x", "peer": peer, "value": value, "valid": valid, "expire": 0}


async def test_pin_sends_replication_name_metadata_and_no_allocations() -> None:
    cluster = FakeCluster()
    pinner = pinner_of(cluster)
    await pinner.pin(CID, name="bkt/k", policy=ReplicationPolicy(2, 3), metadata={"s3ipfs": "1"})
    assert cluster.pin_params() == {
        "replication-min": "2",
        "replication-max": "3",
        "name": "bkt/k",
        "meta-s3ipfs": "1",
    }
    await pinner.aclose()


async def test_explicit_allocations_are_user_allocations() -> None:
    cluster = FakeCluster()
    pinner = pinner_of(cluster)
    policy = ReplicationPolicy(-1, -1, allocations=(P2, P1))
    await pinner.pin(CID, name="n", policy=policy, metadata={})
    assert cluster.pin_params()["user-allocations"] == f"{P2},{P1}"
    assert cluster.pin_params()["replication-min"] == "-1"
    assert not [r for r in cluster.requests if r.url.path.startswith("/monitor")]  # no tag lookup
    await pinner.aclose()


async def test_tags_resolve_to_the_peers_matching_every_tag() -> None:
    cluster = FakeCluster()
    cluster.metrics["tag:site"] = [metric(P1, "paris"), metric(P2, "paris"), metric(P3, "lyon")]
    cluster.metrics["tag:rack"] = [metric(P1, "r1"), metric(P2, "r2"), metric(P3, "r1", valid=False), metric(9, "r1")]
    clock = Clock()
    pinner = pinner_of(cluster, clock)
    policy = ReplicationPolicy(1, 2, tags=(("rack", "r1"), ("site", "paris")))
    assert await pinner.placement(policy) == (P1,)
    await pinner.pin(CID, name="n", policy=policy, metadata={})
    assert cluster.pin_params()["user-allocations"] == P1
    paths = [r.url.path for r in cluster.requests if r.url.path.startswith("/monitor")]
    assert paths == ["/monitor/metrics/tag:rack", "/monitor/metrics/tag:site"]  # cached for the pin
    clock.now += 31.0
    cluster.metrics["tag:rack"] = [metric(P2, "r1"), metric(P1, "r2")]
    assert await pinner.placement(policy) == (P2,)  # looked up again after the informer TTL
    await pinner.aclose()


async def test_tags_no_peer_matches_is_a_clear_error() -> None:
    cluster = FakeCluster()
    cluster.metrics["tag:site"] = [metric(P1, "paris")]
    pinner = pinner_of(cluster)
    with pytest.raises(BackendError, match="no cluster peer has the allocation tags site=berlin"):
        await pinner.pin(CID, name="n", policy=ReplicationPolicy(1, 1, tags=(("site", "berlin"),)), metadata={})
    assert not [r for r in cluster.requests if r.method == "POST"]  # nothing pinned anywhere
    await pinner.aclose()


async def test_status_and_recover_map_to_reports() -> None:
    cluster = FakeCluster()
    pinner = pinner_of(cluster)
    found = await pinner.status(CID)
    assert found == PinReport(
        cid=CID,
        peers=((P1, "pinned", ""), (P2, "pinning", "")),
        allocations=(P2, P1),
        name="bkt/k",
        metadata=(("s3ipfs", "1"),),
    )
    cluster.peer_status = {P2: "pinned", P1: "pinned"}
    recovered = await pinner.recover(CID)
    assert recovered.satisfies(0) and recovered.peers[0][0] == P1  # sorted by peer
    assert cluster.requests[-1].method == "POST" and cluster.requests[-1].url.path.endswith("/recover")
    await pinner.aclose()


def test_report_of_and_report_properties() -> None:
    status = PinStatus(
        cid=CID,
        name="n",
        allocations=(P1, P2),
        peers={P3: ("remote", ""), P2: ("pin_error", "boom"), P1: ("pinned", "")},
        metadata={"b": "2", "a": "1"},
    )
    found = report_of(status)
    assert found.peers == ((P1, "pinned", ""), (P3, "remote", ""), (P2, "pin_error", "boom"))  # by peer id
    assert found.metadata == (("a", "1"), ("b", "2"))
    assert found.pinned == 1 and found.errors == ((P2, "pin_error", "boom"),) and found.in_pinset
    assert found.satisfies(1) and not found.satisfies(2) and not found.satisfies(0)
    assert not PinReport(CID, ((P1, "unpinned", ""), (P2, "remote", ""))).in_pinset
    assert not PinReport(CID, ()).satisfies(0)
    assert PinReport(CID, ((P1, "pinned", ""), (P2, "remote", ""))).satisfies(-1)


async def test_peers_with_free_space() -> None:
    cluster = FakeCluster()
    cluster.metrics["freespace"] = [metric(P1, "123456"), metric(P2, "lots")]
    pinner = pinner_of(cluster)
    assert list(await pinner.peers()) == [
        PeerInfo(P1, "one", ("/ip4/10.0.0.1/tcp/9096",), "", 123456),
        PeerInfo(P2, "two", (), "dial backoff", None),
    ]
    del cluster.metrics["freespace"]  # the metric is optional
    assert [p.freespace for p in await pinner.peers()] == [None, None]
    await pinner.aclose()


def metric_paths(cluster: FakeCluster) -> list[str]:
    return [r.url.path for r in cluster.requests if r.url.path.startswith("/monitor/metrics/tag:")]


async def test_peers_with_tags_one_call_per_tag_name() -> None:
    cluster = FakeCluster()
    cluster.metrics["tag:group"] = [metric(P1, "default"), metric(P2, "default"), metric(P3, "default")]
    cluster.metrics["tag:site"] = [metric(P2, "lyon"), metric(P1, "paris")]
    clock = Clock()
    pinner = pinner_of(cluster, clock, tag_names=("site", "group"))
    found = await pinner.peers()
    assert [(p.peer_id, p.tags) for p in found] == [
        (P1, (("group", "default"), ("site", "paris"))),
        (P2, (("group", "default"), ("site", "lyon"))),
    ]
    assert metric_paths(cluster) == ["/monitor/metrics/tag:group", "/monitor/metrics/tag:site"]
    await pinner.peers()
    assert len(metric_paths(cluster)) == 2  # reused within the informer TTL, as placement does
    clock.now += 31.0
    await pinner.peers()
    assert len(metric_paths(cluster)) == 4
    await pinner.aclose()


async def test_peers_discover_tag_names_from_the_cluster() -> None:
    cluster = FakeCluster()
    cluster.names = ["ping", "freespace", "tag:site", "tag:bad/name", "tag:"]
    cluster.metrics["tag:site"] = [metric(P1, "paris")]
    pinner = pinner_of(cluster, tag_names=())
    assert [p.tags for p in await pinner.peers()] == [(("site", "paris"),), ()]
    assert metric_paths(cluster) == ["/monitor/metrics/tag:site"]  # unusable names are skipped
    cluster.names = [{"not": "a name"}]  # malformed: the configured names only, no crash
    pinner_b = pinner_of(cluster, tag_names=())
    assert [p.tags for p in await pinner_b.peers()] == [(), ()]
    await pinner.aclose()
    await pinner_b.aclose()


async def test_peers_show_the_tags_bucket_policies_resolved() -> None:
    cluster = FakeCluster()
    cluster.metrics["tag:rack"] = [metric(P1, "r1")]
    pinner = pinner_of(cluster, tag_names=())
    assert [p.tags for p in await pinner.peers()] == [(), ()]
    assert await pinner.placement(ReplicationPolicy(1, 1, tags=(("rack", "r1"),))) == (P1,)
    assert [p.tags for p in await pinner.peers()] == [(("rack", "r1"),), ()]
    assert metric_paths(cluster) == ["/monitor/metrics/tag:rack"]  # placement's lookup is reused
    await pinner.aclose()


async def test_peers_tolerate_malformed_and_missing_tag_metrics() -> None:
    cluster = FakeCluster()
    cluster.metrics["tag:group"] = [
        metric(P1, "default"),
        metric(P2, 7),  # not a string
        metric(None, "x"),  # no peer
        metric(P2, "stale", valid=False),
        {"name": "tag:group"},
    ]
    cluster.metrics["tag:site"] = [{"peer": P2, "value": "lyon"}, "garbage"]  # not a list of objects: skipped
    pinner = pinner_of(cluster, tag_names=("group", "rack", "site"))  # rack: no such metric (HTTP 500)
    found = await pinner.peers()
    assert [(p.peer_id, p.tags) for p in found] == [(P1, (("group", "default"),)), (P2, ())]
    assert len(metric_paths(cluster)) == 3
    await pinner.aclose()


def test_tag_names_are_validated() -> None:
    for bad in ("", "a/b", "a\nb"):
        with pytest.raises(ConfigError, match="tag names"):
            pinner_of(FakeCluster(), tag_names=(bad,))


class FakeNode:
    def __init__(self) -> None:
        self.pins: set[str] = set()
        self.down = False

    async def pin(self, cid: str) -> None:
        self.pins.add(cid)

    async def unpin(self, cid: str) -> None:
        self.pins.discard(cid)

    async def is_pinned(self, cid: str) -> bool:
        return cid in self.pins

    async def ping(self) -> str:
        if self.down:
            raise BackendError("kubo down")
        return "0.30.0"

    async def recursive_pins(self) -> list[str]:
        return sorted(self.pins)


async def test_local_pinner() -> None:
    node = FakeNode()
    pinner = LocalPinner(node)
    assert not (await pinner.status(CID)).in_pinset
    await pinner.pin(CID, name="n", policy=ReplicationPolicy(5, 7), metadata={})
    found = await pinner.status(CID)
    assert found.peers == ((LOCAL_PEER, "pinned", ""),) and found.satisfies(0) and found.satisfies(1)
    assert [r.cid async for r in pinner.pinset()] == [CID]
    await pinner.unpin(CID)
    assert (await pinner.recover(CID)).pinned == 1
    assert [p.name for p in await pinner.peers()] == ["local IPFS node (0.30.0)"]
    node.down = True
    assert [p.error for p in await pinner.peers()] == ["kubo down"]
