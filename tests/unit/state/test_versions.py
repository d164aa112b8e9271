"""Object versioning in the metadata store: Enabled and Suspended semantics, delete markers, promotion, refcounts."""

from __future__ import annotations

import dataclasses

from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_meta


def _enable(store: LmdbMetadataStore, status: str = "Enabled") -> None:
    store.put_bucket_config(BUCKET, "versioning", status)


T0 = 1_800_000_000.0


def _put(store: LmdbMetadataStore, key: str, cid: str, now: float) -> str:
    now += T0  # realistic clocks: the "null" version sorts by its last-modified time
    meta = dataclasses.replace(make_meta(key, cid=cid), last_modified=now)
    outcome = store.put_object(meta, unpin_grace=GRACE, now=now)
    assert outcome.current is not None
    return outcome.current.version_id


def _listing(store: LmdbMetadataStore, **kwargs: object) -> list[tuple[str, str, bool, bool]]:
    page = store.list_versions(BUCKET, **kwargs)  # type: ignore[arg-type]
    return [(m.key, m.cid, m.delete_marker, latest) for m, latest in page.versions]


def test_unversioned_bucket_keeps_plain_rows(store: LmdbMetadataStore) -> None:
    assert _put(store, "k", "c1", 1.0) == ""
    _put(store, "k", "c2", 2.0)
    assert store.cid_refcount("c1") == 0
    assert _listing(store) == [("k", "c2", False, True)]
    assert store.get_version(BUCKET, "k", "null") is not None


def test_enabled_keeps_every_version(store: LmdbMetadataStore) -> None:
    _put(store, "k", "c0", 1.0)  # before versioning: becomes the "null" version
    _enable(store)
    v1 = _put(store, "k", "c1", 2.0)
    v2 = _put(store, "k", "c2", 3.0)
    assert v1 != v2 and len(v1) == 24
    assert [store.cid_refcount(c) for c in ("c0", "c1", "c2")] == [1, 1, 1]
    assert store.get_object(BUCKET, "k").cid == "c2"  # type: ignore[union-attr]
    assert store.get_version(BUCKET, "k", v1).cid == "c1"  # type: ignore[union-attr]
    assert store.get_version(BUCKET, "k", "null").cid == "c0"  # type: ignore[union-attr]
    assert _listing(store) == [("k", "c2", False, True), ("k", "c1", False, False), ("k", "c0", False, False)]
    assert store.objects_by_cid("c1") == []  # noncurrent versions are not objects


def test_delete_marker_and_promotion(store: LmdbMetadataStore) -> None:
    _enable(store)
    v1 = _put(store, "k", "c1", 1.0)
    marker = store.delete_object(BUCKET, "k", unpin_grace=GRACE, now=T0 + 2.0)
    assert marker is not None and marker.delete_marker
    assert store.get_object(BUCKET, "k") is None
    assert store.current_is_delete_marker(BUCKET, "k")
    assert store.list_objects(BUCKET).objects == ()
    assert store.cid_refcount("c1") == 1  # the data is still there
    # Removing the marker brings the version back.
    store.delete_version(BUCKET, "k", marker.version_id, unpin_grace=GRACE, now=T0 + 3.0)
    assert store.get_object(BUCKET, "k").version_id == v1  # type: ignore[union-attr]
    assert not store.current_is_delete_marker(BUCKET, "k")
    assert store.cid_refcount("c1") == 1
    # Removing the current version for good releases its CID and promotes nothing (there is nothing older).
    removed = store.delete_version(BUCKET, "k", v1, unpin_grace=GRACE, now=T0 + 4.0)
    assert removed is not None and removed.cid == "c1"
    assert store.cid_refcount("c1") == 0
    assert store.unpin_queue_depth() == 1
    assert _listing(store) == []
    assert store.delete_version(BUCKET, "k", v1, unpin_grace=GRACE, now=T0 + 5.0) is None


def test_delete_current_promotes_the_previous(store: LmdbMetadataStore) -> None:
    _enable(store)
    v1 = _put(store, "k", "c1", 1.0)
    v2 = _put(store, "k", "c2", 2.0)
    store.delete_version(BUCKET, "k", v2, unpin_grace=GRACE, now=T0 + 3.0)
    current = store.get_object(BUCKET, "k")
    assert current is not None and current.version_id == v1 and current.cid == "c1"
    assert store.cid_refcount("c1") == 1 and store.cid_refcount("c2") == 0


def test_suspended_replaces_the_null_version(store: LmdbMetadataStore) -> None:
    _enable(store)
    v1 = _put(store, "k", "c1", 1.0)
    _enable(store, "Suspended")
    assert _put(store, "k", "n1", 2.0) == "null"
    assert _put(store, "k", "n2", 3.0) == "null"  # replaces the null version
    assert store.cid_refcount("n1") == 0
    assert _listing(store) == [("k", "n2", False, True), ("k", "c1", False, False)]
    marker = store.delete_object(BUCKET, "k", unpin_grace=GRACE, now=T0 + 4.0)
    assert marker is not None and marker.version_id == "null"
    assert store.cid_refcount("n2") == 0  # the null version was replaced by the null delete marker
    assert store.get_version(BUCKET, "k", v1).cid == "c1"  # type: ignore[union-attr]
    assert [(k, d) for k, _, d, _ in _listing(store)] == [("k", True), ("k", False)]


def test_list_versions_pages_and_prefixes(store: LmdbMetadataStore) -> None:
    _enable(store)
    for i, key in enumerate(["a/1", "a/2", "b", "c"]):
        _put(store, key, f"x{i}", float(i))
        _put(store, key, f"y{i}", float(i) + 0.5)
    page = store.list_versions(BUCKET, max_keys=3)
    assert [(m.key, latest) for m, latest in page.versions] == [("a/1", True), ("a/1", False), ("a/2", True)]
    assert page.is_truncated and page.next_key_marker == "a/2"
    rest = store.list_versions(
        BUCKET, key_marker=page.next_key_marker, version_id_marker=page.next_version_id_marker, max_keys=10
    )
    assert [m.key for m, _ in rest.versions] == ["a/2", "b", "b", "c", "c"]
    grouped = store.list_versions(BUCKET, delimiter="/")
    assert grouped.common_prefixes == ("a/",)
    assert [m.key for m, _ in grouped.versions] == ["b", "b", "c", "c"]
    assert [m.key for m, _ in store.list_versions(BUCKET, prefix="a/2").versions] == ["a/2", "a/2"]
