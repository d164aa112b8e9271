"""s3cmd against the real gateway daemon."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.gateway import Gateway
from tests.system.conftest import BIN, client_env, run


def _config(gateway: Gateway, tmp_path: Path) -> Path:
    host = gateway.endpoint.removeprefix("http://")
    path = tmp_path / "s3cfg"
    path.write_text(
        "[default]\n"
        f"access_key = {gateway.access_key}\n"
        f"secret_key = {gateway.secret_key}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "bucket_location = us-east-1\n"
    )
    return path


def _s3cmd(gateway: Gateway, tmp_path: Path, *args: str) -> str:
    env = client_env(gateway, tmp_path / "home")
    return run([str(BIN / "s3cmd"), "-c", str(_config(gateway, tmp_path)), *args], env).stdout


def test_s3cmd_round_trip(gateway: Gateway, tmp_path: Path) -> None:
    _s3cmd(gateway, tmp_path, "mb", "s3://s3cmd-bucket")
    source = tmp_path / "file.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    _s3cmd(gateway, tmp_path, "put", str(source), "s3://s3cmd-bucket/some dir/file.bin")
    assert "some dir/file.bin" in _s3cmd(gateway, tmp_path, "ls", "--recursive", "s3://s3cmd-bucket")
    info = _s3cmd(gateway, tmp_path, "info", "s3://s3cmd-bucket/some dir/file.bin")
    assert str(source.stat().st_size) in info
    target = tmp_path / "back.bin"
    _s3cmd(gateway, tmp_path, "get", "s3://s3cmd-bucket/some dir/file.bin", str(target))
    assert target.read_bytes() == source.read_bytes()
    _s3cmd(gateway, tmp_path, "del", "s3://s3cmd-bucket/some dir/file.bin")
    assert _s3cmd(gateway, tmp_path, "ls", "--recursive", "s3://s3cmd-bucket").strip() == ""
    _s3cmd(gateway, tmp_path, "rb", "s3://s3cmd-bucket")


def test_s3cmd_sync(gateway: Gateway, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    files = {"x.txt": b"x", "d/y.txt": b"y" * 1000, "d/e/z +.txt": os.urandom(50_000)}
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    _s3cmd(gateway, tmp_path, "mb", "s3://s3cmd-sync")
    _s3cmd(gateway, tmp_path, "sync", f"{tree}/", "s3://s3cmd-sync/tree/")
    back = tmp_path / "back"
    back.mkdir()
    _s3cmd(gateway, tmp_path, "sync", "s3://s3cmd-sync/tree/", f"{back}/")
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name
    info = _s3cmd(gateway, tmp_path, "info", "s3://s3cmd-sync/tree/x.txt")
    assert "mtime:" in info  # s3cmd's own metadata (x-amz-meta-s3cmd-attrs) travels with the object
