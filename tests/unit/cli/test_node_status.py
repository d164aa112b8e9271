"""`s3ipfs node status` from the command line: exit codes, JSON, and a clear line for a daemon that is not there."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from appliance.cli.main import main


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, cluster: bool) -> str:
    lines = [f"state_dir: {tmp_path}", "ipfs:", f"  api_url: http://127.0.0.1:{_closed_port()}"]
    if cluster:
        lines += ["cluster:", f"  endpoints: [http://127.0.0.1:{_closed_port()}]", "  username: u", "  password: p"]
    path = tmp_path / "s3ipfs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Kubo or cluster binary
    assert main(["node", "status", "--config", _config(tmp_path, cluster=True), "--timeout", "2"]) == 3
    out = capsys.readouterr().out
    assert "ipfs      DOWN" in out and "cannot be reached" in out
    assert "cluster   DOWN" in out and "unreachable" in out
    assert "binary    ipfs: MISSING" in out and "binary    ipfs-cluster-service: MISSING" in out
    assert "s3ipfs node install" in out
    assert out.endswith("NOT healthy\n")


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "status", "--config", _config(tmp_path, cluster=False), "--json"]) == 3
    data = json.loads(capsys.readouterr().out)
    assert data["healthy"] is False
    assert data["kubo"]["up"] is False and data["kubo"]["error"]
    assert data["cluster"]["configured"] is False
    assert {b["name"] for b in data["binaries"]} == {"ipfs", "ipfs-cluster-service"}


def test_bad_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "status", "--config", _config(tmp_path, cluster=False), "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_stop_with_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "stop", "--config", _config(tmp_path, cluster=False)]) == 0
    assert "was not running" in capsys.readouterr().out
