"""`s3ipfs iam …` called in-process through main(argv) against the admin app (real LMDB store, IamService with the
test stand-in policy parser) served by hypercorn in a thread: human output and --json, secrets printed only at
creation and rotation, exit codes (1 refused, 3 unreachable, 5 simulate denied), and import-versitygw from a
users.json laid out as versitygw writes it (dry run, import, idempotent re-run, clients' keys and secrets kept)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from appliance.cli.iam import parse_duration
from appliance.cli.main import main
from tests.api.test_admin_iam import IamAdmin, build_iam_admin
from tests.support.admin_auth import install_cli_token
from tests.support.nodes import free_ports
from tests.unit.cli.test_pins_cli import write_config
from tests.unit.service.iam_support import ALLOW_GET


class Served:
    def __init__(self, admin: IamAdmin, port: int) -> None:
        self.admin = admin
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._shutdown: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="admin-app", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None

        async def run() -> None:
            self._shutdown = asyncio.Event()
            await serve(self.admin.app, config, shutdown_trigger=self._shutdown.wait)  # type: ignore[arg-type]

        self.loop.run_until_complete(run())
        self.loop.close()

    def start(self) -> None:
        self._thread.start()
        for _ in range(500):
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            threading.Event().wait(0.01)
        raise RuntimeError("the admin app did not start")

    def stop(self) -> None:
        if self._shutdown is not None:
            self.loop.call_soon_threadsafe(self._shutdown.set)
        self._thread.join(timeout=30)


@dataclass
class Cli:
    config: Path
    served: Served

    @property
    def iam(self) -> Any:
        return self.served.admin.iam

    def __call__(self, *argv: str) -> int:
        return main(["iam", *argv, "--config", str(self.config)])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    port = free_ports(1)[0]
    admin = build_iam_admin(tmp_path, port=port)
    install_cli_token(admin.app, tmp_path / "state", monkeypatch)
    served = Served(admin, port)
    served.start()
    try:
        yield Cli(write_config(tmp_path, served.port), served)
    finally:
        served.stop()
        admin.store.close()


def out(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "30m", "24h", "7d", "1w", "1.5h")] == [
        90,
        90,
        1800,
        86400,
        604800,
        604800,
        5400,
    ]
    with pytest.raises(Exception, match="duration"):
        parse_duration("soon")


def test_users_groups_and_keys(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("user", "create", "alice", "--tag", "team=storage") == 0
    assert out(capsys) == ["created user alice (arn:aws:iam::000000000000:user/alice)"]
    assert cli("user", "create", "alice") == 1
    assert "exists already" in capsys.readouterr().err
    assert cli("user", "create", "\u0430lice") == 1
    assert "look-alike" in capsys.readouterr().err
    assert cli("key", "create", "alice") == 0
    lines = out(capsys)
    assert lines[0].startswith("access_key=AKIA") and lines[1].startswith("secret_key=")
    access, secret = lines[0].split("=", 1)[1], lines[1].split("=", 1)[1]
    assert cli.iam.source.principal_for(access)[1] == secret
    assert cli("key", "list", "alice") == 0
    listing = "\n".join(out(capsys))
    assert access in listing and secret not in listing and "Active" in listing
    assert cli("user", "get", "alice", "--json") == 0
    doc = out_json(capsys)
    assert doc["tags"] == {"team": "storage"} and secret not in json.dumps(doc)
    assert cli("key", "disable", access) == 0
    assert "Inactive" in out(capsys)[0]
    assert cli.iam.source.principal_for(access) is None
    assert cli("key", "enable", access, "--json") == 0
    assert out_json(capsys)["status"] == "Active"
    assert cli("key", "rotate", "alice", "--grace", "1h") == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("access_key=AKIA") and f"old key {access} stays valid for 3600 s" in captured.err
    assert cli("group", "create", "ops") == 0
    assert cli("group", "add-user", "ops", "alice") == 0
    assert cli("group", "add-user", "ops", "alice") == 0
    assert out(capsys)[-1] == "alice added to ops (nothing changed)"
    assert cli("group", "get", "ops", "--json") == 0
    assert out_json(capsys)["members"] == ["alice"]
    assert cli("group", "remove-user", "ops", "alice") == 0
    assert cli("group", "delete", "ops") == 0
    assert out(capsys) == ["alice removed from ops", "deleted group ops"]
    assert cli("group", "list", "--json") == 0
    assert out_json(capsys) == {"groups": []}
    assert cli("key", "delete", access) == 0
    assert cli("user", "delete", "alice") == 0
    assert out(capsys)[-1] == "deleted user alice and 1 key(s)"
    assert cli("user", "get", "alice") == 1


def test_policies_and_simulate(cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = tmp_path / "get.json"
    doc.write_text(ALLOW_GET)
    cli("user", "create", "bob")
    assert cli("policy", "create", "get-only", "--document", str(doc), "--description", "reads") == 0
    assert cli("policy", "attach", "get-only", "--user", "bob") == 0
    assert cli("policy", "attach", "get-only") == 1  # neither --user nor --group
    capsys.readouterr()
    assert cli("policy", "list") == 0
    listed = out(capsys)
    assert (
        listed[0] == "admin                    built-in  " and listed[-1] == "get-only                 managed  reads"
    )
    assert len(listed) == 6  # five built-in policies and ours
    assert cli("policy", "get", "get-only") == 0
    assert out(capsys)[1] == "attached to: user bob"
    assert cli("simulate", "--user", "bob", "--action", "s3:GetObject", "--resource", "arn:aws:s3:::b/k") == 0
    assert out(capsys)[:2] == [
        "s3:GetObject on arn:aws:s3:::b/k: allowed (identity policy statement 'Get')",
        "  policy: user bob managed get-only",
    ]
    assert cli("simulate", "--user", "bob", "--action", "s3:PutObject", "--resource", "*") == 5
    assert "denied (no statement allows)" in out(capsys)[0]
    assert cli("policy", "delete", "get-only") == 1
    assert "detach it first" in capsys.readouterr().err
    assert cli("policy", "detach", "get-only", "--user", "bob") == 0
    assert cli("policy", "put-inline", "extra", "--user", "bob", "--document", str(doc)) == 0
    assert cli("policy", "delete-inline", "extra", "--user", "bob") == 0
    assert cli("policy", "delete", "get-only") == 0
    doc.write_text("{broken")
    assert cli("policy", "create", "bad", "--document", str(doc)) == 1
    assert "valid JSON" in capsys.readouterr().err
    assert cli("policy", "create", "bad", "--document", str(tmp_path / "missing.json")) == 1


def test_root_rotate(cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli("root", "rotate", "--grace", "10m") == 0
    captured = capsys.readouterr()
    stored = json.loads((tmp_path / "keys" / "root.json").read_text())
    assert captured.out == f"access_key={stored['access_key']}\nsecret_key={stored['secret_key']}\n"
    assert "previous root key stays valid until" in captured.err


def test_unreachable_gateway_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "other").mkdir()
    config = write_config(tmp_path / "other", free_ports(1)[0])
    assert main(["iam", "user", "list", "--config", str(config)]) == 3
    assert "is s3ipfs running?" in capsys.readouterr().err


def versitygw_dir(tmp_path: Path) -> Path:
    """A users.json as versitygw's auth/iam_internal.go writes it: the map key is the access key."""
    directory = tmp_path / "vgw-iam"
    directory.mkdir()
    accounts = {
        "accessAccounts": {
            "alice": {
                "access": "alice",
                "secret": "s3cr3t",
                "role": "user",
                "userID": 1001,
                "groupID": 1001,
                "projectID": 0,
            },
            "ops": {
                "access": "ops",
                "secret": "0ps-Secret",
                "role": "admin",
                "userID": 0,
                "groupID": 0,
                "projectID": 0,
            },
            "PLUSKEY0123456789ABC": {"access": "ignored-inner", "secret": "plus/secret+x", "role": "userplus"},
            "weird": {"access": "weird", "secret": "w", "role": "superuser"},
            "bad key!": {"access": "bad key!", "secret": "x", "role": "user"},
        }
    }
    (directory / "users.json").write_text(json.dumps(accounts, indent=2))
    (directory / "users.json.backup").write_text("{not read")
    return directory


