"""The audit record, its canonical bytes and the hash chain over a file of records (pure: no I/O).

One file is a sequence of lines, each the canonical JSON of one record (keys sorted, no spaces, UTF-8) and "\\n".
Line 1 is a *genesis* record; every line carries `prev`, the SHA-256 (hex) of the previous line's canonical bytes;
the genesis's `prev` is the last line's hash of the file before it (`GENESIS_ROOT` for the very first file), so the
chain runs across rotated files. Editing, deleting, inserting or reordering a line breaks the chain at that line;
`verify_files` finds the first break. Deleting the newest lines of the newest file cannot be seen from the file
alone: the journald copy (docs/audit.md) is the outside witness for that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "GENESIS_ROOT",
    "AuditRecord",
    "Auditor",
    "Break",
    "canonical",
    "chain_line",
    "genesis_line",
    "line_hash",
    "verify_files",
    "verify_lines",
]

log = logging.getLogger(__name__)

GENESIS_ROOT = "0" * 64
_VERSION = 1


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One state-changing or denied request. Never holds secrets, tokens or Authorization headers."""

    time: float
    api: str  # "s3" or "admin"
    action: str  # the IAM action name when known ("s3:PutObject"), else the handler name
    status: int  # the HTTP status answered
    request_id: str = ""
    user: str = ""  # "root", an IAM user name, "" anonymous or not authenticated
    access_key: str = ""  # the key that signed (or the admin token's issued-to key); "" when none
    source_ip: str = ""
    resource: str = ""  # "bucket/key", "bucket", an admin path
    code: str = ""  # the S3 error code or admin error code ("" on success)
    bytes: int = 0  # body bytes received (writes) or sent
    cid: str = ""  # the object's CID when the request named or made one
    extra: Mapping[str, str] = field(default_factory=dict)  # small handler-specific facts (upload id, token id)

    def __post_init__(self) -> None:
        if self.api not in ("s3", "admin"):
            raise ValueError(f"api must be 's3' or 'admin', not {self.api!r}")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status")

    def fields(self) -> dict[str, Any]:
        """The record as the JSON object written (principal nested as S3's access logs show it)."""
        data = asdict(self)
        data["principal"] = {"user": data.pop("user"), "access_key": data.pop("access_key")}
        data["extra"] = dict(self.extra)
        if not data["extra"]:
            del data["extra"]
        data["type"] = "request"
        return data

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> AuditRecord:
        """The record a written request line holds (ValueError when it is not one)."""
        principal = data.get("principal") or {}
        try:
            return cls(
                time=float(data["time"]),
                api=str(data["api"]),
                action=str(data["action"]),
                status=int(data["status"]),
                request_id=str(data.get("request_id", "")),
                user=str(principal.get("user", "")),
                access_key=str(principal.get("access_key", "")),
                source_ip=str(data.get("source_ip", "")),
                resource=str(data.get("resource", "")),
                code=str(data.get("code", "")),
                bytes=int(data.get("bytes", 0)),
                cid=str(data.get("cid", "")),
                extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a request record: {exc}") from exc


def canonical(data: Mapping[str, Any]) -> bytes:
    """The one byte form of a JSON object that is hashed and written (sorted keys, no spaces, UTF-8)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def line_hash(line: bytes) -> str:
    """The chain hash of one written line (its canonical bytes, without the newline)."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def genesis_line(*, file: str, created: float, previous_file: str, previous_hash: str, dropped: Sequence[str]) -> bytes:
    """The first line of a file. `dropped`: the older files retention removed when this one was made, so verify can
    tell retention from deletion."""
    data = {
        "v": _VERSION,
        "type": "genesis",
        "seq": 0,
        "file": file,
        "time": created,
        "previous_file": previous_file,
        "dropped": list(dropped),
        "prev": previous_hash,
    }
    return canonical(data) + b"\n"


def chain_line(record: AuditRecord, *, seq: int, prev: str) -> bytes:
    """The line that appends `record` after a line whose hash is `prev` and whose seq is `seq - 1`."""
    data = record.fields()
    data.update(v=_VERSION, seq=seq, prev=prev)
    return canonical(data) + b"\n"


@dataclass(frozen=True, slots=True)
class Break:
    """Where a chain is broken: the file, the 1-based line number, why, and the line's text (cut short)."""

    file: str
    line: int
    reason: str
    text: str

    def describe(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}\n  {self.text}"


@dataclass(frozen=True, slots=True)
class FileChain:
    """What verifying one file found: its genesis fields and its last line's hash."""

    name: str
    previous_file: str
    previous_hash: str
    dropped: tuple[str, ...]
    last_hash: str
    records: int


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or canonical(data) + b"\n" != raw:
        return None  # edited by hand (spacing, key order) also counts as edited
    return data


def verify_lines(name: str, lines: Iterable[bytes]) -> tuple[FileChain | None, Break | None]:
    """Check one file's lines (each with its "\\n"); returns its chain summary, or the first break."""
    previous = ""
    genesis: dict[str, Any] = {}
    count = 0
    for number, raw in enumerate(lines, start=1):
        text = raw[:300].decode("utf-8", "replace").rstrip("\n")
        data = _parse(raw)
        if data is None:
            reason = "a cut-off line (no newline)" if not raw.endswith(b"\n") else "not a canonical JSON record"
            return None, Break(name, number, reason, text)
        if data.get("seq") != number - 1:
            return None, Break(name, number, f"sequence {data.get('seq')!r} where {number - 1} was expected", text)
        if number == 1:
            if data.get("type") != "genesis" or data.get("file") != name:
                return None, Break(name, number, "the first line is not this file's genesis record", text)
            genesis = data
        elif data.get("prev") != previous:
            return None, Break(name, number, "its prev hash does not match the line before (edited or moved)", text)
        elif data.get("type") != "request":
            return None, Break(name, number, "a genesis record in the middle of a file", text)
        else:
            try:
                AuditRecord.from_fields(data)
            except ValueError as exc:
                return None, Break(name, number, str(exc), text)
        previous = line_hash(raw)
        count = number
    if count == 0:
        return None, Break(name, 1, "an empty file (no genesis record)", "")
    return (
        FileChain(
            name=name,
            previous_file=str(genesis.get("previous_file", "")),
            previous_hash=str(genesis.get("prev", "")),
            dropped=tuple(str(d) for d in genesis.get("dropped", ())),
            last_hash=previous,
            records=count - 1,
        ),
        None,
    )


def verify_files(files: Sequence[tuple[str, Iterable[bytes]]]) -> tuple[int, Break | None]:
    """Check files given oldest first: each chain, and each genesis against the file before it. The oldest file's
    predecessor may be missing only when a later genesis says retention dropped it. Returns (records, first break)."""
    chains: list[FileChain] = []
    total = 0
    for name, lines in files:
        chain, broken = verify_lines(name, lines)
        if broken is not None:
            return total, broken
        assert chain is not None
        total += chain.records
        chains.append(chain)
    dropped = {name for chain in chains for name in chain.dropped}
    for index, chain in enumerate(chains):
        if index == 0:
            if chain.previous_file and chain.previous_file not in dropped:
                return total, Break(
                    chain.name,
                    1,
                    f"the file before it, {chain.previous_file}, is missing (not by retention)",
                    "",
                )
            if not chain.previous_file and chain.previous_hash != GENESIS_ROOT:
                return total, Break(chain.name, 1, "the first file's genesis does not start the chain", "")
            continue
        before = chains[index - 1]
        if chain.previous_file != before.name:
            return total, Break(
                chain.name,
                1,
                f"follows {chain.previous_file or 'nothing'}, but {before.name} is before it",
                "",
            )
        if chain.previous_hash != before.last_hash:
            return total, Break(
                chain.name, 1, f"its genesis does not match the last line of {before.name} (lines removed there)", ""
            )
    return total, None


class Auditor:
    """What the S3 and admin apps call once per state-changing or denied request. `write` appends a record (the
    AuditLog of this process); None audits nothing (tests and tools that serve no clients)."""

    def __init__(self, write: Callable[[AuditRecord], object] | None, *, clock: Callable[[], float] = time.time):
        self._write = write
        self._clock = clock
        self.failures = 0

    @property
    def enabled(self) -> bool:
        return self._write is not None

    def record(self, *, api: str, action: str, status: int, **fields: Any) -> None:
        """Write one record now (`fields`: the other AuditRecord fields). A failure to write is logged and counted,
        never raised: the request it describes has already happened."""
        if self._write is None:
            return
        try:
            self._write(AuditRecord(time=self._clock(), api=api, action=action, status=status, **fields))
        except Exception:
            self.failures += 1
            log.exception("could not write an audit record (%s %s %d)", api, action, status)
