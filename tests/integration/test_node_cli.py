"""`s3ipfs node status|start|stop` run as a real subprocess against real js-ipfs nodes (tests/support/nodes.py),
and the identities `node init` generates checked against a real libp2p implementation."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.ipfsconn.devnode import LocalNode, jsipfs_path
from appliance.nodesetup.identity import generate_identity, peer_id_from_public_key
from tests.support.nodes import free_ports, running_nodes

pytestmark = pytest.mark.skipif(not jsipfs_path().exists(), reason="no js-ipfs node installed: run scripts/setup.sh")

ROOT = Path(__file__).resolve().parents[2]


def s3ipfs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command line, with the caller's S3IPFS_* environment removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("S3IPFS_")}
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalNode]]:
    with running_nodes(tmp_path_factory.mktemp("node-cli"), 2) as nodes:
        yield nodes


def test_status_shows_the_node_and_an_unconfigured_cluster(two_nodes: list[LocalNode], tmp_path: Path) -> None:
    node = two_nodes[0]
    config = write_config(tmp_path / "s3ipfs.yaml", f"state_dir: {tmp_path}\nipfs:\n  api_url: {node.api_url}\n")
    done = s3ipfs("node", "status", "--config", config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ipfs      up    {node.api_url}  version 0.18.1  peer {node.peer_id()}  swarm peers 1" in done.stdout
    assert "cluster   not configured" in done.stdout
    assert done.stdout.endswith("healthy\n") and done.stderr == ""

    as_json = s3ipfs("node", "status", "--config", config, "--json")
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert data["kubo"]["up"] is True and data["kubo"]["peer_id"] == node.peer_id()
    assert data["kubo"]["swarm_peers"] == 1 and data["cluster"]["configured"] is False


def test_status_with_an_unreachable_cluster_is_not_healthy(two_nodes: list[LocalNode], tmp_path: Path) -> None:
    (closed,) = free_ports(1)
    config = write_config(
        tmp_path / "s3ipfs.yaml",
        f"state_dir: {tmp_path}\nipfs:\n  api_url: {two_nodes[1].api_url}\n"
        f"cluster:\n  endpoints: [http://127.0.0.1:{closed}]\n  username: s3ipfs\n  password: pw\n",
    )
    done = s3ipfs("node", "status", "--config", config, "--timeout", "3")
    assert done.returncode == 3
    assert "ipfs      up" in done.stdout
    assert f"cluster   DOWN  http://127.0.0.1:{closed}: unreachable" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_js_ipfs_reports_the_peer_id_we_derive_from_its_public_key(two_nodes: list[LocalNode]) -> None:
    info = httpx.post(f"{two_nodes[0].api_url}/api/v0/id", timeout=10).json()
    assert peer_id_from_public_key(base64.b64decode(info["PublicKey"])) == info["ID"]


def test_a_generated_identity_is_accepted_by_a_real_libp2p_node(tmp_path: Path) -> None:
    identity = generate_identity()
    api, swarm = free_ports(2)
    repo = tmp_path / "repo"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "Addresses": {"API": f"/ip4/127.0.0.1/tcp/{api}", "Gateway": "", "RPC": "",
                              "Swarm": [f"/ip4/127.0.0.1/tcp/{swarm}"], "Announce": [], "NoAnnounce": [],
                              "Delegates": []},
                "Bootstrap": [],
                "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
                "Swarm": {"DisableNatPortMap": True},
                "Routing": {"Type": "none"},
            }
        )
    )  # fmt: skip
    env = {**os.environ, "IPFS_PATH": str(repo), "NO_UPDATE_NOTIFIER": "1"}
    init = subprocess.run(
        [str(jsipfs_path()), "init", "--empty-repo", "--privateKey", identity.private_key, str(cfg)],
        env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    (repo / "s3ipfs-node-impl").write_text("js-ipfs\n")
    node = LocalNode(repo)
    try:
        node.start()
        assert node.peer_id() == identity.peer_id
    finally:
        node.stop()


def test_dev_start_and_stop_the_js_ipfs_node(tmp_path: Path) -> None:
    (api,) = free_ports(1)
    config = write_config(
        tmp_path / "s3ipfs.yaml",
        f"state_dir: {tmp_path / 'state'}\nipfs:\n  api_url: http://127.0.0.1:{api}\n"
        f"node:\n  kubo_binary: {tmp_path / 'no-kubo'}\n  cluster_binary: {tmp_path / 'no-cluster'}\n",
    )
    try:
        started = s3ipfs("node", "start", "--config", config)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "ipfs     started: js-ipfs development node pid" in started.stdout
        assert "cluster  skipped: no ipfs-cluster-service" in started.stdout
        assert (tmp_path / "state" / "run" / "ipfs.pid").exists()

        status = s3ipfs("node", "status", "--config", config)
        assert status.returncode == 0, status.stdout
        assert f"ipfs      up    http://127.0.0.1:{api}  version 0.18.1" in status.stdout

        again = s3ipfs("node", "start", "--config", config)
        assert again.returncode == 0 and "ipfs     running: pid" in again.stdout
    finally:
        stopped = s3ipfs("node", "stop", "--config", config)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "ipfs     stopped: js-ipfs pid" in stopped.stdout
    assert not (tmp_path / "state" / "run" / "ipfs.pid").exists()
    down = s3ipfs("node", "status", "--config", config, "--timeout", "2")
    assert down.returncode == 3 and "ipfs      DOWN" in down.stdout
    assert "binary    ipfs: MISSING at" in down.stdout
    assert "was not running" in s3ipfs("node", "stop", "--config", config).stdout


def test_start_refuses_a_kubo_repo_without_kubo(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "s3ipfs.yaml",
        f"state_dir: {tmp_path / 'state'}\nnode:\n  kubo_binary: {tmp_path / 'no-kubo'}\n",
    )
    assert s3ipfs("node", "init", "--config", config, "--no-cluster").returncode == 0
    done = s3ipfs("node", "start", "--config", config)
    assert done.returncode == 3
    assert "is a Kubo repo but no Kubo binary" in done.stderr and "Traceback" not in done.stderr
