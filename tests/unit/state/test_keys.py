"""The key layout: ordered time keys, prefix successors, and long ids that keep their sort order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appliance.state import keys

finite = st.floats(allow_nan=False, allow_infinity=True)


@given(a=finite, b=finite)
def test_packed_times_sort_like_numbers(a: float, b: float) -> None:
    if a < b:
        assert keys.pack_time(a) < keys.pack_time(b)
    elif a == b and str(a) == str(b):  # -0.0 and 0.0 may pack differently, both in the right place
        assert keys.pack_time(a) == keys.pack_time(b)
    assert keys.unpack_time(keys.pack_time(a)) == a


def test_due_keys_split_back() -> None:
    assert keys.split_due_key(keys.due_key(-12.5, "bafyx")) == (-12.5, "bafyx")


@given(prefix=st.binary(max_size=8), rest=st.binary(max_size=8), other=st.binary(max_size=10))
def test_prefix_successor_bounds_the_prefix(prefix: bytes, rest: bytes, other: bytes) -> None:
    successor = keys.prefix_successor(prefix)
    if successor is None:
        assert prefix.strip(b"\xff") == b""
        return
    assert prefix + rest < successor
    if other >= successor:
        assert not other.startswith(prefix)
    if other > prefix and not other.startswith(prefix):
        assert other >= successor


ids = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from([b"b\x00", b"b\x00" + b"k" * 505, b"b\x00" + b"k" * 508, b"b\x00" + b"k" * 600]),
    st.binary(max_size=600),
)


@given(a=ids, b=ids)
def test_storage_keys_preserve_id_order(a: bytes, b: bytes) -> None:
    sa, sb = keys.storage_key(a), keys.storage_key(b)
    assert len(sa) <= 511 and len(sb) <= 511
    if a < b:
        assert sa <= sb  # ids in one group share a storage key; otherwise the order is kept
    if sa == sb:
        assert keys.is_group_key(sa) or a == b


def test_ref_values_fit_lmdb() -> None:
    short = b"b\x00" + b"k" * 509
    assert keys.ref_value(short) == short
    long_id = b"b\x00" + b"k" * 1024
    ref = keys.ref_value(long_id)
    assert ref.startswith(keys.LONG_REF_MARK) and len(ref) == 33
    assert keys.split_object_id(long_id) == ("b", "k" * 1024)
