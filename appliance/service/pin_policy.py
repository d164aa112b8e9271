"""Per-bucket replication policies: stored as the bucket's `replication` config document, defaults from config."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from appliance.components import MetadataStore
from appliance.errors import BackendError, InvalidArgument
from appliance.model import ReplicationPolicy

__all__ = ["CONFIG_NAME", "PolicyBook", "parse_policy", "policy_document"]

CONFIG_NAME = "replication"
_CACHE_TTL = 2.0  # seconds a bucket's policy is reused by one process (an admin change applies within this)
_MAX_PEERS = 100
_MAX_TAGS = 10
_MAX_TEXT = 128
_REPLICATION_LIMIT = 1000


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{what} must be an integer")
    if not -1 <= value <= _REPLICATION_LIMIT:
        raise InvalidArgument(f"{what} must be between -1 and {_REPLICATION_LIMIT}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or not value.isprintable():
        raise InvalidArgument(f"{what} must be a non-empty printable string of at most {_MAX_TEXT} characters")
    return value


def parse_policy(data: Any, defaults: ReplicationPolicy) -> ReplicationPolicy:
    """A policy from its JSON document (missing fields take `defaults`); InvalidArgument names what is wrong."""
    if not isinstance(data, Mapping):
        raise InvalidArgument("a replication policy is a JSON object")
    known = {"replication_min", "replication_max", "ack", "allocations", "tags"}
    unknown = sorted(str(k)[:40] for k in data if k not in known)
    if unknown:
        raise InvalidArgument(
            f"unknown replication policy fields: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    low = _int(data.get("replication_min", defaults.replication_min), "replication_min")
    high = _int(data.get("replication_max", defaults.replication_max), "replication_max")
    if (low == -1) != (high == -1):
        raise InvalidArgument("replication -1 (every peer) must be given for both replication_min and replication_max")
    if low > 0 and high > 0 and low > high:
        raise InvalidArgument("replication_min is larger than replication_max")
    ack = data.get("ack", defaults.ack)
    if ack not in ("local", "cluster"):
        raise InvalidArgument("ack must be 'local' or 'cluster'")
    peers = data.get("allocations", list(defaults.allocations))
    if not isinstance(peers, list) or len(peers) > _MAX_PEERS:
        raise InvalidArgument(f"allocations must be a list of at most {_MAX_PEERS} peer ids")
    tags = data.get("tags", dict(defaults.tags))
    if not isinstance(tags, Mapping) or len(tags) > _MAX_TAGS:
        raise InvalidArgument(f"tags must be an object of at most {_MAX_TAGS} tag: value pairs")
    allocations = tuple(_text(p, "an allocation peer id") for p in peers)
    if len(set(allocations)) != len(allocations):
        raise InvalidArgument("allocations lists a peer twice")
    pairs = tuple(sorted((_text(k, "a tag name"), _text(v, f"tag {k!r}")) for k, v in tags.items()))
    if allocations and pairs:
        raise InvalidArgument("give allocations (explicit peers) or tags, not both")
    return ReplicationPolicy(low, high, str(ack), allocations, pairs)


def _stored_policy(bucket: str, text: str, defaults: ReplicationPolicy) -> ReplicationPolicy:
    """The policy stored for `bucket`. `put` only stores valid documents, so one that does not parse is a damaged
    metadata row: BackendError (not the client's InvalidArgument), naming the bucket and the way out."""
    try:
        return parse_policy(json.loads(text), defaults)
    except (ValueError, RecursionError, InvalidArgument) as exc:  # JSONDecodeError is a ValueError
        reason = exc.message if isinstance(exc, InvalidArgument) else "not valid JSON"
        raise BackendError(
            f"the stored replication policy of bucket {bucket[:80]!r} is corrupt ({reason}); "
            "set it again (s3ipfs pins policy set) or clear it (s3ipfs pins policy clear)"
        ) from exc


def policy_document(policy: ReplicationPolicy) -> dict[str, Any]:
    """The JSON document of a policy (the admin API's shape)."""
    return {
        "replication_min": policy.replication_min,
        "replication_max": policy.replication_max,
        "ack": policy.ack,
        "allocations": list(policy.allocations),
        "tags": dict(policy.tags),
    }


class PolicyBook:
    """Reads and writes bucket policies; the effective policy of a bucket without one is `defaults`."""

    def __init__(
        self, store: MetadataStore, defaults: ReplicationPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self.defaults = defaults
        self._clock = clock
        self._cache: dict[str, tuple[float, ReplicationPolicy, bool]] = {}

    async def get(self, bucket: str) -> ReplicationPolicy:
        """The bucket's effective policy (NoSuchBucket if the bucket is gone)."""
        return (await self.lookup(bucket))[0]

    async def lookup(self, bucket: str) -> tuple[ReplicationPolicy, bool]:
        """(effective policy, whether the bucket has its own)."""
        cached = self._cache.get(bucket)
        if cached is not None and self._clock() - cached[0] < _CACHE_TTL:
            return cached[1], cached[2]
        text = await asyncio.to_thread(self._store.get_bucket_config, bucket, CONFIG_NAME)
        found = (self.defaults, False) if text is None else (_stored_policy(bucket, text, self.defaults), True)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[bucket] = (self._clock(), *found)
        return found

    async def put(self, bucket: str, data: Any) -> ReplicationPolicy:
        """Validate and store a bucket's policy document; returns the effective policy."""
        policy = parse_policy(data, self.defaults)
        await asyncio.to_thread(self._store.put_bucket_config, bucket, CONFIG_NAME, json.dumps(policy_document(policy)))
        self._cache.pop(bucket, None)
        return policy

    async def clear(self, bucket: str) -> None:
        """Back to the defaults."""
        await asyncio.to_thread(self._store.delete_bucket_config, bucket, CONFIG_NAME)
        self._cache.pop(bucket, None)
