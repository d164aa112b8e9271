"""`s3ipfs node install`: binaries from a verified release tarball or directory, atomically, nothing on failure."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from appliance.cli.main import main


def _tarball(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_install_from_a_verified_tarball(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = tmp_path / "kubo_v0.44.0_linux-amd64.tar.gz"
    digest = _tarball(release, {"kubo/ipfs": b"#!/bin/sh\necho kubo\n", "kubo/README.md": b"docs"})
    dest = tmp_path / "bin"
    assert main(["node", "install", "--from", str(release), "--sha256", digest, "--dest", str(dest)]) == 0
    assert (dest / "ipfs").read_bytes() == b"#!/bin/sh\necho kubo\n"
    assert os.access(dest / "ipfs", os.X_OK)
    assert sorted(p.name for p in dest.iterdir()) == ["ipfs"]
    assert "installed" in capsys.readouterr().out


def test_wrong_checksum_installs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release = tmp_path / "kubo.tar.gz"
    _tarball(release, {"kubo/ipfs": b"binary"})
    dest = tmp_path / "bin"
    assert main(["node", "install", "--from", str(release), "--sha256", "0" * 64, "--dest", str(dest)]) == 5
    assert "SHA-256" in capsys.readouterr().err
    assert not dest.exists()


@pytest.mark.parametrize("content", [b"not a tarball", b""])
def test_broken_or_empty_release(tmp_path: Path, content: bytes) -> None:
    release = tmp_path / "bad.tar.gz"
    release.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    assert main(["node", "install", "--from", str(release), "--sha256", digest, "--dest", str(tmp_path / "b")]) == 5


def test_tarball_without_binaries_and_hostile_members(tmp_path: Path) -> None:
    release = tmp_path / "other.tar.gz"
    digest = _tarball(release, {"../../etc/evil": b"x", "something/else": b"y"})
    assert main(["node", "install", "--from", str(release), "--sha256", digest, "--dest", str(tmp_path / "b")]) == 5
    assert not (tmp_path / "etc").exists()


def test_sha256_required_and_missing_source(tmp_path: Path) -> None:
    release = tmp_path / "kubo.tar.gz"
    _tarball(release, {"kubo/ipfs": b"binary"})
    assert main(["node", "install", "--from", str(release), "--dest", str(tmp_path / "b")]) == 2
    assert main(["node", "install", "--from", str(tmp_path / "absent"), "--sha256", "0" * 64]) == 2


def test_install_from_an_unpacked_directory(tmp_path: Path) -> None:
    unpacked = tmp_path / "release"
    (unpacked / "ipfs-cluster-service").mkdir(parents=True)
    (unpacked / "ipfs-cluster-service" / "ipfs-cluster-service").write_bytes(b"cluster")
    dest = tmp_path / "bin"
    assert main(["node", "install", "--from", str(unpacked), "--dest", str(dest)]) == 0
    assert (dest / "ipfs-cluster-service").read_bytes() == b"cluster"
