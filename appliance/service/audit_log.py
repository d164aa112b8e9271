"""The audit log on disk: a writer correct with several processes, rotation by size and time, and readers.

Several S3 worker processes and the main process append to the same directory. Each record is written by one
`write()` of a whole line to a file opened with O_APPEND, while the process holds an exclusive `flock` on
`<dir>/.lock`; under that lock it reads the chain head (the last line of the newest file), rotates when due and
appends. A process killed with SIGKILL releases the lock with its descriptors, and a single write of a line is never
split by a kill, so at most its own in-flight record is missing and the chain stays whole (docs/audit.md says why
this was chosen over one writer process fed through a pipe).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.service.audit import (
    GENESIS_ROOT,
    AuditRecord,
    Break,
    chain_line,
    genesis_line,
    line_hash,
    verify_files,
)

__all__ = ["AuditLog", "AuditSettings", "audit_files", "read_lines", "records", "verify_dir"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^audit-(\d{8})-(\d{8}T\d{6}Z)\.jsonl$")
_TAIL = 64 * 1024  # a record line is far shorter than this
_SHORT_TAIL = 4096


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """Where the files go and when they rotate (config section `audit`)."""

    directory: Path
    max_file_bytes: int = 64 * 1024 * 1024
    rotate_seconds: float = 86400.0  # 0: by size only
    retention: int = 30  # files kept, the current one included; 0 keeps every file


@dataclass(slots=True)
class _Head:
    name: str
    seq: int  # the last line's seq
    last_hash: str
    created: float
    size: int


def audit_files(directory: Path) -> list[str]:
    """The audit file names in `directory`, oldest first."""
    try:
        names = [entry.name for entry in os.scandir(directory) if _NAME.match(entry.name)]
    except FileNotFoundError:
        return []
    return sorted(names)


def _file_name(number: int, now: float) -> str:
    return f"audit-{number:08d}-{datetime.fromtimestamp(now, UTC):%Y%m%dT%H%M%SZ}.jsonl"


def _read_head(path: Path, name: str) -> _Head | None:
    """The chain head of one file, None when its last line is cut off or unreadable (the file is then closed)."""
    with path.open("rb") as fh:
        first = fh.readline(_TAIL)
        size = os.fstat(fh.fileno()).st_size
        for window in (_SHORT_TAIL, _TAIL):  # a record is usually well under 4 KiB: read little on every append
            fh.seek(max(0, size - window))
            tail = fh.read()
            if window >= size or b"\n" in tail[:-1]:
                break
    if not tail.endswith(b"\n") or not first.endswith(b"\n"):
        return None
    last = tail[:-1].rsplit(b"\n", 1)[-1] + b"\n"
    try:
        created = float(json.loads(first)["time"])
        seq = int(json.loads(last)["seq"])
    except (ValueError, KeyError, TypeError):
        return None
    return _Head(name=name, seq=seq, last_hash=line_hash(last), created=created, size=size)


class AuditLog:
    """Appends records to the hash-chained files of one directory; safe across processes and threads of them."""

    def __init__(
        self,
        settings: AuditSettings,
        *,
        clock: Callable[[], float] = time.time,
        sink: Callable[[AuditRecord, str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._dir = settings.directory
        self._clock = clock
        self._sink = sink  # e.g. the journal: gets each record and its line hash after it is written
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._lock_fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT, 0o640)
        self._fd: int | None = None
        self._fd_name = ""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def append(self, record: AuditRecord) -> str:
        """Write `record` as the next line of the chain; returns its line hash."""
        with self._locked():
            now = self._clock()
            names = audit_files(self._dir)
            head = _read_head(self._dir / names[-1], names[-1]) if names else None
            if head is None or self._due(head, now):
                head = self._rotate(names, head, now)
            line = chain_line(record, seq=head.seq + 1, prev=head.last_hash)
            if head.size + len(line) > self._settings.max_file_bytes and head.seq > 0:
                head = self._rotate(audit_files(self._dir), head, now)
                line = chain_line(record, seq=head.seq + 1, prev=head.last_hash)
            fd = self._open(head.name)
            os.write(fd, line)  # one write of the whole line (O_APPEND): never interleaved, never split
        digest = line_hash(line)
        if self._sink is not None:
            try:
                self._sink(record, digest)
            except Exception:  # the file is the record of truth; a journal hiccup must not fail the request
                log.warning("could not send an audit record to the journal", exc_info=True)
        return digest

    def _due(self, head: _Head, now: float) -> bool:
        rotate = self._settings.rotate_seconds
        return head.seq > 0 and rotate > 0 and now - head.created >= rotate

    def _open(self, name: str) -> int:
        if self._fd is None or self._fd_name != name:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = os.open(self._dir / name, os.O_WRONLY | os.O_APPEND)
            self._fd_name = name
        return self._fd

    def _rotate(self, names: list[str], head: _Head | None, now: float) -> _Head:
        """Start a new file chained to `head` (or to the root); drop the oldest files beyond the retention."""
        number = int(_NAME.match(names[-1]).group(1)) + 1 if names else 1  # type: ignore[union-attr]
        name = _file_name(number, now)
        keep = self._settings.retention
        dropped = names[: max(0, len(names) + 1 - keep)] if keep > 0 else []
        previous_file = names[-1] if names else ""
        previous_hash = GENESIS_ROOT
        if names and head is None:
            # The newest file ends in a cut-off line: chain from its last whole line, verify reports the cut.
            previous_hash = self._last_whole_hash(self._dir / names[-1])
        elif head is not None:
            previous_hash = head.last_hash
        line = genesis_line(
            file=name, created=now, previous_file=previous_file, previous_hash=previous_hash, dropped=dropped
        )
        tmp = self._dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self._dir / name)  # appears whole: readers never see an empty file
        for old in dropped:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._dir / old)
        return _Head(name=name, seq=0, last_hash=line_hash(line), created=now, size=len(line))

    @staticmethod
    def _last_whole_hash(path: Path) -> str:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - _TAIL))
            tail = fh.read()
        whole = tail[: tail.rfind(b"\n") + 1]
        return line_hash(whole[:-1].rsplit(b"\n", 1)[-1] + b"\n") if whole else GENESIS_ROOT


def read_lines(path: Path) -> Iterator[bytes]:
    """The lines of one file, each with its newline (the last one may lack it when cut off)."""
    with path.open("rb") as fh:
        yield from fh


def verify_dir(directory: Path) -> tuple[int, Break | None]:
    """Verify every file of `directory` (oldest first): (records checked, first break or None)."""
    names = audit_files(directory)
    if not names:
        return 0, None
    return verify_files([(name, read_lines(directory / name)) for name in names])


def records(directory: Path) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Every request record, oldest first: (file, line number, the JSON object). Unreadable lines are skipped
    (verify reports them)."""
    for name in audit_files(directory):
        with contextlib.suppress(FileNotFoundError):  # retention may remove it while we read
            for number, raw in enumerate(read_lines(directory / name), start=1):
                try:
                    data = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(data, dict) and data.get("type") == "request":
                    yield name, number, data
