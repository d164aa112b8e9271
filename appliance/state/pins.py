"""The pin outbox, pin status and access statistics inside a transaction (schema 3; layout in keys.py).

The outbox holds at most one job per CID (`pin_jobs`), indexed by due time (`pin_due`). An object write that adds a
CID reference calls `enqueue` in its own transaction, so an acknowledged PUT always has its pin job (or a status
that says the pin is done). The CID's last reference going away calls `cancel`; the unpin queue takes over.
Rows are JSON (readable with mdb_dump).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from appliance.errors import BackendError
from appliance.model import PinJob, PinRecord
from appliance.state import keys

__all__ = [
    "cancel",
    "decode_job",
    "decode_record",
    "enqueue",
    "load_job",
    "load_record",
    "put_job",
    "put_record",
    "read_access",
    "remove_job",
    "write_access",
]

_ACCESS = struct.Struct(">dd")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _loads(raw: bytes, what: str) -> Any:
    try:
        return json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackendError(f"metadata store: unreadable {what} row") from exc


def encode_job(job: PinJob) -> bytes:
    return _dumps(
        [
            job.name,
            job.bucket,
            job.due,
            job.phase,
            job.state,
            job.attempts,
            job.seq,
            job.created,
            job.started,
            job.extra,
        ]
    )


def decode_job(cid: str, raw: bytes) -> PinJob:
    row = _loads(raw, "pin job")
    try:
        name, bucket, due, phase, state, attempts, seq, created, started, extra = row
        return PinJob(
            cid=cid,
            name=str(name),
            bucket=str(bucket),
            due=float(due),
            phase=str(phase),
            state=str(state),
            attempts=int(attempts),
            seq=int(seq),
            created=float(created),
            started=float(started),
            extra=int(extra),
        )
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an integer no float holds
        raise BackendError("metadata store: malformed pin job row") from exc


def encode_record(record: PinRecord) -> bytes:
    return _dumps(
        [
            record.state,
            record.name,
            [list(peer) for peer in record.peers],
            record.error,
            record.updated,
            record.attempts,
            record.completions,
            record.replication_min,
            record.replication_max,
            record.extra,
        ]
    )


def decode_record(cid: str, raw: bytes) -> PinRecord:
    row = _loads(raw, "pin status")
    try:
        state, name, peers, error, updated, attempts, completions, rmin, rmax, *rest = row
        return PinRecord(
            cid=cid,
            state=str(state),
            name=str(name),
            peers=tuple((str(p), str(s), str(e)) for p, s, e in peers),
            error=str(error),
            updated=float(updated),
            attempts=int(attempts),
            completions=int(completions),
            replication_min=int(rmin),
            replication_max=int(rmax),
            extra=int(rest[0]) if rest else 0,
        )
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: an integer no float holds
        raise BackendError("metadata store: malformed pin status row") from exc


def load_job(txn: Any, dbs: keys.Dbs, cid: str) -> PinJob | None:
    raw = txn.get(cid.encode("utf-8"), db=dbs.pin_jobs)
    return None if raw is None else decode_job(cid, raw)


def put_job(txn: Any, dbs: keys.Dbs, job: PinJob) -> None:
    """Write `job`, moving its due-index entry."""
    old = load_job(txn, dbs, job.cid)
    if old is not None:
        txn.delete(keys.due_key(old.due, job.cid), db=dbs.pin_due)
    txn.put(job.cid.encode("utf-8"), encode_job(job), db=dbs.pin_jobs)
    txn.put(keys.due_key(job.due, job.cid), b"", db=dbs.pin_due)


def remove_job(txn: Any, dbs: keys.Dbs, cid: str) -> PinJob | None:
    old = load_job(txn, dbs, cid)
    if old is not None:
        txn.delete(keys.due_key(old.due, cid), db=dbs.pin_due)
        txn.delete(cid.encode("utf-8"), db=dbs.pin_jobs)
    return old


def load_record(txn: Any, dbs: keys.Dbs, cid: str) -> PinRecord | None:
    raw = txn.get(cid.encode("utf-8"), db=dbs.pin_status)
    return None if raw is None else decode_record(cid, raw)


def put_record(txn: Any, dbs: keys.Dbs, record: PinRecord) -> None:
    txn.put(record.cid.encode("utf-8"), encode_record(record), db=dbs.pin_status)


def enqueue(
    txn: Any, dbs: keys.Dbs, cid: str, *, name: str, bucket: str, now: float, outbox: bool, force: bool = False
) -> None:
    """A CID gained a reference. With the outbox: queue its pin job unless the CID is already pinned or queued
    (`force` re-queues even then: a batch re-pin). Without it (local pins only, made by the PUT's add): record
    it as pinned on the local node."""
    record = load_record(txn, dbs, cid)
    if not outbox:
        if record is None or record.state != "pinned":
            put_record(
                txn, dbs, PinRecord(cid=cid, state="pinned", name=name, peers=(("local", "pinned", ""),), updated=now)
            )
        return
    job = load_job(txn, dbs, cid)
    if not force and (job is not None or (record is not None and record.state == "pinned")):
        return
    seq = 0 if job is None else job.seq + 1
    extra = record.extra if record is not None else 0  # a dynamic boost stays until the policy lowers it
    put_job(txn, dbs, PinJob(cid=cid, name=name, bucket=bucket, due=now, seq=seq, created=now, extra=extra))
    base = record or PinRecord(cid=cid, state="queued")
    put_record(
        txn,
        dbs,
        PinRecord(
            cid=cid,
            state="queued",
            name=name,
            peers=base.peers,
            updated=now,
            completions=base.completions,
            replication_min=base.replication_min,
            replication_max=base.replication_max,
            extra=base.extra,
        ),
    )


def cancel(txn: Any, dbs: keys.Dbs, cid: str, *, now: float) -> None:
    """The CID's last reference went: drop its pin job; its status says an unpin is queued."""
    remove_job(txn, dbs, cid)
    record = load_record(txn, dbs, cid)
    if record is not None:
        put_record(
            txn,
            dbs,
            PinRecord(
                cid=cid,
                state="unpinning",
                name=record.name,
                peers=record.peers,
                updated=now,
                completions=record.completions,
                replication_min=record.replication_min,
                replication_max=record.replication_max,
                extra=record.extra,
            ),
        )


def read_access(txn: Any, dbs: keys.Dbs, cid: str) -> tuple[float, float] | None:
    """(decayed score, time of the score) of a CID, or None."""
    raw = txn.get(cid.encode("utf-8"), db=dbs.access_stats)
    if raw is None or len(raw) != _ACCESS.size:
        return None
    score, when = _ACCESS.unpack(bytes(raw))
    return score, when


def write_access(txn: Any, dbs: keys.Dbs, cid: str, score: float, when: float) -> None:
    txn.put(cid.encode("utf-8"), _ACCESS.pack(score, when), db=dbs.access_stats)
