"""Development start/stop with stand-in daemons: a fake `ipfs` that serves the RPC port of its repo config and a
fake `ipfs-cluster-service` that idles; pid files, idempotence, stop, the clear errors."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config import AppConfig, load_config
from appliance.nodesetup.devprocs import DevProcessError, DevProcesses

FAKE_KUBO = f"""#!{sys.executable}
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
assert sys.argv[1:] == ["daemon", "--migrate"], sys.argv
config = json.load(open(os.path.join(os.environ["IPFS_PATH"], "config")))
port = int(config["Addresses"]["API"].split("/")[4])
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.dumps({{"Version": "0.44.0-fake"}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

FAKE_CLUSTER = f"""#!{sys.executable}
import sys, time
assert sys.argv[1] == "--config" and sys.argv[3] == "daemon", sys.argv
time.sleep(300)
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[AppConfig, DevProcesses]]:
    port = _port()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubo = _binary(bin_dir, "ipfs", FAKE_KUBO)
    cluster = _binary(bin_dir, "ipfs-cluster-service", FAKE_CLUSTER)
    config_file = tmp_path / "s3ipfs.yaml"
    config_file.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "ipfs": {"api_url": f"http://127.0.0.1:{port}"},
                "node": {"kubo_binary": str(kubo), "cluster_binary": str(cluster)},
            }
        )
    )
    config = load_config(config_file, env={})
    repo = config.kubo_repo_path
    repo.mkdir(parents=True)
    (repo / "config").write_text(json.dumps({"Addresses": {"API": f"/ip4/127.0.0.1/tcp/{port}"}}))
    config.cluster_dir_path.mkdir(parents=True)
    (config.cluster_dir_path / "service.json").write_text("{}")
    procs = DevProcesses(config, start_timeout=20)
    try:
        yield config, procs
    finally:
        procs.stop()


def test_start_is_idempotent_and_stop_stops(setup: tuple[AppConfig, DevProcesses]) -> None:
    config, procs = setup
    first = procs.start()
    assert [(o.name, o.state) for o in first] == [("ipfs", "started"), ("cluster", "started")]
    ipfs_pid, cluster_pid = procs.running_pid("ipfs"), procs.running_pid("cluster")
    assert ipfs_pid and cluster_pid
    assert procs.pid_file("ipfs").parent == Path(config.state_dir) / "run"
    again = procs.start()
    assert [(o.name, o.state) for o in again] == [("ipfs", "running"), ("cluster", "running")]
    assert procs.running_pid("ipfs") == ipfs_pid
    stopped = procs.stop()
    assert [(o.name, o.state) for o in stopped] == [("cluster", "stopped"), ("ipfs", "stopped")]
    assert procs.running_pid("ipfs") is None and procs.running_pid("cluster") is None
    assert not procs.pid_file("ipfs").exists()
    assert [o.detail for o in procs.stop()] == ["was not running", "was not running"]


def test_stale_pid_file_is_not_trusted(setup: tuple[AppConfig, DevProcesses]) -> None:
    _, procs = setup
    procs.run_dir.mkdir(parents=True)
    procs.pid_file("ipfs").write_text(f"{os.getpid()}\nipfs\n")  # alive, but this test runner is not ipfs
    assert procs.running_pid("ipfs") is None
    assert procs.stop_one("ipfs").detail == "was not running"


def test_cluster_is_skipped_without_its_files(setup: tuple[AppConfig, DevProcesses]) -> None:
    config, procs = setup
    (config.cluster_dir_path / "service.json").unlink()
    outcome = procs.start_cluster()
    assert outcome.state == "skipped" and "node init" in outcome.detail


def test_kubo_without_a_repo_config_asks_for_init(setup: tuple[AppConfig, DevProcesses]) -> None:
    config, procs = setup
    (config.kubo_repo_path / "config").unlink()
    with pytest.raises(DevProcessError, match="node init"):
        procs.start_ipfs()


def test_kubo_repo_without_a_kubo_binary(setup: tuple[AppConfig, DevProcesses], tmp_path: Path) -> None:
    config, _ = setup
    config = config.model_copy(update={"node": config.node.model_copy(update={"kubo_binary": str(tmp_path / "no")})})
    with pytest.raises(DevProcessError, match="no Kubo binary"):
        DevProcesses(config).start_ipfs()


def test_a_daemon_that_dies_is_reported_with_its_log(setup: tuple[AppConfig, DevProcesses], tmp_path: Path) -> None:
    config, _ = setup
    broken = _binary(tmp_path, "ipfs-broken", "#!/bin/sh\necho 'Error: cannot open repo' >&2\nexit 1\n")
    config = config.model_copy(update={"node": config.node.model_copy(update={"kubo_binary": str(broken)})})
    procs = DevProcesses(config, start_timeout=10)
    with pytest.raises(DevProcessError, match="cannot open repo"):
        procs.start_ipfs()
    assert not procs.pid_file("ipfs").exists()
