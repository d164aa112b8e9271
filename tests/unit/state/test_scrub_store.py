"""Scrub's side of the store: the three walk phases in key order with positions, bucket/prefix scope, long ids, the
run document and the history (newest first, only the last `keep`)."""

from __future__ import annotations

from appliance.model import PartMeta, UploadMeta
from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta


def _walk(store: LmdbMetadataStore, phase: str, limit: int = 2, **scope: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    after = b""
    while True:
        page = store.scrub_items(phase, after, limit=limit, **scope)
        if not page:
            return out
        out += [(item.key, item.cid) for item in page]
        after = page[-1].position


def test_phases_walk_in_order_and_resume_after_a_position(store: LmdbMetadataStore) -> None:
    store.create_bucket(make_bucket("other"))
    long_key = "L" * 600  # stored in a long-id group
    for key in ("a", "b/1", "b/2", long_key, "c"):
        store.put_object(make_meta(key, f"bafy-{key[:3]}"), unpin_grace=GRACE, now=1.0)
    store.put_object(make_meta("z", "bafy-other", bucket="other"), unpin_grace=GRACE, now=1.0)
    assert [k for k, _ in _walk(store, "objects")] == [long_key, "a", "b/1", "b/2", "c", "z"]
    assert [k for k, _ in _walk(store, "objects", bucket=BUCKET, prefix="b/")] == ["b/1", "b/2"]
    assert [k for k, _ in _walk(store, "objects", bucket="other")] == ["z"]
    assert store.scrub_count() == 6 and store.scrub_count(bucket=BUCKET, prefix="b/") == 2

    store.put_bucket_config(BUCKET, "versioning", "Enabled")
    store.put_object(make_meta("b/1", "bafy-new"), unpin_grace=GRACE, now=2.0)
    store.delete_object(BUCKET, "c", unpin_grace=GRACE, now=3.0)  # a delete marker: not walked
    assert _walk(store, "versions") == [("b/1", "bafy-b/1"), ("c", "bafy-c")]
    assert _walk(store, "versions", bucket=BUCKET, prefix="c") == [("c", "bafy-c")]

    store.create_upload(UploadMeta("u1", BUCKET, "big", 1.0))
    for number in (1, 2):
        store.put_part("u1", PartMeta(number, f"bafy-p{number}", 5, "0" * 32, 1.0), unpin_grace=GRACE, now=1.0)
    parts = store.scrub_items("parts", b"", limit=10)
    assert [(p.key, p.part_number, p.cid) for p in parts] == [("big", 1, "bafy-p1"), ("big", 2, "bafy-p2")]
    assert store.scrub_items("parts", parts[0].position) == parts[1:]
    assert store.scrub_items("parts", b"", bucket="other") == []


def test_run_document_and_history(store: LmdbMetadataStore) -> None:
    assert store.scrub_state() is None and store.scrub_history() == []
    store.save_scrub_state({"id": "r0", "state": "running"})
    assert store.scrub_state() == {"id": "r0", "state": "running"}
    for i in range(5):
        store.finish_scrub({"id": f"r{i}", "state": "done"}, {"id": f"r{i}", "finished": 100.0 + i}, keep=3)
    assert [h["id"] for h in store.scrub_history()] == ["r4", "r3", "r2"]
    assert [h["id"] for h in store.scrub_history(limit=1)] == ["r4"]
    assert store.scrub_state() == {"id": "r4", "state": "done"}
