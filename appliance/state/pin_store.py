"""The pin outbox, pin status and access statistics of the metadata store (schema 3; rows in pins.py).

One orchestrator per appliance drains the outbox: `claim_pin_jobs` leases due jobs (an in-flight job's due time is
its lease expiry, so a claimer that died leaves jobs that become due again), and `finish_pin_job` /
`reschedule_pin_job` only touch the job they claimed (same `seq`): a PUT that re-queued the CID meanwhile wins.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from appliance.model import PIN_STATES, PinJob, PinRecord
from appliance.state import codec, keys, pins
from appliance.state.store_base import StoreBase
from appliance.state.store_base import guarded as _guarded

__all__ = ["PinMethods"]

_ACCESS_PRUNE = 1e-3  # a decayed score below this is dropped


def _satisfied_by(job: PinJob, record: PinRecord) -> bool:
    """Whether the pin `record` reports (made with the bucket policy of its name, no extra replicas) is what `job`
    would pin: the same bucket's policy and the same extra replicas, whatever the job's phase."""
    bucket, _, _ = record.name.partition("/")  # bucket names hold no "/"
    return job.bucket == bucket and job.extra == record.extra


class PinMethods(StoreBase):
    """The pin methods of LmdbMetadataStore."""

    @property
    def pin_outbox(self) -> bool:
        """Whether object writes queue cluster pin jobs."""
        return self._outbox

    @_guarded
    def claim_pin_jobs(self, now: float, limit: int, *, lease: float) -> list[PinJob]:
        """Lease up to `limit` jobs due at `now` (queued, or in flight past their lease) until `now + lease`."""
        claimed: list[PinJob] = []
        with self._env.begin(write=True) as txn:
            cursor = txn.cursor(db=self._dbs.pin_due)
            due: list[str] = []
            for index_key in cursor.iternext(values=False):
                when, cid = keys.split_due_key(bytes(index_key))
                if when > now or len(due) == limit:
                    break
                due.append(cid)
            for cid in due:
                job = pins.load_job(txn, self._dbs, cid)
                if job is None:
                    continue
                job = dataclasses.replace(job, state="inflight", due=now + lease)
                pins.put_job(txn, self._dbs, job)
                claimed.append(job)
        return claimed

    @_guarded
    def requeue_inflight_pins(self, now: float) -> int:
        """Make every in-flight job due now (the orchestrator starting: whoever claimed them is gone)."""
        with self._env.begin(write=True) as txn:
            cursor = txn.cursor(db=self._dbs.pin_jobs)
            # The text test only skips decoding most queued rows; a name may hold `"inflight` too.
            candidates = [
                pins.decode_job(bytes(cid).decode("utf-8"), raw)
                for cid, raw in cursor.iternext()
                if b'"inflight"' in bytes(raw)
            ]
            stale = [job for job in candidates if job.state == "inflight"]
            for job in stale:
                pins.put_job(txn, self._dbs, dataclasses.replace(job, state="queued", due=now))
            return len(stale)

    @_guarded
    def finish_pin_job(self, job: PinJob, record: PinRecord) -> bool:
        """The claimed job reached its policy: drop it and store `record` (state pinned, completions + 1). False,
        and nothing written, if the job was cancelled (the CID lost its last reference) or re-queued meanwhile."""
        with self._env.begin(write=True) as txn:
            current = pins.load_job(txn, self._dbs, job.cid)
            if current is None or current.seq != job.seq:
                return False
            pins.remove_job(txn, self._dbs, job.cid)
            old = pins.load_record(txn, self._dbs, job.cid)
            done = 0 if old is None else old.completions
            pins.put_record(txn, self._dbs, dataclasses.replace(record, completions=done + 1))
            return True

    @_guarded
    def reschedule_pin_job(self, job: PinJob, record: PinRecord) -> bool:
        """Put the claimed job back in the queue with its new phase/attempts/due (from `job`) and store `record`.
        False, and nothing written, if the job was cancelled or re-queued meanwhile."""
        with self._env.begin(write=True) as txn:
            current = pins.load_job(txn, self._dbs, job.cid)
            if current is None or current.seq != job.seq:
                return False
            pins.put_job(txn, self._dbs, dataclasses.replace(job, state="queued"))
            old = pins.load_record(txn, self._dbs, job.cid)
            done = 0 if old is None else old.completions
            pins.put_record(txn, self._dbs, dataclasses.replace(record, completions=done))
            return True

    @_guarded
    def pin_status(self, cid: str) -> PinRecord | None:
        """The pin status kept for `cid`, or None (never written, or unpinned)."""
        with self._env.begin() as txn:
            return pins.load_record(txn, self._dbs, cid)

    @_guarded
    def mark_pinned(self, record: PinRecord) -> bool:
        """Store a `pinned` status learnt outside the outbox (a PUT acknowledged by the cluster); False if no object
        references the CID any more. The CID's job is finished with it (completions + 1) when that pin is all the
        job would make: same bucket policy (the bucket of `record.name`), same extra replicas. A job asking for
        something else (another bucket's policy, a dynamic boost) stays queued."""
        with self._env.begin(write=True) as txn:
            if self._refcount(txn, record.cid) == 0:
                return False
            old = pins.load_record(txn, self._dbs, record.cid)
            done = 0 if old is None else old.completions
            job = pins.load_job(txn, self._dbs, record.cid)
            if job is not None and _satisfied_by(job, record):
                # Removing the job makes a claim of it in flight fail its seq check: it cannot complete twice.
                pins.remove_job(txn, self._dbs, record.cid)
                done += 1
            pins.put_record(txn, self._dbs, dataclasses.replace(record, completions=done))
            return True

    @_guarded
    def pin_statuses(self, *, state: str = "", after: str = "", limit: int = 1000) -> list[PinRecord]:
        """Pin statuses in CID order after `after`, only those in `state` when given."""
        if state and state not in PIN_STATES:
            raise ValueError(f"unknown pin state {state!r}; one of {', '.join(PIN_STATES)}")
        found: list[PinRecord] = []
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs.pin_status)
            start = after.encode("utf-8") + b"\x00" if after else b""
            if not cursor.set_range(start):
                return found
            for cid, raw in cursor.iternext():
                record = pins.decode_record(bytes(cid).decode("utf-8"), raw)
                if not state or record.state == state:
                    found.append(record)
                    if len(found) >= limit:
                        break
        return found

    @_guarded
    def pin_job(self, cid: str) -> PinJob | None:
        """The outbox job of `cid`, or None."""
        with self._env.begin() as txn:
            return pins.load_job(txn, self._dbs, cid)

    @_guarded
    def pin_outbox_depth(self) -> int:
        """Jobs queued or in flight."""
        with self._env.begin() as txn:
            return int(txn.stat(self._dbs.pin_jobs)["entries"])

    @_guarded
    def pin_outbox_oldest(self, limit: int = 100_000) -> float | None:
        """When the oldest job queued or in flight was created (Unix time), or None for an empty outbox. Reads at
        most `limit` jobs (a metrics scrape must stay cheap; a backlog that large is alarming either way)."""
        oldest: float | None = None
        with self._env.begin() as txn:
            for index, (cid, raw) in enumerate(txn.cursor(db=self._dbs.pin_jobs).iternext()):
                if index >= limit:
                    break
                job = pins.decode_job(bytes(cid).decode("utf-8"), bytes(raw))
                if oldest is None or job.created < oldest:
                    oldest = job.created
        return oldest

    @_guarded
    def pin_state_counts(self) -> dict[str, int]:
        """How many CIDs are in each pin state (a full scan: for the admin API, not per request)."""
        counts = dict.fromkeys(PIN_STATES, 0)
        with self._env.begin() as txn:
            for cid, raw in txn.cursor(db=self._dbs.pin_status).iternext():
                state = pins.decode_record(bytes(cid).decode("utf-8"), raw).state
                counts[state] = counts.get(state, 0) + 1
        return counts

    @_guarded
    def queue_pins(self, cids: Iterable[str], *, now: float, extra: int | None = None, force: bool = True) -> int:
        """Queue pin jobs for CIDs objects reference (a batch re-pin, reconcile, the dynamic policy); `extra` sets
        the replicas added to the bucket's policy. CIDs nothing references are skipped. Returns how many were
        queued."""
        queued = 0
        with self._env.begin(write=True) as txn:
            for cid in cids:
                found = self._first_object(txn, cid)
                if found is None:
                    continue
                bucket, key = found
                pins.enqueue(
                    txn, self._dbs, cid, name=f"{bucket}/{key}", bucket=bucket, now=now, outbox=True, force=force
                )
                if extra is not None:
                    job = pins.load_job(txn, self._dbs, cid)
                    if job is not None:
                        pins.put_job(txn, self._dbs, dataclasses.replace(job, extra=extra))
                queued += 1
        return queued

    @_guarded
    def referenced_cids(self, *, after: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        """(cid, bucket, key) of CIDs after `after` that an object or version references (parts of uploads in
        progress are not counted), in CID order; bucket/key name one referencing object."""
        found: list[tuple[str, str, str]] = []
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs.cid_refs)
            start = after.encode("utf-8") + b"\x00" if after else b""
            if not cursor.set_range(start):
                return found
            while len(found) < limit:
                cid = bytes(cursor.key()).decode("utf-8")
                named = self._first_object(txn, cid)
                if named is not None:
                    found.append((cid, named[0], named[1]))
                if not cursor.next_nodup():
                    break
        return found

    def _first_object(self, txn: Any, cid: str) -> tuple[str, str] | None:
        """(bucket, key) of an object referencing `cid`, else of a noncurrent version of one (read from its
        version row: the pin status may name a key that no longer references the CID); None if only parts, or
        nothing, do."""
        cursor = txn.cursor(db=self._dbs.cid_refs)
        if not cursor.set_key(cid.encode("utf-8")):
            return None
        version_keys: list[bytes] = []
        for raw_ref in cursor.iternext_dup():
            ref = bytes(raw_ref)
            if ref.startswith(keys.PART_REF_MARK):
                continue
            if ref.startswith(keys.VERSION_REF_MARK):
                version_keys.append(ref[len(keys.VERSION_REF_MARK) :])
                continue
            if ref.startswith(keys.LONG_REF_MARK):
                oid = txn.get(ref[1:], db=self._dbs.long_names)
                if oid is None:
                    continue
                return keys.split_object_id(bytes(oid))
            return keys.split_object_id(ref)
        for vkey in version_keys:
            raw = txn.get(vkey, db=self._dbs.versions)
            if raw is not None:  # a reference left behind by its version row names nothing
                meta = codec.decode_version(raw)
                return meta.bucket, meta.key
        return None

    # Access statistics (the dynamic replication policy)

    @_guarded
    def record_access(self, counts: Mapping[str, int], *, now: float, half_life: float) -> None:
        """Add `counts` to each CID's exponentially decayed access score (one write for a batch)."""
        with self._env.begin(write=True) as txn:
            for cid, count in counts.items():
                old = pins.read_access(txn, self._dbs, cid)
                score = float(count)
                if old is not None:
                    score += old[0] * math.pow(0.5, max(0.0, now - old[1]) / half_life)
                pins.write_access(txn, self._dbs, cid, score, now)

    @_guarded
    def access_scores(self, *, now: float, half_life: float, limit: int = 100_000) -> dict[str, float]:
        """Every tracked CID's score decayed to `now`; scores that decayed to nothing are pruned."""
        scores: dict[str, float] = {}
        gone: list[bytes] = []
        with self._env.begin(write=True) as txn:
            for raw_cid, _ in txn.cursor(db=self._dbs.access_stats).iternext():
                cid = bytes(raw_cid).decode("utf-8")
                found = pins.read_access(txn, self._dbs, cid)
                if found is None:
                    gone.append(bytes(raw_cid))
                    continue
                score = found[0] * math.pow(0.5, max(0.0, now - found[1]) / half_life)
                if score < _ACCESS_PRUNE:
                    gone.append(bytes(raw_cid))
                elif len(scores) < limit:
                    scores[cid] = score
            for raw_cid in gone:
                txn.delete(raw_cid, db=self._dbs.access_stats)
        return scores
