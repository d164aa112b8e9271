"""The units in systemd/: `systemd-analyze verify` with empty stderr, security exposure, and the promises they make."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.config import S3Config
from tests.packaging.conftest import REPO, require_tool, system_env

UNITS = ("s3ipfs.service", "s3ipfs-ipfs.service", "s3ipfs-cluster.service")
BINARIES = ("s3ipfs", "ipfs", "ipfs-cluster-service")
MAX_EXPOSURE = 2.0


def _unit(name: str) -> str:
    return (REPO / "systemd" / name).read_text(encoding="utf-8")


def _settings(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|min)?", value)
    assert match, f"unexpected time span {value!r}"
    return float(match[1]) * (60 if match[2] == "min" else 1)


@pytest.fixture(scope="module")
def verify_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the host's system units, stub binaries and our units, so verify checks ours against a real system."""
    require_tool("systemd-analyze", "systemd")
    root = tmp_path_factory.mktemp("verify-root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    for name in BINARIES:
        stub = root / "usr/bin" / name
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    (root / "bin").mkdir()
    kill = root / "bin/kill"  # ExecReload= of s3ipfs.service (procps on Debian, util-linux on RPM systems)
    kill.write_text("#!/bin/sh\n")
    kill.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def _verify(root: Path, unit_dir: Path, units: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    for name in units:
        shutil.copy(unit_dir / name, root / "etc/systemd/system" / name)
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        env=system_env(),
        check=False,
    )


def test_verify_is_clean(verify_root: Path) -> None:
    result = _verify(verify_root, REPO / "systemd", UNITS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # verify exits 0 on unknown keys: the warnings are on stderr


def test_verify_gate_catches_a_typo(verify_root: Path, tmp_path: Path) -> None:
    """The empty-stderr gate above is worth something: a misspelt key only warns, with rc=0."""
    (tmp_path / "s3ipfs-typo.service").write_text(
        _unit("s3ipfs.service").replace("ProtectSystem=strict", "ProtectSystm=strict"), encoding="utf-8"
    )
    result = _verify(verify_root, tmp_path, ("s3ipfs-typo.service",))
    assert "ProtectSystm" in result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_security_exposure(name: str) -> None:
    require_tool("systemd-analyze", "systemd")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(REPO / "systemd" / name)],
        capture_output=True,
        text=True,
        env=system_env(),
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250); run `systemd-analyze security` on a host")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    limit = MAX_EXPOSURE if name == "s3ipfs.service" else 2.5
    assert float(match[1]) <= limit, result.stdout


@pytest.mark.parametrize("name", UNITS)
def test_header_says_how_to_customise(name: str) -> None:
    header = _unit(name).split("[Unit]", 1)[0]
    assert f"systemctl edit {name}" in header


def test_gateway_unit_promises() -> None:
    s = _settings(_unit("s3ipfs.service"))
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == ["/usr/bin/s3ipfs serve --config /etc/s3ipfs/s3ipfs.yaml"]
    assert s["User"] == ["s3ipfs"]
    assert s["Restart"] == ["on-failure"]
    assert s["RestartPreventExitStatus"] == ["2"]  # ConfigError exits 2: fail fast, no restart loop
    assert _seconds(s["TimeoutStopSec"][0]) > S3Config().graceful_timeout
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/var/lib/s3ipfs"]
    assert s["CapabilityBoundingSet"] == [""]
    assert "s3ipfs-ipfs.service" in " ".join(s["Wants"])
    assert "s3ipfs-ipfs.service" in " ".join(s["After"])
    assert "Requires" not in s  # the gateway starts without Kubo and says so in /ready


def test_node_units_are_skipped_without_their_binaries() -> None:
    ipfs = _settings(_unit("s3ipfs-ipfs.service"))
    assert ipfs["ConditionFileIsExecutable"] == ["/usr/bin/ipfs"]
    assert ipfs["Environment"] == ["IPFS_PATH=/var/lib/s3ipfs/ipfs"]
    cluster = _settings(_unit("s3ipfs-cluster.service"))
    assert cluster["ConditionFileIsExecutable"] == ["/usr/bin/ipfs-cluster-service"]
    assert cluster["Environment"] == ["IPFS_CLUSTER_PATH=/var/lib/s3ipfs/cluster"]
    assert "s3ipfs-ipfs.service" in " ".join(cluster["After"])


def test_sysusers_and_tmpfiles() -> None:
    sysusers = (REPO / "systemd/s3ipfs.sysusers").read_text(encoding="utf-8")
    assert 'u s3ipfs - "s3ipfs daemon" /var/lib/s3ipfs' in sysusers
    tmpfiles = (REPO / "systemd/s3ipfs.tmpfiles").read_text(encoding="utf-8")
    assert re.search(r"^d\s+/var/lib/s3ipfs\s+0750\s+s3ipfs\s+s3ipfs", tmpfiles, re.M)
