"""The cluster's JSON shapes (`api/types.go`: ID, Pin, PinInfoShort, Metric) and the PinOptions query parser."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TRACKER_STATUSES",
    "VERSION",
    "ZERO_TIME",
    "ApiError",
    "PinOptions",
    "basic_credentials",
    "check_cid",
    "cluster_peer_id",
    "expand_filter",
    "metric",
    "now_rfc3339",
    "pin_info",
    "pin_json",
]

VERSION = "1.1.6"
ZERO_TIME = "0001-01-01T00:00:00Z"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_CID_V0 = re.compile(r"^Qm[1-9A-HJ-NP-Za-km-z]{44}$")
_CID_B32 = re.compile(r"^b[a-z2-7]{20,}$")
_CID_B58 = re.compile(r"^z[1-9A-HJ-NP-Za-km-z]{20,}$")
TRACKER_STATUSES = (
    "undefined",
    "cluster_error",
    "pin_error",
    "unpin_error",
    "pinned",
    "pinning",
    "unpinning",
    "unpinned",
    "remote",
    "pin_queued",
    "unpin_queued",
    "sharded",
    "unexpectedly_unpinned",
)
_GROUPS = {"error": ("cluster_error", "pin_error", "unpin_error"), "queued": ("pin_queued", "unpin_queued")}


class ApiError(Exception):
    """An error answered as `{"code","message"}` with `code` as the HTTP status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_cid(text: str) -> str:
    """A syntactically valid CID (v0 base58, v1 base32 or base58btc) or 400 `error decoding Cid`."""
    if _CID_V0.match(text) or _CID_B32.match(text) or _CID_B58.match(text):
        return text
    raise ApiError(400, f"error decoding Cid: invalid cid: {text[:80]!r}")


def _b58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return out


def cluster_peer_id(ipfs_id: str) -> str:
    """A stable libp2p-like peer id for the cluster peer beside the IPFS node `ipfs_id`."""
    digest = hashlib.sha256(b"s3ipfs-test-cluster-peer:" + ipfs_id.encode()).digest()
    return ("12D3KooW" + _b58(digest + digest[:8]))[:52]


def expand_filter(value: str) -> frozenset[str]:
    """`filter=` of GET /pins: a comma list of TrackerStatus names (OR'ed); 400 `invalid filter value`."""
    wanted: set[str] = set()
    for item in value.split(","):
        if item in _GROUPS:
            wanted.update(_GROUPS[item])
        elif item in TRACKER_STATUSES:
            wanted.add(item)
        else:
            raise ApiError(400, "invalid filter value")
    return frozenset(wanted)


@dataclass
class PinOptions:
    """PinOptions as parsed from the query (`PinOptions.FromQuery`)."""

    replication_min: int = 0
    replication_max: int = 0
    name: str = ""
    mode: str = "recursive"
    shard_size: int = 0
    user_allocations: list[str] = field(default_factory=list)
    expire_at: str = ZERO_TIME
    metadata: dict[str, str] = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query: list[tuple[str, str]]) -> PinOptions:
        opts = cls()
        params = dict(query)

        def integer(key: str) -> int:
            try:
                return int(params[key])
            except ValueError:
                raise ApiError(400, f"parameter {key} invalid: {params[key][:40]!r}") from None

        if "replication-min" in params:
            opts.replication_min = integer("replication-min")
        if "replication-max" in params:
            opts.replication_max = integer("replication-max")
        if "replication" in params:
            opts.replication_min = opts.replication_max = integer("replication")
        opts.name = params.get("name", "")
        opts.mode = "direct" if params.get("mode") == "direct" else "recursive"
        if "shard-size" in params:
            opts.shard_size = integer("shard-size")
        if params.get("user-allocations"):
            opts.user_allocations = [p for p in params["user-allocations"].split(",") if p]
        if params.get("expire-at"):
            try:
                when = dt.datetime.fromisoformat(params["expire-at"].replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, "parameter expire-at invalid") from None
            if when <= dt.datetime.now(dt.UTC):
                raise ApiError(500, "pin.ExpireAt set before current time")
            opts.expire_at = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if params.get("origins"):
            opts.origins = params["origins"].split(",")
            if not all("/p2p/" in origin for origin in opts.origins):
                raise ApiError(400, "parameter origins invalid: every multiaddress needs /p2p/")
        for key, value in query:
            if key.startswith("meta-") and len(key) > 5:
                opts.metadata[key[5:]] = value
        return opts

    def resolve_replication(self, default_min: int, default_max: int) -> tuple[int, int]:
        """0 → the configured default; then the cluster's validity rules (`isReplicationFactorValid`)."""
        low = default_min if self.replication_min == 0 else self.replication_min
        high = default_max if self.replication_max == 0 else self.replication_max
        if low < -1 or high < -1:
            raise ApiError(500, "cluster.replication_factor_min and max must be >= -1")
        if (low == -1) != (high == -1):
            raise ApiError(500, "cluster.replication_factor_min and max must be -1 when one of them is")
        if low > high:
            raise ApiError(500, "cluster.replication_factor_min is larger than max")
        return low, high


def pin_json(
    cid: str, opts: PinOptions, rmin: int, rmax: int, allocations: list[str], timestamp: str
) -> dict[str, Any]:
    """The `Pin` object as committed to the shared state (`POST /pins/{cid}` forces max_depth -1)."""
    return {
        "cid": cid,
        "type": "pin",
        "allocations": allocations,
        "max_depth": -1,
        "reference": None,
        "timestamp": timestamp,
        "replication_factor_min": rmin,
        "replication_factor_max": rmax,
        "name": opts.name,
        "mode": "recursive",
        "shard_size": opts.shard_size,
        "user_allocations": opts.user_allocations or None,
        "expire_at": opts.expire_at,
        "metadata": opts.metadata or None,
        "pin_update": None,
        "origins": opts.origins,
    }


def pin_info(peername: str, ipfs_id: str, addresses: list[str], status: str, error: str = "") -> dict[str, Any]:
    """One peer's `PinInfoShort`."""
    return {
        "peername": peername,
        "ipfs_peer_id": ipfs_id,
        "ipfs_peer_addresses": addresses,
        "status": status,
        "timestamp": now_rfc3339(),
        "error": error,
        "attempt_count": 0,
        "priority_pin": False,
    }


def metric(name: str, peer: str, value: str, weight: int, *, partitionable: bool = False) -> dict[str, Any]:
    """A `Metric` valid for 30 s (the informers' default `metric_ttl`)."""
    now = dt.datetime.now(dt.UTC)
    nanos = int(now.timestamp() * 1e9)
    return {
        "name": name,
        "peer": peer,
        "value": value,
        "expire": nanos + 30 * 10**9,
        "valid": True,
        "weight": weight,
        "partitionable": partitionable,
        "received_at": nanos,
    }


def basic_credentials(header: str) -> tuple[str, str] | None:
    """`Authorization: Basic …` → (user, password)."""
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password
