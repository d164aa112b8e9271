"""Scrub's side of the metadata store (schema 4): the walk over everything whose bytes scrub checks, and the durable
progress and summaries of scrub runs (the `scrub` database).

The walk has three phases in a fixed order, each in its database's key order, so a run can stop anywhere and resume
after the last item it finished: `objects` (current versions, keyed by object id), `versions` (noncurrent versions,
delete markers skipped) and `parts` (parts of multipart uploads in progress). A position is the metadata key of the
last item done; the next page starts strictly after it.
"""

from __future__ import annotations

import json
from typing import Any

from appliance.errors import BackendError
from appliance.model import ScrubItem
from appliance.state import codec, keys, uploads
from appliance.state.store_base import StoreBase
from appliance.state.store_base import guarded as _guarded

__all__ = ["SCRUB_PHASES", "ScrubMethods"]

SCRUB_PHASES = ("objects", "versions", "parts")
_RUN = b"run"
_HISTORY = b"history"
_MAX_DOC = 1 << 20  # a run document holds counters and a few samples; anything larger is a bug


def _dump(doc: dict[str, Any]) -> bytes:
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    if len(raw) > _MAX_DOC:
        raise BackendError("a scrub run document is too large to store")
    return raw


def _load(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise BackendError(f"unreadable scrub {what} in the metadata store") from exc
    if not isinstance(doc, dict):
        raise BackendError(f"unreadable scrub {what} in the metadata store")
    return doc


def _wanted(bucket: str, prefix: str) -> bytes:
    """The head every object id in scope starts with (b"" = everything)."""
    return keys.object_id(bucket, prefix) if bucket else b""


class ScrubMethods(StoreBase):
    """The scrub methods of LmdbMetadataStore."""

    @_guarded
    def scrub_items(
        self, phase: str, after: bytes, *, bucket: str = "", prefix: str = "", limit: int = 100
    ) -> list[ScrubItem]:
        """Up to `limit` items of `phase` strictly after position `after` (b"": from the start), within `bucket`
        and `prefix` when given."""
        if phase not in SCRUB_PHASES:
            raise ValueError(f"unknown scrub phase {phase!r}")
        wanted = _wanted(bucket, prefix)
        with self._env.begin() as txn:
            if phase == "objects":
                return self._object_items(txn, wanted, after, limit)
            if phase == "versions":
                return self._version_items(txn, wanted, after, limit)
            return self._part_items(txn, bucket, prefix, after, limit)

    def _object_items(self, txn: Any, wanted: bytes, after: bytes, limit: int) -> list[ScrubItem]:
        low = max(wanted, after + b"\x00") if after else wanted
        found: list[ScrubItem] = []
        for oid, row in codec.scan_objects(txn.cursor(db=self._dbs.objects), low):
            if not oid.startswith(wanted) or len(found) == limit:
                break
            bucket, key = keys.split_object_id(oid)
            meta = codec.row_object(bucket, key, row)
            if meta.delete_marker or not meta.cid:
                continue
            found.append(ScrubItem("objects", oid, bucket, key, meta.cid, meta.size, meta.version_id))
        return found

    def _version_items(self, txn: Any, wanted: bytes, after: bytes, limit: int) -> list[ScrubItem]:
        # Version keys start with the object id's first VERSION_HEAD_MAX bytes, so that head bounds the range; the
        # full id is checked on the decoded row.
        head = wanted[: keys.VERSION_HEAD_MAX]
        low = max(head, after + b"\x00") if after else head
        cursor = txn.cursor(db=self._dbs.versions)
        found: list[ScrubItem] = []
        if not cursor.set_range(low):
            return found
        for raw_key, raw in cursor.iternext():
            vkey = bytes(raw_key)
            if not vkey.startswith(head) or len(found) == limit:
                break
            meta = codec.decode_version(bytes(raw))
            if meta.delete_marker or not meta.cid:
                continue
            if not keys.object_id(meta.bucket, meta.key).startswith(wanted):
                continue
            found.append(ScrubItem("versions", vkey, meta.bucket, meta.key, meta.cid, meta.size, meta.version_id))
        return found

    def _part_items(self, txn: Any, bucket: str, prefix: str, after: bytes, limit: int) -> list[ScrubItem]:
        cursor = txn.cursor(db=self._dbs.parts)
        found: list[ScrubItem] = []
        if not cursor.set_range(after + b"\x00" if after else b""):
            return found
        owners: dict[str, tuple[str, str] | None] = {}
        for raw_key, raw in cursor.iternext():
            if len(found) == limit:
                break
            pkey = bytes(raw_key)
            upload_id = pkey[:-5].decode("ascii")
            if upload_id not in owners:
                upload = uploads.load_upload(txn, self._dbs, upload_id)
                owners[upload_id] = None if upload is None else (upload.bucket, upload.key)
            owner = owners[upload_id]
            if owner is None or (bucket and (owner[0] != bucket or not owner[1].startswith(prefix))):
                continue
            part = codec.decode_part(keys.part_number_of(pkey), bytes(raw))
            found.append(ScrubItem("parts", pkey, owner[0], owner[1], part.cid, part.size, "", part.part_number))
        return found

    @_guarded
    def scrub_count(self, *, bucket: str = "", prefix: str = "") -> int:
        """About how many items a run over `bucket`/`prefix` walks (for the ETA): exact entry counts of the three
        databases for a whole-store run, a key scan of the objects in scope otherwise (versions and parts of a
        bucket are not counted then)."""
        with self._env.begin() as txn:
            if not bucket:
                return sum(
                    int(txn.stat(db)["entries"]) for db in (self._dbs.objects, self._dbs.versions, self._dbs.parts)
                )
            wanted = _wanted(bucket, prefix)
            cursor = txn.cursor(db=self._dbs.objects)
            count = 0
            head = wanted[: keys.DIRECT_MAX]  # a long-id group's key holds only the first DIRECT_MAX bytes
            if cursor.set_range(keys.storage_key(wanted)):
                for skey in cursor.iternext(values=False):
                    if not bytes(skey).startswith(head):
                        break
                    count += 1
            return count

    @_guarded
    def scrub_state(self) -> dict[str, Any] | None:
        """The current (or last) run's document, None before the first run."""
        with self._env.begin() as txn:
            raw = txn.get(_RUN, db=self._dbs.scrub)
            return None if raw is None else _load(bytes(raw), "run")

    @_guarded
    def save_scrub_state(self, doc: dict[str, Any]) -> None:
        """Store the run's document (its progress): one small write, made after every object."""
        raw = _dump(doc)
        with self._env.begin(write=True) as txn:
            txn.put(_RUN, raw, db=self._dbs.scrub)

    @_guarded
    def finish_scrub(self, doc: dict[str, Any], summary: dict[str, Any], *, keep: int = 20) -> None:
        """Store the finished run's document and append `summary` to the history (the newest `keep` are kept),
        in one transaction."""
        raw, entry = _dump(doc), _dump(summary)
        finished = float(summary.get("finished", 0.0))
        run_id = str(summary.get("id", ""))[:64].encode("ascii", "replace")
        with self._env.begin(write=True) as txn:
            txn.put(_RUN, raw, db=self._dbs.scrub)
            txn.put(_HISTORY + keys.pack_time(finished) + run_id, entry, db=self._dbs.scrub)
            cursor = txn.cursor(db=self._dbs.scrub)
            entries: list[bytes] = []
            if cursor.set_range(_HISTORY):
                for key in cursor.iternext(values=False):
                    if not bytes(key).startswith(_HISTORY):
                        break
                    entries.append(bytes(key))
            for old in entries[: max(0, len(entries) - keep)]:
                txn.delete(old, db=self._dbs.scrub)

    @_guarded
    def scrub_history(self, limit: int = 20) -> list[dict[str, Any]]:
        """Summaries of finished runs, newest first."""
        out: list[dict[str, Any]] = []
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs.scrub)
            if not cursor.set_range(keys.prefix_successor(_HISTORY) or b""):
                if not cursor.last():
                    return out
            elif not cursor.prev():
                return out
            while len(out) < limit and bytes(cursor.key()).startswith(_HISTORY):
                out.append(_load(bytes(cursor.value()), "summary"))
                if not cursor.prev():
                    break
        return out