def test_import_versitygw(cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    iam_dir = versitygw_dir(tmp_path)
    args = ("import-versitygw", "--iam-dir", str(iam_dir), "--root-access", "vgwroot", "--root-secret", "rootsecret")
    assert cli(*args, "--dry-run") == 1  # one account has an unusable access key
    captured = capsys.readouterr()
    assert "would: create user alice (versitygw role user)" in captured.out
    assert "would: create access key vgwroot for versitygw-root (same secret)" in captured.out
    assert "'bad key!' skipped" in captured.err
    assert "s3cr3t" not in captured.out
    assert cli.iam.list_users() == []  # a dry run changes nothing
    assert cli(*args) == 1
    capsys.readouterr()
    source = cli.iam.source
    assert source.principal_for("alice")[1] == "s3cr3t"
    assert source.principal_for("ops")[1] == "0ps-Secret"
    assert source.principal_for("PLUSKEY0123456789ABC")[1] == "plus/secret+x"
    assert source.principal_for("vgwroot")[1] == "rootsecret"
    roles = {u.name: (u.attached, [n for n, _ in u.inline], dict(u.tags)) for u in cli.iam.list_users()}
    assert roles["alice"] == (
        ("readwrite",),
        ["versitygw-user"],
        {"versitygw-role": "user", "versitygw-uid": "1001", "versitygw-gid": "1001", "versitygw-project": "0"},
    )
    assert roles["ops"][:2] == (("admin",), [])
    assert roles["PLUSKEY0123456789ABC"][:2] == (("readwrite",), [])
    assert roles["weird"][:2] == (("readwrite",), ["versitygw-user"])  # unknown roles behave as user
    assert roles["versitygw-root"][:2] == (("admin",), [])
    assert cli(*args, "--json") == 1  # the re-run finds nothing to do
    assert out_json(capsys)["steps"] == []
