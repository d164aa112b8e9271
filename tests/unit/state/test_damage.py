"""Damaged-block reports: merge of repeats, listing, count, clear, unreadable rows."""

from __future__ import annotations

import pytest

from appliance.errors import BackendError
from appliance.model import DamageReport
from appliance.state import LmdbMetadataStore


def _report(block: str, when: float, reason: str = "hash mismatch") -> DamageReport:
    return DamageReport(block=block, root="bafyroot", reason=reason, first_seen=when, last_seen=when)


def test_reports_merge_list_count_clear(store: LmdbMetadataStore) -> None:
    assert store.damage_count() == 0 and store.damage_reports() == []
    store.report_damage(_report("bafkb", 10.0))
    merged = store.report_damage(_report("bafkb", 20.0, "missing"))
    assert (merged.count, merged.first_seen, merged.last_seen, merged.reason) == (2, 10.0, 20.0, "missing")
    store.report_damage(_report("bafka", 5.0))
    assert [r.block for r in store.damage_reports()] == ["bafka", "bafkb"]
    assert [r.block for r in store.damage_reports(limit=1)] == ["bafka"]
    assert store.damage_count() == 2
    assert store.clear_damage("bafka") and not store.clear_damage("bafka")
    assert store.damage_count() == 1
    assert store.damage_totals() == {"read": 3}
    store.report_damage(DamageReport("bafke", "bafyroot", "missing", 1.0, 1.0, source="scrub"))
    assert store.damage_totals() == {"read": 3, "scrub": 1}


def test_long_reason_is_cut(store: LmdbMetadataStore) -> None:
    store.report_damage(_report("bafkc", 1.0, "x" * 10_000))
    assert len(store.damage_reports()[0].reason) == 200


def test_unreadable_row_is_a_backend_error(store: LmdbMetadataStore) -> None:
    with store._env.begin(write=True) as txn:
        txn.put(b"bafkd", b"{not json", db=store._dbs.damaged_blocks)
    with pytest.raises(BackendError, match="unreadable damage report"):
        store.damage_reports()
