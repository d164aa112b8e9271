"""list_objects: S3 semantics of prefix, delimiter, start_after, max_keys and truncation."""

from __future__ import annotations

import time

import pytest

from appliance.state import LmdbMetadataStore, codec, keys
from tests.unit.state.support import BUCKET, GRACE, make_bucket, make_meta, model_list, page_tuple

KEYS = [
    "a",
    "a/",
    "a/b",
    "a/b/c",
    "a//d",
    "a//",
    "b c",
    "b+c",
    "b%2Bc",
    "photos/2024/feb.jpg",
    "photos/2024/jan.jpg",
    "photos/2025/x",
    "photos/index.html",
    "zeta",
    "é",
    "e\u0301",
    "日本/語/x",
    "日本/語",
    "\U0001f600/smile",
    "trailing/",
    "x" * 1024,
    "x" * 600 + "/a",
    "x" * 600 + "/b/c",
    "x" * 509 + "/" + "y" * 300,
    "x" * 509 + "0",
]


@pytest.fixture
def filled(store: LmdbMetadataStore) -> LmdbMetadataStore:
    store.create_bucket(make_bucket("bks"))  # its keys must never leak into bkt's listing
    for key in KEYS:
        store.put_object(make_meta(key), unpin_grace=GRACE, now=0.0)
        store.put_object(make_meta(key, bucket="bks"), unpin_grace=GRACE, now=0.0)
    return store


def test_full_listing_is_in_utf8_byte_order(filled: LmdbMetadataStore) -> None:
    page = filled.list_objects(BUCKET)
    assert [o.key for o in page.objects] == sorted(KEYS, key=str.encode)
    assert page.common_prefixes == ()
    assert (page.is_truncated, page.next_marker) == (False, None)
    assert all(o.bucket == BUCKET for o in page.objects)


CASES = [
    {},
    {"prefix": "a"},
    {"prefix": "a/"},
    {"delimiter": "/"},
    {"prefix": "a/", "delimiter": "/"},
    {"prefix": "a//", "delimiter": "/"},
    {"delimiter": "//"},
    {"prefix": "photos/", "delimiter": "/"},
    {"prefix": "photos/", "delimiter": "/", "start_after": "photos/2024/"},
    {"prefix": "photos/", "delimiter": "/", "start_after": "photos/2024/feb.jpg"},
    {"prefix": "photos/", "delimiter": "/", "start_after": "photos/2024"},
    {"delimiter": "/", "start_after": "photos/"},
    {"delimiter": "/", "start_after": "a"},
    {"start_after": "b c"},
    {"start_after": "zzzz"},
    {"start_after": "\U0010ffff"},
    {"prefix": "photos", "start_after": "a"},
    {"prefix": "a", "start_after": "photos"},
    {"prefix": "nothing"},
    {"prefix": "日本/", "delimiter": "/"},
    {"delimiter": "語"},
    {"delimiter": "+"},
    {"delimiter": " "},
    {"prefix": "x" * 509, "delimiter": "/"},
    {"prefix": "x" * 600, "delimiter": "/"},
    {"prefix": "x" * 600 + "/", "delimiter": "/"},
    {"delimiter": "/", "start_after": "x" * 600 + "/a"},
    {"start_after": "x" * 600},
    {"start_after": "x" * 1024},
    {"prefix": "x" * 1024},
    {"delimiter": "y"},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c)[:60])
@pytest.mark.parametrize("max_keys", [0, 1, 2, 3, 1000])
def test_listing_matches_the_reference(filled: LmdbMetadataStore, case: dict[str, str], max_keys: int) -> None:
    got = page_tuple(filled.list_objects(BUCKET, max_keys=max_keys, **case))
    assert got == model_list(KEYS, max_keys=max_keys, **case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c)[:60])
