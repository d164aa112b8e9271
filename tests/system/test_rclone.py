"""rclone (the Debian package) syncing a directory tree through the real gateway daemon."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.system.conftest import client_env, run


def _env(gateway: Gateway, tmp_path: Path) -> dict[str, str]:
    env = client_env(gateway, tmp_path / "home")
    env.update(
        {
            "RCLONE_CONFIG_GW_TYPE": "s3",
            "RCLONE_CONFIG_GW_PROVIDER": "Other",
            "RCLONE_CONFIG_GW_ENDPOINT": gateway.endpoint,
            "RCLONE_CONFIG_GW_ACCESS_KEY_ID": gateway.access_key,
            "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY": gateway.secret_key,
            "RCLONE_CONFIG_GW_REGION": "us-east-1",
            "RCLONE_CONFIG_GW_FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        }
    )
    return env


def test_rclone_sync_round_trip(gateway: Gateway, tmp_path: Path, s3: Any) -> None:
    rclone = shutil.which("rclone")
    if rclone is None:
        pytest.fail("rclone is not installed: scripts/setup.sh installs the Debian package")
    tree = tmp_path / "tree"
    files = {
        "a.txt": b"alpha",
        "nested/b.bin": os.urandom(300_000),
        "nested/deeper/c d+e.txt": b"spaces and plus",
        "big.bin": os.urandom(12 * 1024 * 1024),  # above the 5M upload cutoff set below: multipart
    }
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    env = _env(gateway, tmp_path)
    run([rclone, "mkdir", "gw:rclone-bucket"], env)
    run(
        [rclone, "sync", str(tree), "gw:rclone-bucket/backup", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M"], env
    )
    listing = run([rclone, "lsf", "-R", "gw:rclone-bucket/backup"], env).stdout.splitlines()
    assert sorted(p for p in listing if not p.endswith("/")) == sorted(files)
    back = tmp_path / "back"
    run([rclone, "sync", "gw:rclone-bucket/backup", str(back)], env)
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name
    head = s3.head_object(Bucket="rclone-bucket", Key="backup/a.txt")
    assert "mtime" in head["Metadata"]  # rclone's modification time travels as x-amz-meta-mtime
    check = run([rclone, "check", str(tree), "gw:rclone-bucket/backup"], env)
    assert check.returncode == 0
