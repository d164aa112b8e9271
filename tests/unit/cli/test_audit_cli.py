"""`s3ipfs audit verify|tail|search` on audit files written by AuditLog; and the config refusing an admin API bound
off loopback without TLS."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from appliance.cli.main import main
from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.service.audit import AuditRecord
from appliance.service.audit_log import AuditLog, AuditSettings, audit_files

T0 = 1_800_000_000.0


def fill(directory: Path) -> None:
    log = AuditLog(AuditSettings(directory=directory))
    rows = [
        ("root", "PutObject", "photos/a.jpg", 200, ""),
        ("alice", "PutObject", "docs/x", 200, ""),
        ("", "ListObjectsV2", "photos", 403, "AccessDenied"),
        ("root", "admin:auth_token", "/auth/token", 200, ""),
        ("alice", "DeleteObject", "photos/a.jpg", 403, "AccessDenied"),
    ]
    for i, (user, action, resource, status, code) in enumerate(rows):
        api = "admin" if action.startswith("admin:") else "s3"
        log.append(
            AuditRecord(
                time=T0 + i * 60, api=api, action=action, status=status, user=user, resource=resource, code=code
            )
        )
    log.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_verify_ok_and_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "audit"
    fill(directory)
    code, out = run(capsys, "audit", "verify", "--dir", str(directory))
    assert code == 0 and "ok: 5 records" in out
    path = directory / audit_files(directory)[0]
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"status":200', '"status":201')
    path.write_text("".join(lines))
    code, out = run(capsys, "audit", "verify", "--dir", str(directory))
    assert code == 1
    assert f"{path.name}:4" in out and "prev hash" in out and "admin" not in out.split("\n")[0][:10]


def test_verify_through_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "s3ipfs.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    fill(tmp_path / "state" / "audit")
    code, out = run(capsys, "audit", "verify", "--config", str(config))
    assert code == 0 and "5 records" in out


def test_tail_and_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "audit"
    fill(directory)
    code, out = run(capsys, "audit", "tail", "-n", "2", "--dir", str(directory))
    assert code == 0 and len(out.splitlines()) == 2 and "DeleteObject" in out.splitlines()[1]
    code, out = run(capsys, "audit", "search", "--user", "alice", "--json", "--dir", str(directory))
    found = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in found] == ["PutObject", "DeleteObject"]
    code, out = run(
        capsys, "audit", "search", "--result", "AccessDenied", "--bucket", "photos", "--dir", str(directory)
    )
    assert len(out.splitlines()) == 2
    since = "2027-01-15T08:02:00Z"  # T0 + 120 s
    code, out = run(capsys, "audit", "search", "--since", since, "--action", "admin:", "--dir", str(directory))
    assert len(out.splitlines()) == 1 and "admin:auth_token" in out
    code, out = run(capsys, "audit", "search", "--until", str(T0 + 60), "--dir", str(directory))
    assert len(out.splitlines()) == 2
    assert main(["audit", "search", "--since", "yesterday", "--dir", str(directory)]) == 1


def test_tail_follow_sees_new_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "audit"
    fill(directory)

    def later() -> None:
        time.sleep(0.3)
        log = AuditLog(AuditSettings(directory=directory))
        log.append(AuditRecord(time=T0 + 999, api="s3", action="CopyObject", status=200, resource="b/new"))
        log.close()
        time.sleep(0.3)
        import _thread

        _thread.interrupt_main()  # stands in for ^C

    threading.Thread(target=later, daemon=True).start()
    code, out = run(capsys, "audit", "tail", "-n", "0", "-f", "--interval", "0.05", "--dir", str(directory))
    assert code == 0 and "CopyObject" in out and len(out.splitlines()) == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "admin.example.net"])
def test_admin_off_loopback_without_tls_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={"S3IPFS_ADMIN__HOST": host})
    assert "admin.tls_certfile" in caught.value.message and "127.0.0.1" in caught.value.message
    config = tmp_path / "bad.yaml"
    config.write_text(f"admin:\n  host: '{host}'\n")
    assert main(["config", "check", "--config", str(config)]) == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_admin_on_loopback_is_fine(host: str) -> None:
    assert load_config(None, env={"S3IPFS_ADMIN__HOST": host}).admin.host == host