@pytest.mark.parametrize("max_keys", [1, 2, 5])
def test_paging_with_next_marker_covers_everything_once(
    filled: LmdbMetadataStore, case: dict[str, str], max_keys: int
) -> None:
    whole = filled.list_objects(BUCKET, max_keys=100_000, **case)
    names: list[str] = []
    prefixes: list[str] = []
    start_after = case.get("start_after", "")
    for _ in range(100):
        args = {**case, "start_after": start_after}
        page = filled.list_objects(BUCKET, max_keys=max_keys, **args)
        names += [o.key for o in page.objects]
        prefixes += page.common_prefixes
        assert len(page.objects) + len(page.common_prefixes) <= max_keys
        if not page.is_truncated:
            break
        assert page.next_marker is not None
        start_after = page.next_marker
    assert names == [o.key for o in whole.objects]
    assert prefixes == list(whole.common_prefixes)


def test_common_prefix_counts_once_and_marks_the_page(filled: LmdbMetadataStore) -> None:
    page = filled.list_objects(BUCKET, prefix="photos/", delimiter="/", max_keys=1)
    assert page.common_prefixes == ("photos/2024/",)
    assert (page.is_truncated, page.next_marker) == (True, "photos/2024/")
    page = filled.list_objects(BUCKET, prefix="photos/", delimiter="/", max_keys=1, start_after="photos/2024/")
    assert page.common_prefixes == ("photos/2025/",)
    page = filled.list_objects(BUCKET, prefix="photos/", delimiter="/", max_keys=2, start_after="photos/2025/")
    assert [o.key for o in page.objects] == ["photos/index.html"]
    assert (page.common_prefixes, page.is_truncated, page.next_marker) == ((), False, None)


def test_truncated_only_when_more_remain(store: LmdbMetadataStore) -> None:
    for key in ["a", "b"]:
        store.put_object(make_meta(key), unpin_grace=GRACE, now=0.0)
    assert store.list_objects(BUCKET, max_keys=2).is_truncated is False
    page = store.list_objects(BUCKET, max_keys=1)
    assert (page.is_truncated, page.next_marker) == (True, "a")
    empty = store.list_objects(BUCKET, max_keys=0)
    assert (empty.objects, empty.common_prefixes, empty.is_truncated, empty.next_marker) == ((), (), False, None)


def test_empty_bucket(store: LmdbMetadataStore) -> None:
    page = store.list_objects(BUCKET, delimiter="/")
    assert (page.objects, page.common_prefixes, page.is_truncated) == ((), (), False)


def test_listing_returns_full_rows(filled: LmdbMetadataStore) -> None:
    meta = make_meta("photos/2024/feb.jpg", cid="other", user_meta=(("k", "v"),))
    filled.put_object(meta, unpin_grace=GRACE, now=0.0)
    long_meta = make_meta("x" * 1024, cid="other2", headers=(("cache-control", "no-store"),))
    filled.put_object(long_meta, unpin_grace=GRACE, now=0.0)
    objects = {o.key: o for o in filled.list_objects(BUCKET).objects}
    assert objects[meta.key] == meta
    assert objects[long_meta.key] == long_meta


def test_delimiter_skips_large_subtrees_quickly(store: LmdbMetadataStore) -> None:
    # 100,000 keys in 100 directories, written in bulk through the store's own row layout.
    with store._env.begin(write=True) as txn:
        for i in range(100_000):
            key = f"dir{i % 100:03d}/file{i:06d}.txt"
            codec.store_object(txn, store._dbs.objects, keys.object_id(BUCKET, key), make_meta(key, cid=f"c{i}"))
    timings = {}
    for label, args in {
        "page": {},
        "page after marker": {"start_after": "dir050/file050050.txt"},
        "delimiter (100 prefixes)": {"delimiter": "/"},
        "prefix + delimiter": {"prefix": "dir042/", "delimiter": "/"},
    }.items():
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            page = store.list_objects(BUCKET, **args)  # type: ignore[arg-type]
            best = min(best, time.perf_counter() - started)
        timings[label] = f"{best * 1000:.2f} ms"
    assert len(store.list_objects(BUCKET, delimiter="/").common_prefixes) == 100
    assert len(page.objects) == 1000
    print("list_objects timings on 100,000 keys:", timings)
