"""Write a set of files all or nothing: every file goes to a temporary name first (mode 0600), then all are renamed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileExistsRefusal", "PlannedFile", "existing", "write_all"]

_SUFFIX = ".s3ipfs-new"


class FileExistsRefusal(Exception):
    """Some target files exist and overwriting was not asked for."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        super().__init__(", ".join(str(p) for p in paths))


@dataclass(frozen=True)
class PlannedFile:
    """One file to write; `keep` files are written only when absent (they belong to the daemon once it runs)."""

    path: Path
    text: str
    keep: bool = False

    def __repr__(self) -> str:  # the text may be a secret
        return f"PlannedFile({str(self.path)!r}, keep={self.keep})"


def existing(plan: Sequence[PlannedFile]) -> list[Path]:
    """The files of `plan` that would be overwritten."""
    return [item.path for item in plan if not item.keep and item.path.exists()]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing temporary


def write_all(plan: Sequence[PlannedFile], *, force: bool) -> list[Path]:
    """Write `plan`; returns the paths written. Raises FileExistsRefusal (nothing written) when a file exists and
    not `force`, OSError when the disk refuses (temporaries removed, no target touched before the renames)."""
    clash = existing(plan)
    if clash and not force:
        raise FileExistsRefusal(clash)
    todo = [item for item in plan if not (item.keep and item.path.exists())]
    staged: list[tuple[Path, Path]] = []
    try:
        for item in todo:
            item.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = item.path.with_name(f".{item.path.name}{_SUFFIX}")
            staged.append((temporary, item.path))
            _write_private(temporary, item.text)
    except BaseException:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise
    for temporary, target in staged:
        os.replace(temporary, target)
    for directory in {target.parent for _, target in staged}:
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return [target for _, target in staged]
