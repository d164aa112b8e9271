"""Helpers for the metadata store tests: object rows, a reference listing, and subprocess workers."""

from __future__ import annotations

from pathlib import Path

from appliance.model import BucketMeta, ListPage, ObjectMeta
from appliance.state import LmdbMetadataStore

__all__ = ["BUCKET", "GRACE", "make_bucket", "make_meta", "model_list", "page_tuple", "put_many_worker"]

BUCKET = "bkt"
GRACE = 60.0


def make_bucket(name: str = BUCKET) -> BucketMeta:
    return BucketMeta(name=name, created=1700000000.5, region="us-east-1", owner="owner-1")


def make_meta(key: str, cid: str = "bafy-a", *, bucket: str = BUCKET, size: int = 3, **extra: object) -> ObjectMeta:
    return ObjectMeta(
        bucket=bucket,
        key=key,
        cid=cid,
        size=size,
        etag="900150983cd24fb0d6963f7d28e17f72",
        last_modified=1700000000.25,
        **extra,  # type: ignore[arg-type]
    )


def model_list(
    keys: list[str], *, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
) -> tuple[list[str], list[str], bool, str | None]:
    """The S3 answer computed naively from every key: (keys, common prefixes, truncated, next marker)."""
    after = start_after.encode()
    entries: list[tuple[str, bool]] = []  # (name, is_prefix) in order
    seen: set[str] = set()
    for key in sorted(keys, key=lambda k: k.encode()):
        raw = key.encode()
        if raw <= after or not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
            if common.encode() <= after or common in seen:
                continue
            seen.add(common)
            entries.append((common, True))
        else:
            entries.append((key, False))
    page = entries[:max_keys]
    truncated = max_keys > 0 and len(entries) > max_keys  # max-keys=0 asks for nothing: not truncated
    names = [name for name, is_prefix in page if not is_prefix]
    prefixes = [name for name, is_prefix in page if is_prefix]
    return names, prefixes, truncated, (page[-1][0] if truncated and page else None)


def page_tuple(page: ListPage) -> tuple[list[str], list[str], bool, str | None]:
    return [o.key for o in page.objects], list(page.common_prefixes), page.is_truncated, page.next_marker


def put_many_worker(path: str, worker: int, count: int) -> None:
    """Open the store in this (spawned) process and put `count` keys of its own, some sharing CIDs."""
    store = LmdbMetadataStore(Path(path), map_size=1 << 28)
    try:
        for i in range(count):
            store.put_object(make_meta(f"w{worker}/k{i:04d}", cid=f"shared-{i % 10}"), unpin_grace=GRACE, now=1000.0)
        # Overwrite some with unique content, then delete a few: exercises ref moves across processes.
        for i in range(0, count, 5):
            store.put_object(make_meta(f"w{worker}/k{i:04d}", cid=f"own-{worker}-{i}"), unpin_grace=GRACE, now=1000.0)
        for i in range(0, count, 7):
            store.delete_object(BUCKET, f"w{worker}/k{i:04d}", unpin_grace=GRACE, now=1000.0)
    finally:
        store.close()
