"""Property: any sequence of puts, deletes and listings agrees with a sorted-dict model of the bucket."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.state import LmdbMetadataStore
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta, model_list, page_tuple

# Few characters so keys collide, share prefixes and contain delimiters; a long head exercises the
# grouped storage of ids beyond LMDB's key limit.
_short = st.text(alphabet="ab/é+ ", min_size=0, max_size=5)
_LONG = "L" * 520
keys_ = st.one_of(_short.filter(bool), st.builds(lambda s: _LONG + s, _short))
prefixes = st.one_of(_short, st.builds(lambda s: _LONG + s, _short))
cids = st.sampled_from(["c1", "c2", "c3", "c4"])

put_op = st.tuples(st.just("put"), keys_, cids)
delete_op = st.tuples(st.just("delete"), keys_)
list_op = st.tuples(
    st.just("list"),
    prefixes,
    st.sampled_from(["", "/", "//", "b", "é"]),
    st.one_of(st.just(""), keys_, prefixes),
    st.integers(min_value=0, max_value=6),
)
operations = st.lists(st.one_of(put_op, put_op, delete_op, list_op), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_store_matches_a_sorted_dict(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = LmdbMetadataStore(Path(tmp) / "meta", map_size=1 << 26)
        try:
            store.create_bucket(make_bucket())
            model: dict[str, str] = {}
            ever: set[str] = set()
            for op in ops:
                if op[0] == "put":
                    _, key, cid = op
                    assert isinstance(key, str) and isinstance(cid, str)
                    outcome = store.put_object(make_meta(key, cid=cid), unpin_grace=GRACE, now=0.0)
                    assert (outcome.previous.cid if outcome.previous else None) == model.get(key)
                    assert not outcome.repin_needed  # nothing was ever in flight
                    model[key] = cid
                    ever.add(cid)
                elif op[0] == "delete":
                    _, key = op
                    assert isinstance(key, str)
                    removed = store.delete_object(BUCKET, key, unpin_grace=GRACE, now=0.0)
                    assert (removed.cid if removed else None) == model.pop(key, None)
                else:
                    _, prefix, delimiter, start_after, max_keys = op
                    assert isinstance(prefix, str) and isinstance(delimiter, str)
                    assert isinstance(start_after, str) and isinstance(max_keys, int)
                    args = {"prefix": prefix, "delimiter": delimiter, "start_after": start_after}
                    got = page_tuple(store.list_objects(BUCKET, max_keys=max_keys, **args))
                    assert got == model_list(list(model), max_keys=max_keys, **args)
            page = store.list_objects(BUCKET, max_keys=10_000)
            assert {o.key: o.cid for o in page.objects} == model
            counts = Counter(model.values())
            for cid in ["c1", "c2", "c3", "c4"]:
                assert store.cid_refcount(cid) == counts[cid]
                assert sorted(store.objects_by_cid(cid)) == sorted((BUCKET, k) for k, v in model.items() if v == cid)
            unreferenced = {cid for cid in ever if counts[cid] == 0}
            assert store.unpin_queue_depth() == len(unreferenced)
            assert set(store.claim_due_unpins(GRACE, 10)) == unreferenced
        finally:
            store.close()
