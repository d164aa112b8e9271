"""The status gatherer against wire-level fakes of both daemons: up, down, unhealthy peers, not configured."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from appliance.config import AppConfig, load_config
from appliance.nodesetup.status import find_binary, gather, render


def _config(tmp_path: Path, **sections: object) -> AppConfig:
    path = tmp_path / "s3ipfs.yaml"
    path.write_text(json.dumps({"state_dir": str(tmp_path), **sections}))
    return load_config(path, env={})


def _kubo(request: httpx.Request) -> httpx.Response:
    assert request.method == "POST"
    replies = {
        "/api/v0/version": {"Version": "0.44.0", "Commit": "", "Repo": "18"},
        "/api/v0/id": {"ID": "12D3KooWkubo", "AgentVersion": "kubo/0.44.0/"},
        "/api/v0/swarm/peers": {"Peers": [{"Peer": "a", "Addr": "/ip4/10.0.0.2/tcp/4001"}, {"Peer": "b"}]},
    }
    return httpx.Response(200, json=replies[request.url.path])


def _cluster(peer_error: str = "") -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"].startswith("Basic ")
        if request.url.path == "/version":
            return httpx.Response(200, json={"version": "1.1.6"})
        if request.url.path == "/id":
            return httpx.Response(200, json={"id": "12D3KooWclus", "peername": "host1", "ipfs": {"id": "12D3KooWkubo"}})
        if request.url.path == "/peers":
            lines = [
                {"id": "12D3KooWclus", "peername": "host1"},
                {"id": "12D3KooWother", "peername": "host2", "error": peer_error},
            ]
            return httpx.Response(200, content="".join(json.dumps(line) + "\n" for line in lines).encode())
        return httpx.Response(404, json={"code": 404, "message": "not found"})

    return httpx.MockTransport(handler)


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


CLUSTER = {"endpoints": ["http://127.0.0.1:9094"], "username": "s3ipfs", "password": "pw"}


async def test_both_up_and_healthy(tmp_path: Path) -> None:
    config = _config(tmp_path, cluster=CLUSTER)
    status = await gather(config, kubo_transport=httpx.MockTransport(_kubo), cluster_transport=_cluster())
    assert status.healthy
    assert (status.kubo.version, status.kubo.peer_id, status.kubo.swarm_peers) == ("0.44.0", "12D3KooWkubo", 2)
    assert (status.cluster.version, status.cluster.peer_id, len(status.cluster.peers)) == ("1.1.6", "12D3KooWclus", 2)
    text = render(status)
    assert "ipfs      up" in text and "version 0.44.0" in text and "swarm peers 2" in text
    assert "cluster   up" in text and "peer 12D3KooWother (host2): ok" in text
    assert text.endswith("healthy\n")
    assert json.loads(json.dumps(status.as_json()))["healthy"] is True


async def test_peer_error_makes_the_cluster_unhealthy(tmp_path: Path) -> None:
    config = _config(tmp_path, cluster=CLUSTER)
    status = await gather(config, kubo_transport=httpx.MockTransport(_kubo), cluster_transport=_cluster("timed out"))
    assert not status.healthy and status.cluster.up
    assert "ERROR timed out" in render(status) and "UNHEALTHY" in render(status)


async def test_not_configured_cluster_is_fine(tmp_path: Path) -> None:
    status = await gather(_config(tmp_path), kubo_transport=httpx.MockTransport(_kubo))
    assert status.healthy and not status.cluster.configured
    assert "not configured" in render(status)


async def test_unreachable_daemons_are_lines_not_tracebacks(tmp_path: Path) -> None:
    config = _config(tmp_path, cluster=CLUSTER)
    status = await gather(
        config, kubo_transport=httpx.MockTransport(_down), cluster_transport=httpx.MockTransport(_down)
    )
    assert not status.healthy and not status.kubo.up and not status.cluster.up
    text = render(status)
    assert "ipfs      DOWN  http://127.0.0.1:5001" in text and "cannot be reached" in text
    assert "cluster   DOWN  http://127.0.0.1:9094: unreachable" in text
    assert "Traceback" not in text and text.endswith("NOT healthy\n")


async def test_wrong_credentials_are_reported(tmp_path: Path) -> None:
    def unauthorized(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": 401, "message": "unauthorized: access denied"})

    config = _config(tmp_path, cluster=CLUSTER)
    status = await gather(
        config, kubo_transport=httpx.MockTransport(_kubo), cluster_transport=httpx.MockTransport(unauthorized)
    )
    assert not status.healthy and "access denied" in status.cluster.error
    assert "unreachable" not in render(status)


def test_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "ipfs"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert find_binary(str(binary), "ipfs") == str(binary)
    assert find_binary(str(tmp_path / "missing"), "ipfs") is None
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_binary("", "ipfs") == str(binary)
    assert find_binary("", "ipfs-cluster-service") is None
