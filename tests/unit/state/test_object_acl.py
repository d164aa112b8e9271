"""Object ACLs in the store: the additive row field round-trips, defaults to private, and is replaced per version."""

from __future__ import annotations

from appliance.state import LmdbMetadataStore
from appliance.state.codec import object_from_row, object_to_row
from tests.unit.state.support import BUCKET, GRACE, make_meta

ACL = '[["CanonicalUser","OWNER","FULL_CONTROL"],["Group","http://acs.amazonaws.com/groups/global/AllUsers","READ"]]'


def test_row_round_trip_and_old_rows_are_private() -> None:
    meta = make_meta("k", acl=ACL)
    assert object_from_row(BUCKET, "k", object_to_row(meta)) == meta
    plain = make_meta("k")
    row = object_to_row(plain)
    assert len(row) == 9  # no extras element: rows written before ACLs look the same
    assert object_from_row(BUCKET, "k", row).acl == ""


def test_set_object_acl(store: LmdbMetadataStore) -> None:
    store.put_object(make_meta("k"), unpin_grace=GRACE, now=0.0)
    updated = store.set_object_acl(BUCKET, "k", ACL)
    assert updated is not None and updated.acl == ACL
    got = store.get_object(BUCKET, "k")
    assert got is not None and got.acl == ACL and got.cid == "bafy-a"
    assert store.set_object_acl(BUCKET, "missing", ACL) is None
    assert store.set_object_acl(BUCKET, "k", ACL, version_id="nope") is None
