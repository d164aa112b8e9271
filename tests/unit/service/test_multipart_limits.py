"""MultipartService.complete's checks that need no IPFS: part order, ETags, sizes, the 5 TiB limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.errors import EntityTooLarge, EntityTooSmall, InvalidPart, InvalidPartOrder
from appliance.model import BucketMeta, PartMeta
from appliance.service.multipart import CompletedPart, MultipartService
from appliance.state.lmdb_store import LmdbMetadataStore


class NoContent:
    """compose must never be reached when a check fails."""

    async def compose(self, parts: Any, *, pin: bool = True) -> str:
        raise AssertionError("compose called")


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    store.create_bucket(BucketMeta("bkt", 0.0, "us-east-1", "o"))
    yield store, MultipartService(store, NoContent(), unpin_grace=0)  # type: ignore[arg-type]
    store.close()


async def _upload(store: LmdbMetadataStore, service: MultipartService, sizes: list[int]) -> Any:
    upload = await service.create("bkt", "k", content_type="x/y")
    for number, size in enumerate(sizes, start=1):
        part = PartMeta(number, f"bafk{number}", size, f"{number:032x}", 0.0)
        store.put_part(upload.upload_id, part, unpin_grace=0, now=0.0)
    return upload


async def test_checks_before_any_compose(setup: Any) -> None:
    store, service = setup
    upload = await _upload(store, service, [5 * 1024**3] * 1100)  # 1100 parts of 5 GiB: over 5 TiB
    every = [CompletedPart(n, f"{n:032x}") for n in range(1, 1101)]
    with pytest.raises(EntityTooLarge):
        await service.complete(upload, every)
    with pytest.raises(InvalidPartOrder):
        await service.complete(upload, [every[1], every[0]])
    with pytest.raises(InvalidPart):
        await service.complete(upload, [CompletedPart(1, "0" * 32)])
    with pytest.raises(InvalidPart):
        await service.complete(upload, [])
    small = await _upload(store, service, [10, 10])
    with pytest.raises(EntityTooSmall):
        await service.complete(small, [CompletedPart(1, f"{1:032x}"), CompletedPart(2, f"{2:032x}")])
    assert store.get_upload(upload.upload_id) is not None
