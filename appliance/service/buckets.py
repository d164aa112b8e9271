"""Bucket operations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from appliance.components import MetadataStore
from appliance.errors import NoSuchBucket
from appliance.model import BucketMeta, validate_bucket_name

__all__ = ["BucketService"]


class BucketService:
    """Create, look up, list and delete buckets."""

    def __init__(self, store: MetadataStore, *, default_region: str, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._region = default_region
        self._clock = clock

    @property
    def default_region(self) -> str:
        return self._region

    async def create_bucket(self, name: str, *, region: str | None, owner: str) -> BucketMeta:
        """Create `name` in `region` (default: the appliance's region)."""
        validate_bucket_name(name)
        bucket = BucketMeta(name=name, created=self._clock(), region=region or self._region, owner=owner)
        await asyncio.to_thread(self._store.create_bucket, bucket)
        return bucket

    async def get_bucket(self, name: str) -> BucketMeta:
        """The bucket; NoSuchBucket if absent."""
        bucket = await asyncio.to_thread(self._store.get_bucket, name)
        if bucket is None:
            raise NoSuchBucket(f"The specified bucket does not exist: {name[:80]}")
        return bucket

    async def list_buckets(self) -> list[BucketMeta]:
        """All buckets, by name."""
        return await asyncio.to_thread(self._store.list_buckets)

    async def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket."""
        await asyncio.to_thread(self._store.delete_bucket, name)

    async def access_configs(
        self, name: str, configs: Sequence[str]
    ) -> tuple[BucketMeta | None, dict[str, str | None]]:
        """The bucket (None if absent) and several of its sub-resource documents, in one trip to the store."""

        def load() -> tuple[BucketMeta | None, dict[str, str | None]]:
            bucket = self._store.get_bucket(name)
            if bucket is None:
                return None, {}
            return bucket, {config: self._store.get_bucket_config(name, config) for config in configs}

        return await asyncio.to_thread(load)

    async def get_config(self, bucket: str, name: str) -> str | None:
        """A bucket sub-resource document (cors, tagging, ...), or None."""
        return await asyncio.to_thread(self._store.get_bucket_config, bucket, name)

    async def put_config(self, bucket: str, name: str, value: str) -> None:
        await asyncio.to_thread(self._store.put_bucket_config, bucket, name, value)

    async def delete_config(self, bucket: str, name: str) -> None:
        await asyncio.to_thread(self._store.delete_bucket_config, bucket, name)
