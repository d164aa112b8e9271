"""Completed-upload records and conditional commits in the metadata store: the record is written with the object in
one transaction, survives a reopen, expires in order; a failed condition writes nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from appliance.errors import ConditionalRequestConflict, NoSuchUpload
from appliance.model import CompletedUpload, PartMeta, UploadMeta, WriteCondition
from appliance.state import LmdbMetadataStore, codec
from tests.unit.state.support import BUCKET, GRACE, make_meta

ETAG = "900150983cd24fb0d6963f7d28e17f72"


def _upload(store: LmdbMetadataStore, upload_id: str, key: str = "k") -> UploadMeta:
    upload = UploadMeta(upload_id=upload_id, bucket=BUCKET, key=key, initiated=10.0)
    store.create_upload(upload)
    store.put_part(upload_id, PartMeta(1, f"bafy-part-{upload_id}", 3, ETAG, 11.0), unpin_grace=GRACE, now=11.0)
    return upload


def _complete(store: LmdbMetadataStore, upload_id: str, now: float, **kwargs: object) -> None:
    meta = make_meta("k", f"bafy-part-{upload_id}", parts=(3,))
    store.complete_upload(
        upload_id,
        meta,
        unpin_grace=GRACE,
        now=now,
        checksum_type="COMPOSITE",
        requested=((1, ETAG),),
        **kwargs,  # type: ignore[arg-type]
    )


def test_complete_leaves_a_record_that_survives_a_reopen(store: LmdbMetadataStore, store_path: Path) -> None:
    _upload(store, "u1")
    _complete(store, "u1", 20.0)
    assert store.get_upload("u1") is None
    done = store.get_completed_upload("u1")
    assert done is not None
    assert done.parts == ((1, ETAG),) and done.checksum_type == "COMPOSITE" and done.completed == 20.0
    assert done.meta == store.get_object(BUCKET, "k")
    store.close()
    again = LmdbMetadataStore(store_path)
    try:
        assert again.get_completed_upload("u1") == done
    finally:
        again.close()


def test_records_expire_oldest_first_in_batches(store: LmdbMetadataStore) -> None:
    for index in range(5):
        _upload(store, f"u{index}", key="k")
        _complete(store, f"u{index}", 100.0 + index)
    assert store.expire_completed_uploads(102.0, limit=1) == 1
    assert store.get_completed_upload("u0") is None
    assert store.expire_completed_uploads(102.0) == 1  # u1; u2 was completed at the cutoff itself
    assert [store.get_completed_upload(f"u{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert store.expire_completed_uploads(1000.0) == 3
    assert store.expire_completed_uploads(1000.0) == 0
    assert store.get_object(BUCKET, "k") is not None  # the objects stay: only the records go


@pytest.mark.parametrize("upload_id", ["", "x" * 129, "é", "nope"])
def test_unknown_or_odd_ids_have_no_record(store: LmdbMetadataStore, upload_id: str) -> None:
    assert store.get_completed_upload(upload_id) is None


def test_failed_condition_at_complete_writes_nothing(store: LmdbMetadataStore) -> None:
    store.put_object(make_meta("k", "bafy-old"), unpin_grace=GRACE, now=1.0)
    _upload(store, "u1")
    with pytest.raises(ConditionalRequestConflict):
        _complete(store, "u1", 20.0, condition=WriteCondition(if_none_match=True))
    assert store.get_object(BUCKET, "k") == make_meta("k", "bafy-old")
    assert store.get_upload("u1") is not None
    assert store.get_completed_upload("u1") is None
    assert store.cid_refcount("bafy-part-u1") == 1  # the part keeps its reference
    _complete(store, "u1", 21.0, condition=WriteCondition(if_match=f'"{ETAG}"'))
    assert store.get_object(BUCKET, "k").cid == "bafy-part-u1"  # type: ignore[union-attr]


def test_complete_of_a_gone_upload_is_no_such_upload(store: LmdbMetadataStore) -> None:
    _upload(store, "u1")
    _complete(store, "u1", 20.0)
    with pytest.raises(NoSuchUpload):
        _complete(store, "u1", 21.0)
    done = store.get_completed_upload("u1")
    assert done is not None and done.completed == 20.0  # the retry did not overwrite the first answer


@pytest.mark.parametrize(
    ("condition", "holds_on_missing", "holds_on_match", "holds_on_other"),
    [
        (WriteCondition(if_none_match=True), True, False, False),
        (WriteCondition(if_match=f'"{ETAG}"'), False, True, False),
        (WriteCondition(if_match=ETAG), False, True, False),
        (WriteCondition(if_match=f'"x", "{ETAG}"'), False, True, False),
        (WriteCondition(if_match="*"), False, True, True),
        (WriteCondition(if_match=""), False, False, False),
    ],
)
def test_put_condition_in_the_transaction(
    store: LmdbMetadataStore,
    condition: WriteCondition,
    holds_on_missing: bool,
    holds_on_match: bool,
    holds_on_other: bool,
) -> None:
    def attempt(cid: str) -> bool:
        try:
            store.put_object(make_meta("k", cid), unpin_grace=GRACE, now=1.0, condition=condition)
        except ConditionalRequestConflict:
            return False
        return True

    assert attempt("bafy-1") == holds_on_missing
    store.put_object(make_meta("k", "bafy-2"), unpin_grace=GRACE, now=1.0)
    assert attempt("bafy-3") == holds_on_match
    if not holds_on_match:
        assert store.get_object(BUCKET, "k") == make_meta("k", "bafy-2")
        assert store.cid_refcount("bafy-3") == 0
    store.put_object(dataclasses.replace(make_meta("k", "bafy-4"), etag="0" * 32), unpin_grace=GRACE, now=1.0)
    assert attempt("bafy-5") == holds_on_other


def test_delete_marker_counts_as_no_object(store: LmdbMetadataStore) -> None:
    store.put_bucket_config(BUCKET, "versioning", "Enabled")
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=1.0)
    store.delete_object(BUCKET, "k", unpin_grace=GRACE, now=2.0)
    with pytest.raises(ConditionalRequestConflict):
        store.put_object(make_meta("k", "bafy-b"), unpin_grace=GRACE, now=3.0, condition=WriteCondition(if_match="*"))
    store.put_object(make_meta("k", "bafy-b"), unpin_grace=GRACE, now=3.0, condition=WriteCondition(if_none_match=True))
    assert store.get_object(BUCKET, "k").cid == "bafy-b"  # type: ignore[union-attr]


def test_codec_keeps_part_checksums_and_numbers() -> None:
    meta = make_meta(
        "k",
        parts=(5, 3),
        part_numbers=(2, 7),
        part_checksums=((("sha256", "AAA="),), (("crc32", "BBB="), ("sha256", "CCC="))),
        checksums=(("sha256", "DDD=-2"),),
        version_id="null",
    )
    assert codec.decode_object(BUCKET, "k", codec.encode_object(meta)) == meta
    assert meta.numbered_parts == ((2, 5), (7, 3))
    done = CompletedUpload("u", meta, "COMPOSITE", ((2, ETAG), (7, ETAG)), 5.0)
    assert codec.decode_completed("u", codec.encode_completed(done)) == done
    plain = make_meta("p", parts=(1, 2))
    assert plain.numbered_parts == ((1, 1), (2, 2))
    assert b'"pc"' not in codec.encode_object(plain) and b'"pn"' not in codec.encode_object(plain)
