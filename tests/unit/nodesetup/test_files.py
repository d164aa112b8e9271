"""All-or-nothing writing: refusal without force, mode 0600, kept files, no leftovers on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.nodesetup.files import FileExistsRefusal, PlannedFile, write_all


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_private_files_and_dirs(tmp_path: Path) -> None:
    plan = [PlannedFile(tmp_path / "a" / "config", "one"), PlannedFile(tmp_path / "b" / "secret", "two")]
    assert write_all(plan, force=False) == [p.path for p in plan]
    assert (tmp_path / "a" / "config").read_text() == "one"
    assert _mode(tmp_path / "a" / "config") == 0o600
    assert _mode(tmp_path / "b" / "secret") == 0o600
    assert _mode(tmp_path / "a") == 0o700
    assert sorted(os.listdir(tmp_path / "a")) == ["config"]


def test_refuses_existing_files_without_force(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("old")
    plan = [PlannedFile(tmp_path / "new", "x"), PlannedFile(tmp_path / "config", "new")]
    with pytest.raises(FileExistsRefusal) as info:
        write_all(plan, force=False)
    assert info.value.paths == (tmp_path / "config",)
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "config").read_text() == "old"
    write_all(plan, force=True)
    assert (tmp_path / "config").read_text() == "new"
    assert _mode(tmp_path / "config") == 0o600


def test_kept_files_are_written_only_when_absent(tmp_path: Path) -> None:
    (tmp_path / "version").write_text("19\n")
    written = write_all(
        [PlannedFile(tmp_path / "version", "18\n", keep=True), PlannedFile(tmp_path / "spec", "s", keep=True)],
        force=False,
    )
    assert written == [tmp_path / "spec"]
    assert (tmp_path / "version").read_text() == "19\n"


def test_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder is needed")
    plan = [PlannedFile(tmp_path / "ok" / "config", "x"), PlannedFile(blocker / "inside", "y")]
    with pytest.raises(OSError):
        write_all(plan, force=False)
    assert not (tmp_path / "ok" / "config").exists()
    assert os.listdir(tmp_path / "ok") == []


def test_repr_hides_the_content(tmp_path: Path) -> None:
    assert "s3cr3t" not in repr(PlannedFile(tmp_path / "k", "s3cr3t"))
