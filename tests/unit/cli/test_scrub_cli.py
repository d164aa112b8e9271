"""`s3ipfs scrub …` called in-process through main(argv) against the admin app (real LMDB store, the real scrub
service over a fake node) served by hypercorn in a thread: start and follow with --wait, status, cancel, damage,
--json, and the exit codes of its --help: 0 clean, 1 refused, 3 unreachable, 5 damage found and not repaired."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.cli.main import main
from tests.api.test_admin_scrub import ScrubAdmin, build_scrub_admin
from tests.support.admin_auth import install_cli_token
from tests.support.nodes import free_ports
from tests.unit.cli.test_pins_cli import Served, write_config
from tests.unit.service.scrub_fakes import put_file


@dataclass
class Cli:
    config: Path
    served: Served
    admin: ScrubAdmin

    def __call__(self, *argv: str) -> int:
        return main(["scrub", *argv, "--config", str(self.config)])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    port = free_ports(1)[0]
    admin = build_scrub_admin(tmp_path / "meta", port=port)
    install_cli_token(admin.app, tmp_path / "state", monkeypatch)
    served = Served(types.SimpleNamespace(app=admin.app, batches=admin.scrubber), port)  # type: ignore[arg-type]
    served.start()
    try:
        yield Cli(write_config(tmp_path, served.port), served, admin)
    finally:
        served.stop()
        admin.store.close()


def test_clean_run_with_wait(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--wait", "--rate", "500") == 0
    captured = capsys.readouterr()
    assert "done (everything, report only" in captured.out
    assert "objects checked: 3" in captured.out and "unrepaired: 0" in captured.out
    assert cli("status") == 0
    assert "objects checked: 3" in capsys.readouterr().out


def test_damage_found_then_repaired(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    file = put_file(cli.admin.store, cli.admin.node, "lost", b"0123456789ab")
    del cli.admin.node.blocks[file.leaves[1]]
    assert cli("--wait") == 5
    assert "missing: 1" in capsys.readouterr().out
    assert cli("status") == 5
    capsys.readouterr()
    assert cli("damage") == 5
    captured = capsys.readouterr()
    assert f"{file.leaves[1]}  missing  root {file.root}" in captured.out and "1 block(s)" in captured.err
    assert cli("--repair", "--wait", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["missing"], summary["repaired"], summary["unrepaired"]) == (1, 1, 0)
    assert cli("damage", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {"count": 0, "reports": []}


def test_start_without_wait_and_json_status(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--bucket", "bkt", "--prefix", "k", "--json") == 0
    started = json.loads(capsys.readouterr().out)
    assert started["current"]["options"]["prefix"] == "k"
    assert cli("status", "--wait", "--json") == 0
    capsys.readouterr()
    assert cli("status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["last"]["id"] == started["current"]["id"] and status["running"] is False


def test_refusals_exit_1(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("cancel") == 1
    assert "no scrub is running" in capsys.readouterr().err
    assert cli("--bucket", "no-such-bucket") == 1
    assert "no such bucket" in capsys.readouterr().err
    assert cli("--bucket", "Bad_Bucket") == 1
    assert "not valid" in capsys.readouterr().err
    assert cli("--prefix", "x/") == 1
    assert "--prefix needs --bucket" in capsys.readouterr().err
    assert cli("--rate", "-3") == 2  # argparse refuses it before any request
    assert cli("damage", "--limit", "0") == 2


def test_unreachable_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, free_ports(1)[0])
    for argv in ((), ("status",), ("cancel",), ("damage",)):
        assert main(["scrub", *argv, "--config", str(config)]) == 3
        assert "cannot reach the gateway's admin API" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scrub", "--help"]) == 0
    text = capsys.readouterr().out
    for line in ("0 done and clean", "1 refused", "3 the gateway or the IPFS node is unreachable", "5 damage found"):
        assert line in " ".join(text.split())
