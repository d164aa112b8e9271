"""Build the .deb and .rpm with scripts/build-packages.sh (into a temporary directory) and inspect them for real."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from appliance.config import AppConfig
from tests.packaging.conftest import REPO, require_tool, system_env

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
UNITS = ("s3ipfs.service", "s3ipfs-ipfs.service", "s3ipfs-cluster.service")


@dataclass(frozen=True)
class Built:
    deb: Path
    rpm: Path


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=env or system_env(), check=False, timeout=600
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    for tool, package in (("dpkg-deb", "dpkg"), ("lintian", "lintian"), ("rpmbuild", "rpm"), ("rpm", "rpm")):
        require_tool(tool, package)
    base = tmp_path_factory.mktemp("pkg")
    env = {**system_env(), "S3IPFS_DIST_DIR": str(base / "dist"), "S3IPFS_PKG_WORK": str(base / "work")}
    result = _run("bash", REPO / "scripts/build-packages.sh", "--no-lintian", env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    built = Built(base / "dist" / f"s3ipfs_{VERSION}_amd64.deb", base / "dist" / f"s3ipfs-{VERSION}.x86_64.rpm")
    assert built.deb.is_file() and built.rpm.is_file(), sorted(os.listdir(base / "dist"))
    return built


@pytest.fixture(scope="module")
def deb_files(built: Built) -> dict[str, str]:
    """path -> the `dpkg-deb -c` line (links show their target)."""
    result = _run("dpkg-deb", "-c", built.deb)
    assert result.returncode == 0, result.stderr
    files = {}
    for line in result.stdout.splitlines():
        name = line.split(None, 5)[5]
        files[name.split(" -> ")[0].removeprefix(".")] = line
    return files


def test_lintian_is_clean(built: Built) -> None:
    result = _run("lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", built.deb)
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWI]: ", line)]
    assert result.returncode == 0 and not tags, result.stdout + result.stderr


def test_deb_contents(deb_files: dict[str, str]) -> None:
    for path in (
        "/opt/s3ipfs/venv/bin/python3.11",
        "/opt/s3ipfs/venv/bin/s3ipfs",
        "/usr/bin/s3ipfs",
        "/etc/s3ipfs/s3ipfs.yaml",
        "/usr/lib/sysusers.d/s3ipfs.conf",
        "/usr/lib/tmpfiles.d/s3ipfs.conf",
        "/usr/share/doc/s3ipfs/copyright",
        *(f"/lib/systemd/system/{unit}" for unit in UNITS),
    ):
        assert path in deb_files, path
    assert deb_files["/usr/bin/s3ipfs"].endswith("-> /opt/s3ipfs/venv/bin/s3ipfs")
    assert deb_files["/opt/s3ipfs/venv/bin/python3.11"].endswith("-> /usr/bin/python3.11")
    assert not [p for p in deb_files if "__pycache__" in p]  # compiled by postinst, removed by prerm


def test_deb_units_are_the_repo_units(built: Built, tmp_path: Path) -> None:
    assert _run("dpkg-deb", "-x", built.deb, tmp_path).returncode == 0
    for unit in UNITS:
        assert (tmp_path / "lib/systemd/system" / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes()


def test_deb_control_and_conffiles(built: Built, tmp_path: Path) -> None:
    assert _run("dpkg-deb", "-e", built.deb, tmp_path).returncode == 0
    assert (tmp_path / "conffiles").read_text().split() == ["/etc/s3ipfs/s3ipfs.yaml"]
    control = (tmp_path / "control").read_text()
    assert f"Version: {VERSION}\n" in control
    assert re.search(r"^Depends: .*python3\.11.*libc6 \(>= 2\.\d+\)", control, re.M), control
    postinst = (tmp_path / "postinst").read_text()
    assert "deb-systemd-helper enable" in postinst and "/run/systemd/system" in postinst
    postrm = (tmp_path / "postrm").read_text()
    assert re.search(r'"\$1" = "purge".*rm -rf /var/lib/s3ipfs /etc/s3ipfs', postrm, re.S)
    for script in ("postinst", "prerm", "postrm"):
        assert _run("sh", "-n", tmp_path / script).returncode == 0, script


def test_packaged_config_documents_every_key_with_its_default(built: Built, tmp_path: Path) -> None:
    assert _run("dpkg-deb", "-x", built.deb, tmp_path).returncode == 0
    text = (tmp_path / "etc/s3ipfs/s3ipfs.yaml").read_text(encoding="utf-8")
    # All commented out (the defaults apply) but the TLS minimum version, which the packaged file raises to 1.3.
    packaged = {"s3": {"tls_min_version": "1.3"}, "admin": {"tls_min_version": "1.3"}}
    assert yaml.safe_load(text) == packaged
    uncommented = yaml.safe_load(re.sub(r"(?m)^(\s*)#(?=[a-z0-9_]+:)", r"\1", text))
    assert AppConfig.model_validate(uncommented) == AppConfig.model_validate(packaged)
    defaults = AppConfig().model_dump()
    expected = set(defaults) | {f"{s}.{k}" for s, v in defaults.items() if isinstance(v, dict) for k in v}
    seen = set(uncommented) | {f"{s}.{k}" for s, v in uncommented.items() if isinstance(v, dict) for k in v}
    assert seen == expected
    for line_no, line in enumerate(text.splitlines()):
        if re.match(r"^\s*#[a-z0-9_]+:", line):  # every key line follows its '##' explanation
            assert text.splitlines()[line_no - 1].lstrip().startswith("## "), line


def test_bundled_venv_runs_the_cli(built: Built, tmp_path: Path) -> None:
    """The extracted venv (a venv finds its site-packages relative to itself) imports the app and checks the config."""
    assert _run("dpkg-deb", "-x", built.deb, tmp_path).returncode == 0
    python = tmp_path / "opt/s3ipfs/venv/bin/python3.11"
    env = {k: v for k, v in system_env().items() if not k.startswith(("S3IPFS_", "PYTHON", "VIRTUAL_ENV", "COV"))}
    result = _run(python, "-m", "appliance.cli", "--help", env=env)
    assert result.returncode == 0 and "serve" in result.stdout, result.stderr
    result = _run(python, "-c", "import sys; print(sys.prefix)", env=env)
    assert result.stdout.strip() == str(tmp_path / "opt/s3ipfs/venv")


def test_rpm_metadata(built: Built) -> None:
    info = _run("rpm", "-qip", built.rpm)
    assert info.returncode == 0 and re.search(rf"^Version\s*: {re.escape(VERSION)}$", info.stdout, re.M), info.stdout
    files = _run("rpm", "-qlp", built.rpm).stdout.split()
    for path in (
        "/opt/s3ipfs/venv/bin/python3.11",
        "/usr/bin/s3ipfs",
        "/etc/s3ipfs/s3ipfs.yaml",
        *(f"/usr/lib/systemd/system/{unit}" for unit in UNITS),
    ):
        assert path in files, path
    assert not [f for f in files if f.startswith(("/usr/lib/.build-id", "/lib/"))]
    requires = _run("rpm", "-qp", "--requires", built.rpm).stdout.split("\n")
    assert "python3.11" in requires
    assert not [r for r in requires if "python3.11dist(" in r or r.startswith("lib")]  # AutoReqProv: no
    config = _run("rpm", "-qp", "--configfiles", built.rpm).stdout.split()
    assert config == ["/etc/s3ipfs/s3ipfs.yaml"]


def test_rpm_installs_into_a_scratch_root(built: Built, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert _run("rpm", "--root", root, "--initdb").returncode == 0
    result = _run("rpm", "-i", "--nodeps", "--noscripts", "--root", root, built.rpm)
    assert result.returncode == 0, result.stderr
    assert _run("rpm", "--root", root, "-q", "s3ipfs").stdout.strip() == f"s3ipfs-{VERSION}-1.x86_64"
    assert os.readlink(root / "usr/bin/s3ipfs") == "/opt/s3ipfs/venv/bin/s3ipfs"
    unit = root / "usr/lib/systemd/system/s3ipfs.service"
    assert unit.read_bytes() == (REPO / "systemd/s3ipfs.service").read_bytes()
    assert (root / "etc/s3ipfs/s3ipfs.yaml").is_file()
    assert (root / "var/lib/s3ipfs").is_dir()
