"""Multipart upload rows: parts, their CID references, complete and abort in one transaction each."""

from __future__ import annotations

import pytest

from appliance.errors import KeyTooLongError, NoSuchBucket, NoSuchUpload
from appliance.model import ObjectMeta, PartMeta, UploadMeta
from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_meta


def upload(upload_id: str = "u1", key: str = "k", initiated: float = 10.0) -> UploadMeta:
    return UploadMeta(upload_id=upload_id, bucket=BUCKET, key=key, initiated=initiated, user_meta=(("a", "b"),))


def part(number: int, cid: str, size: int = 10) -> PartMeta:
    return PartMeta(number, cid, size, f"{number:032x}", 20.0, (("crc32", "AAAAAA=="),))


def test_upload_round_trip_and_listing(store: LmdbMetadataStore) -> None:
    store.create_upload(upload("u1", "x"))
    store.create_upload(upload("u2", "a"))
    assert store.get_upload("u1") == upload("u1", "x")
    assert store.get_upload("missing") is None
    assert store.get_upload("bad id \u00e9") is None
    assert sorted(u.upload_id for u in store.list_uploads(BUCKET)) == ["u1", "u2"]
    with pytest.raises(NoSuchBucket):
        store.create_upload(UploadMeta("u3", "nope", "k", 0.0))
    with pytest.raises(NoSuchBucket):
        store.list_uploads("nope")
    with pytest.raises(KeyTooLongError):
        store.create_upload(UploadMeta("u4", BUCKET, "k" * 1025, 0.0))
    assert [u.upload_id for u in store.uploads_initiated_before(11.0)] == ["u1", "u2"]
    assert store.uploads_initiated_before(5.0) == []


def test_parts_are_referenced_and_replaced(store: LmdbMetadataStore) -> None:
    store.create_upload(upload())
    assert store.put_part("u1", part(2, "cid-b"), unpin_grace=GRACE, now=0.0) is False
    store.put_part("u1", part(1, "cid-a"), unpin_grace=GRACE, now=0.0)
    assert [p.part_number for p in store.list_parts("u1")] == [1, 2]
    assert store.list_parts("u1", after=1) == [part(2, "cid-b")]
    assert store.list_parts("u1", limit=1) == [part(1, "cid-a")]
    assert store.cid_refcount("cid-a") == 1
    assert store.objects_by_cid("cid-a") == []
    store.put_part("u1", part(1, "cid-c"), unpin_grace=GRACE, now=0.0)  # replaces part 1
    assert store.cid_refcount("cid-a") == 0
    assert store.unpin_queue_depth() == 1
    with pytest.raises(NoSuchUpload):
        store.put_part("nope", part(1, "cid-x"), unpin_grace=GRACE, now=0.0)
    with pytest.raises(NoSuchUpload):
        store.list_parts("nope")


def test_complete_commits_object_and_releases_parts(store: LmdbMetadataStore) -> None:
    store.put_object(make_meta("k", cid="old"), unpin_grace=GRACE, now=0.0)
    store.create_upload(upload())
    store.put_part("u1", part(1, "p1"), unpin_grace=GRACE, now=0.0)
    store.put_part("u1", part(2, "p2"), unpin_grace=GRACE, now=0.0)
    meta = ObjectMeta(BUCKET, "k", "root", 20, "abc-2", 30.0, parts=(10, 10))
    outcome = store.complete_upload("u1", meta, unpin_grace=GRACE, now=0.0)
    assert outcome.previous is not None and outcome.previous.cid == "old"
    assert store.get_object(BUCKET, "k") == meta
    assert store.get_upload("u1") is None
    assert [store.cid_refcount(c) for c in ("root", "p1", "p2", "old")] == [1, 0, 0, 0]
    assert store.unpin_queue_depth() == 3
    with pytest.raises(NoSuchUpload):
        store.complete_upload("u1", meta, unpin_grace=GRACE, now=0.0)


def test_complete_of_a_single_part_keeps_its_cid(store: LmdbMetadataStore) -> None:
    store.create_upload(upload())
    store.put_part("u1", part(1, "only"), unpin_grace=GRACE, now=0.0)
    store.complete_upload("u1", ObjectMeta(BUCKET, "k", "only", 10, "e-1", 1.0), unpin_grace=GRACE, now=0.0)
    assert store.cid_refcount("only") == 1
    assert store.unpin_queue_depth() == 0


def test_complete_checks_bucket_and_key(store: LmdbMetadataStore) -> None:
    store.create_upload(upload())
    with pytest.raises(NoSuchUpload):
        store.complete_upload("u1", ObjectMeta(BUCKET, "other", "r", 1, "e", 1.0), unpin_grace=GRACE, now=0.0)
    assert store.get_upload("u1") is not None


def test_abort_releases_parts(store: LmdbMetadataStore) -> None:
    store.create_upload(upload())
    store.put_part("u1", part(1, "p1"), unpin_grace=GRACE, now=0.0)
    store.put_object(make_meta("shared", cid="p1"), unpin_grace=GRACE, now=0.0)  # same bytes as an object
    assert store.abort_upload("u1", unpin_grace=GRACE, now=0.0) == upload()
    assert store.cid_refcount("p1") == 1  # the object still holds it: no unpin
    assert store.unpin_queue_depth() == 0
    assert store.list_uploads(BUCKET) == []
    with pytest.raises(NoSuchUpload):
        store.abort_upload("u1", unpin_grace=GRACE, now=0.0)


def test_object_rows_without_parts_read_back(store: LmdbMetadataStore) -> None:
    plain = make_meta("plain")
    store.put_object(plain, unpin_grace=GRACE, now=0.0)
    assert store.get_object(BUCKET, "plain") == plain
    assert plain.parts == ()
