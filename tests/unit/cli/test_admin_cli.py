"""`s3ipfs admin …` in-process through main(argv) against the admin app served by hypercorn on loopback: login
stores a 0600 token, whoami/tokens/revoke/logout use it, token prints one, and the errors when there is none."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.api.admin.client import TOKEN_ENV, AdminAuthError, find_token, login_token_path
from appliance.cli.admin import parse_ttl
from appliance.cli.main import main
from appliance.errors import RequestError
from tests.api.test_admin_pin_ops import build_ops_admin
from tests.support.admin_auth import ROOT
from tests.support.nodes import free_ports
from tests.unit.cli.test_pins_cli import Served, write_config


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Served, Path]]:
    for name in list(os.environ):
        if name.startswith("S3IPFS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    port = free_ports(1)[0]
    ops = build_ops_admin(tmp_path / "meta", port=port)
    server = Served(ops, port)
    server.start()
    try:
        yield server, write_config(tmp_path, port)
    finally:
        server.stop()
        ops.store.close()


def keys() -> list[str]:
    return ["--access-key", ROOT.access_key, "--secret-key", ROOT.secret_key]


def test_login_whoami_tokens_revoke_logout(served: tuple[Served, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _server, config = served
    assert main(["admin", "whoami", "--config", str(config)]) == 1
    assert "not authenticated" in capsys.readouterr().err
    assert main(["admin", "login", *keys(), "--ttl", "30m", "--config", str(config)]) == 0
    assert "logged in as root" in capsys.readouterr().out
    path = login_token_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert main(["admin", "whoami", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["user"] == "root"
    assert main(["admin", "token", *keys(), "--ttl", "1h", "--config", str(config)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("s3ipfs_at_") and printed != token
    assert main(["admin", "tokens", "--json", "--config", str(config)]) == 0
    listed = json.loads(capsys.readouterr().out)["tokens"]
    assert len(listed) == 3  # the test's own root token, the login and the printed one
    other_id = printed.split("_")[2]
    assert main(["admin", "revoke", other_id, "--config", str(config)]) == 0
    assert f"revoked {other_id}" in capsys.readouterr().out
    assert main(["admin", "revoke", "0000000000000000", "--config", str(config)]) == 1
    capsys.readouterr()
    assert main(["admin", "logout", "--config", str(config)]) == 0
    assert not path.exists()
    assert main(["admin", "whoami", "--config", str(config)]) == 1
    assert "no token found" in capsys.readouterr().err


def test_wrong_key_and_bad_ttl(served: tuple[Served, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _server, config = served
    args = ["--access-key", ROOT.access_key, "--secret-key", "wrong"]
    assert main(["admin", "login", *args, "--config", str(config)]) == 1
    assert "wrong secret" in capsys.readouterr().err
    assert main(["admin", "token", *keys(), "--ttl", "soon", "--config", str(config)]) == 1
    assert not login_token_path().exists()


def test_revoke_all_keeps_nothing_but_local(served: tuple[Served, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _server, config = served
    assert main(["admin", "login", *keys(), "--config", str(config)]) == 0
    assert main(["admin", "revoke", "--all", "--config", str(config)]) == 0
    assert "revoked 2 token(s)" in capsys.readouterr().out
    assert main(["admin", "whoami", "--config", str(config)]) == 1


def test_token_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    local = tmp_path / "admin.token"
    assert find_token(None, local) == ""
    local.write_text("local-token\n")
    assert find_token(None, local) == "local-token"
    login_token_path().parent.mkdir(parents=True)
    login_token_path().write_text("login-token\n")
    assert find_token(None, local) == "login-token"
    monkeypatch.setenv(TOKEN_ENV, "env-token")
    assert find_token(None, local) == "env-token"
    assert find_token("explicit", local) == "explicit"


def test_parse_ttl_and_error_classes() -> None:
    assert [parse_ttl(t) for t in ("3600", "90s", "30m", "1h", "7d")] == [3600, 90, 1800, 3600, 604800]
    with pytest.raises(RequestError):
        parse_ttl("1w")
    assert issubclass(AdminAuthError, RequestError)
