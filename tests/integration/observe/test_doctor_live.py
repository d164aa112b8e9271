"""`s3ipfs doctor` against a live gateway, and `--bundle` with secrets planted in the config, the state dir and the
journal: none of them may appear in any member of the tarball."""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import tarfile
from pathlib import Path

import yaml

from tests.integration.observe.conftest import needs_node, traffic
from tests.support.gateway import Gateway, gateway_command, gateway_env

pytestmark = needs_node


def _doctor(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*gateway_command(config, "doctor"), *args],
        env=env or gateway_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_doctor_on_a_running_gateway(observed: Gateway) -> None:
    done = _doctor(observed.config_path, "--json")
    checks = json.loads(done.stdout)
    by_name: dict[str, list[dict[str, str]]] = {}
    for check in checks:
        by_name.setdefault(check["name"], []).append(check)
    assert by_name["config"][0]["status"] == "OK"
    assert [c["status"] for c in by_name["ports"]] == ["OK", "OK"], by_name["ports"]
    assert all("served by s3ipfs" in c["detail"] for c in by_name["ports"])
    assert by_name["metadata"][0]["status"] == "OK" and "schema" in by_name["metadata"][0]["detail"]
    assert by_name["ipfs"][0]["status"] == "OK" and "version" in by_name["ipfs"][0]["detail"]
    assert by_name["clock"][0]["status"] in {"OK", "WARN"}
    assert by_name["tls"][0]["status"] == "OK"
    statuses = {c["status"] for c in checks}
    assert done.returncode == (2 if "FAIL" in statuses else 1 if "WARN" in statuses else 0), done.stdout
    text = _doctor(observed.config_path)
    assert text.returncode == done.returncode
    assert text.stdout.splitlines()[0].startswith("OK    config")


def test_doctor_names_a_port_taken_by_another_program(observed: Gateway, tmp_path: Path) -> None:
    import socket

    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    try:
        data = yaml.safe_load(observed.config_path.read_text())
        data["admin"]["port"] = other.getsockname()[1]
        config = tmp_path / "s3ipfs.yaml"
        config.write_text(yaml.safe_dump(data))
        done = _doctor(config, "--json", "--timeout", "3")
    finally:
        other.close()
    assert done.returncode == 2
    ports = [c for c in json.loads(done.stdout) if c["name"] == "ports"]
    assert any(c["status"] == "FAIL" and "another program" in c["detail"] and c["fix"] for c in ports), ports


def _aws_like_secret() -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def test_bundle_redacts_every_secret(observed: Gateway, tmp_path: Path) -> None:
    traffic(observed, rounds=1)
    iam_secret = _aws_like_secret()
    cluster_password = "pw-" + secrets.token_urlsafe(12)
    cluster_jwt = "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(16)
    admin_token = "s3ipfs_adm_" + secrets.token_urlsafe(24)
    swarm_key = secrets.token_hex(32)
    cluster_secret = secrets.token_hex(32)
    data = yaml.safe_load(observed.config_path.read_text())
    # The config takes a password or a JWT, not both: the password goes in the config, the JWT in the journal.
    data["cluster"] = {"endpoints": ["http://127.0.0.1:9"], "username": "admin", "password": cluster_password}
    data["ipfs"]["auth_header"] = f"Bearer {iam_secret}"
    config = tmp_path / "s3ipfs.yaml"
    config.write_text(yaml.safe_dump(data))
    state = Path(data["state_dir"])
    (state / "ipfs").mkdir(exist_ok=True)
    (state / "ipfs" / "swarm.key").write_text(f"/key/swarm/psk/1.0.0/\n/base16/\n{swarm_key}\n")
    (state / "cluster").mkdir(exist_ok=True)
    (state / "cluster" / "service.json").write_text(json.dumps({"cluster": {"secret": cluster_secret}}))
    # The journal: a fake journalctl prints log lines that carry secrets (a misconfigured debug log would).
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    journal_lines = [
        f"s3ipfs[1]: admin login: Authorization: Bearer {admin_token}",
        f"s3ipfs[1]: issued admin token={admin_token}",
        f"s3ipfs[1]: iam user created, secret access key {iam_secret}",
        f"s3ipfs[1]: root secret {observed.secret_key}",
        f"s3ipfs[1]: cluster password: {cluster_password}",
        f"s3ipfs[1]: cluster client configured with jwt {cluster_jwt}",
        f"s3ipfs[1]: swarm key {swarm_key} cluster secret {cluster_secret}",
        "s3ipfs[1]: a harmless line with access key " + observed.access_key,
    ]
    script = fakebin / "journalctl"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + "\n".join(journal_lines) + "\nEOF\n")
    script.chmod(0o755)
    env = {**gateway_env(), "PATH": f"{fakebin}{os.pathsep}{os.environ['PATH']}"}
    bundle = tmp_path / "support.tar.gz"
    done = _doctor(config, "--bundle", str(bundle), "--timeout", "2", env=env)
    assert done.returncode == 2, done.stdout + done.stderr  # the cluster at port 9 does not answer
    assert "support bundle written" in done.stdout
    assert (bundle.stat().st_mode & 0o077) == 0

    planted = [iam_secret, cluster_password, cluster_jwt, admin_token, swarm_key, cluster_secret, observed.secret_key]
    with tarfile.open(bundle) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert set(members) == {"system.txt", "config.yaml", "node-status.txt", "journal.txt", "metrics.txt", "doctor.json"}
    for name, text in members.items():
        for secret in planted:
            assert secret not in text, f"{name} leaks a planted secret"
            assert secret[:20] not in text, f"{name} leaks part of a planted secret"
    assert "python:" in members["system.txt"] and "packages:" in members["system.txt"]
    assert yaml.safe_load(members["config.yaml"])["cluster"]["endpoints"] == ["http://127.0.0.1:9"]
    assert "[REDACTED]" in members["journal.txt"] and observed.access_key in members["journal.txt"]
    assert "s3ipfs_s3_requests_total" in members["metrics.txt"]
    assert {c["name"] for c in json.loads(members["doctor.json"])} >= {"config", "ipfs", "cluster", "metadata"}
