"""Reports of damaged blocks (schema 4): written by verified reads and scrub, read by scrub, the admin API and
the metrics. One row per block CID; a repeat report bumps its count and last-seen time."""

from __future__ import annotations

import json
from typing import Any

from appliance.errors import BackendError
from appliance.model import DamageReport
from appliance.state.store_base import StoreBase
from appliance.state.store_base import guarded as _guarded

__all__ = ["DamageMethods"]

_MAX_REASON = 200
_TOTAL = b"damage_total:"  # meta-db key prefix of the per-source report counters


def _encode(report: DamageReport) -> bytes:
    return json.dumps(
        {
            "root": report.root,
            "reason": report.reason[:_MAX_REASON],
            "first": report.first_seen,
            "last": report.last_seen,
            "count": report.count,
            "source": report.source,
        },
        separators=(",", ":"),
    ).encode("utf-8")


def _decode(block: str, raw: bytes) -> DamageReport:
    try:
        data: Any = json.loads(raw)
        return DamageReport(
            block=block,
            root=str(data["root"]),
            reason=str(data["reason"]),
            first_seen=float(data["first"]),
            last_seen=float(data["last"]),
            count=int(data["count"]),
            source=str(data["source"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"unreadable damage report for block {block[:80]}") from exc


class DamageMethods(StoreBase):
    """The damaged-block methods of LmdbMetadataStore."""

    @_guarded
    def report_damage(self, report: DamageReport) -> DamageReport:
        """Record `report`, merged with an earlier one for the same block (count and times); the stored report."""
        key = report.block.encode("ascii")
        with self._env.begin(write=True) as txn:
            old = txn.get(key, db=self._dbs.damaged_blocks)
            if old is not None:
                earlier = _decode(report.block, bytes(old))
                report = DamageReport(
                    block=report.block,
                    root=report.root,
                    reason=report.reason,
                    first_seen=min(earlier.first_seen, report.first_seen),
                    last_seen=max(earlier.last_seen, report.last_seen),
                    count=earlier.count + report.count,
                    source=report.source,
                )
            txn.put(key, _encode(report), db=self._dbs.damaged_blocks)
            total_key = _TOTAL + report.source.encode("ascii", "replace")[:16]
            total = txn.get(total_key, db=self._dbs.meta)
            txn.put(total_key, str(int(bytes(total)) + 1 if total else 1).encode("ascii"), db=self._dbs.meta)
        return report

    @_guarded
    def damage_totals(self) -> dict[str, int]:
        """How many damage reports each source ("read", "scrub") made since the store was created (a counter
        that survives clears, for the metrics)."""
        out: dict[str, int] = {}
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._dbs.meta)
            if cursor.set_range(_TOTAL):
                for key, value in cursor:
                    if not bytes(key).startswith(_TOTAL):
                        break
                    out[bytes(key)[len(_TOTAL) :].decode("ascii", "replace")] = int(bytes(value))
        return out

    @_guarded
    def damage_reports(self, limit: int = 1000) -> list[DamageReport]:
        """Up to `limit` reports in block CID order."""
        out: list[DamageReport] = []
        with self._env.begin() as txn:
            for key, raw in txn.cursor(db=self._dbs.damaged_blocks).iternext():
                if len(out) >= limit:
                    break
                out.append(_decode(bytes(key).decode("ascii"), bytes(raw)))
        return out

    @_guarded
    def damage_count(self) -> int:
        """How many blocks have an open damage report."""
        with self._env.begin() as txn:
            return int(txn.stat(self._dbs.damaged_blocks)["entries"])

    @_guarded
    def clear_damage(self, block: str) -> bool:
        """Drop the report of `block` (repaired or dismissed); whether there was one."""
        with self._env.begin(write=True) as txn:
            return bool(txn.delete(block.encode("ascii"), db=self._dbs.damaged_blocks))
