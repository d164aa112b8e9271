"""The `s3ipfs` command line: config check and credentials show, called in-process through main(argv)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from appliance.cli.main import main


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s3ipfs.yaml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("S3IPFS_"):
            monkeypatch.delenv(name)


def test_config_check_ok_prints_the_effective_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"state_dir: {tmp_path}\ns3:\n  port: 9100\nipfs:\n  auth_header: Basic c2VjcmV0\n")
    assert main(["config", "check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    first, rest = out.split("\n", 1)
    assert first == "config OK"
    shown = yaml.safe_load(rest)
    assert shown["s3"]["port"] == 9100
    assert shown["admin"]["host"] == "127.0.0.1"
    assert shown["ipfs"]["auth_header"] == "***"
    assert "c2VjcmV0" not in out


def test_config_check_broken_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "s3: [port: 1\n")
    assert main(["config", "check", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "not valid YAML" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("s3:\n  prot: 9000\n", "s3.prot"),
        ("admin:\n  port: 70000\n", "admin.port"),
        ("ipfs:\n  api_url: x\n", "ipfs.api_url"),
    ],
)
def test_config_check_bad_key_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str) -> None:
    path = write(tmp_path, text)
    assert main(["config", "check", "--config", str(path)]) == 2
    assert key in capsys.readouterr().err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_config_from_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "s3:\n  port: 9200\n")
    monkeypatch.setenv("S3IPFS_CONFIG", str(path))
    monkeypatch.setenv("S3IPFS_ADMIN__PORT", "9300")
    assert main(["config", "check"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out.split("\n", 1)[1])
    assert (shown["s3"]["port"], shown["admin"]["port"]) == (9200, 9300)


def test_credentials_show_creates_the_file_0600(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"state_dir: {tmp_path / 'state'}\n")
    assert main(["credentials", "show", "--config", str(path)]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    creds_file = tmp_path / "state" / "keys" / "root.json"
    assert Path(lines["file"]) == creds_file
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    stored = json.loads(creds_file.read_text())
    assert stored == {"access_key": lines["access_key"], "secret_key": lines["secret_key"]}
    # A second call shows the same pair.
    assert main(["credentials", "show", "--config", str(path)]) == 0
    assert f"secret_key={stored['secret_key']}" in capsys.readouterr().out


def test_credentials_show_with_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = tmp_path / "root.json"
    creds.write_text("[1, 2]")
    path = write(tmp_path, f"auth:\n  root_credentials_file: {creds}\n")
    assert main(["credentials", "show", "--config", str(path)]) == 2
    assert "auth.root_credentials_file" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["config"]) == 2
    assert "usage" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "config", "credentials"):
        assert command in out
