"""Packaging tests run the real tools (systemd-analyze, dpkg-deb, lintian, rpmbuild, rpm).

They never skip on their own: a missing tool is a failure that says what to install. Set S3IPFS_SKIP_PACKAGING=1 to
skip them on purpose (the skip reason then says so in the report).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's tools, never pyenv shims
SKIP = os.environ.get("S3IPFS_SKIP_PACKAGING") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not SKIP:
        return
    marker = pytest.mark.skip(reason="S3IPFS_SKIP_PACKAGING=1: packaging tests skipped on request")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(marker)


def system_env() -> dict[str, str]:
    return {**os.environ, "PATH": SYSTEM_PATH, "LC_ALL": "C.UTF-8"}


def require_tool(name: str, package: str) -> str:
    """The tool's path, or a failure (not a skip) naming the Debian package to install."""
    path = shutil.which(name, path=SYSTEM_PATH)
    if path is None:
        pytest.fail(f"{name} is missing: apt-get install {package} (or set S3IPFS_SKIP_PACKAGING=1 to skip on purpose)")
    return path
