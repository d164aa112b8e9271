"""Range parsing and conditional-request precedence (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.api.s3.conditions import check_conditions, parse_range
from appliance.errors import InvalidRange, NotModified, PreconditionFailed

MOD = 1_700_000_000.5  # last modified (fractional: HTTP dates are whole seconds)
BEFORE = "Tue, 14 Nov 2023 22:13:19 GMT"  # MOD - 1 s
AT = "Tue, 14 Nov 2023 22:13:20 GMT"  # floor(MOD)
AFTER = "Tue, 14 Nov 2023 22:13:21 GMT"
NOW = MOD + 3600


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=2-100", 10, (2, 9)),
        ("bytes=7-", 10, (7, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=5-2", 10, None),  # last < first: ignored
        ("bytes=0-1,3-4", 10, None),  # several ranges: whole object
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
        ("bytes = 1 - 2", 10, (1, 2)),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-", 0)]
)
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(InvalidRange) as exc:
        parse_range(header, size)
    assert exc.value.object_size == size


@given(size=st.integers(0, 10**12), first=st.integers(0, 10**13), last=st.integers(0, 10**13))
def test_range_is_inside_object(size: int, first: int, last: int) -> None:
    try:
        span = parse_range(f"bytes={first}-{last}", size)
    except InvalidRange:
        assert first >= size
        return
    if span is not None:
        assert 0 <= span[0] <= span[1] < size


def _check(**headers: str) -> None:
    check_conditions({k.replace("_", "-"): v for k, v in headers.items()}, etag="abc", last_modified=MOD, now=NOW)


def test_no_conditions() -> None:
    _check()


@pytest.mark.parametrize("value", ['"abc"', "abc", '"x", "abc"', "*", 'W/"abc"'])
def test_if_match_passes(value: str) -> None:
    _check(if_match=value)


def test_if_match_fails() -> None:
    with pytest.raises(PreconditionFailed):
        _check(if_match='"other"')


def test_if_match_true_overrides_unmodified_since_false() -> None:
    _check(if_match='"abc"', if_unmodified_since=BEFORE)


def test_if_unmodified_since() -> None:
    _check(if_unmodified_since=AT)
    _check(if_unmodified_since=AFTER)
    with pytest.raises(PreconditionFailed):
        _check(if_unmodified_since=BEFORE)


def test_if_none_match() -> None:
    with pytest.raises(NotModified) as exc:
        _check(if_none_match='"abc"')
    assert exc.value.etag == "abc"
    _check(if_none_match='"other"')


def test_if_none_match_false_ignores_modified_since() -> None:
    # If-None-Match does not match (object differs) → 200 even though If-Modified-Since says not modified.
    _check(if_none_match='"other"', if_modified_since=AFTER)


def test_if_modified_since() -> None:
    _check(if_modified_since=BEFORE)
    with pytest.raises(NotModified):
        _check(if_modified_since=AT)
    with pytest.raises(NotModified):
        _check(if_modified_since=AFTER)


def test_if_modified_since_in_future_is_ignored() -> None:
    _check(if_modified_since="Fri, 01 Jan 2100 00:00:00 GMT")


def test_if_match_checked_before_if_none_match() -> None:
    with pytest.raises(PreconditionFailed):
        _check(if_match='"other"', if_none_match='"abc"')


@pytest.mark.parametrize("value", ["yesterday", "", "Mon, 99 Foo 2020", "2023-11-14T22:13:20Z"])
def test_unparseable_dates_are_ignored(value: str) -> None:
    _check(if_modified_since=value)
    _check(if_unmodified_since=value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=-1", None), ("bytes=-9999999999999999999", None), ("bytes=0-", "416"), ("bytes=-0", "416")],
)
def test_ranges_of_an_empty_object(header: str, expected: str | None) -> None:
    if expected == "416":
        with pytest.raises(InvalidRange):
            parse_range(header, 0)
    else:
        assert parse_range(header, 0) is None  # a tail read of an empty object is the whole (empty) object
