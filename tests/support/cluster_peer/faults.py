"""Fault injection state, set through `POST /_test/faults` (merged), read back by `GET`, cleared by `DELETE`.

JSON keys (all optional):
    down          [peer]            peers (peername, peer id or index) whose RPC "fails": cluster_error, no metrics
    pin_errors    {cid: text}       pins of these CIDs end in pin_error with `text`
    pin_delay     {cid|"*": secs}   pins of these CIDs (or all) wait this long in `pinning`
    reject        {cid: {"code","message"}}  any /pins/{cid}, /allocations/{cid} route answers this error
    fail_next     {"count","code","message"} the next `count` API requests answer this error (default 500)
    malformed_next  N               the next N API replies are 200 with a malformed JSON body
    cut_stream    {"path","after","error","abort","count"}  the next `count` (1) streams on `path` stop after
                  `after` items: with `abort` the connection drops mid-line; else the `error` text goes in the
                  X-Stream-Error trailer
    api_delay     secs              every API request waits this long before answering
    used          {peer: bytes}     extra bytes counted as used on a peer (lowers its freespace)
    capacity      {peer: bytes}     a peer's capacity
    tags          {peer: {name: value}}  a peer's tags (metric `tag:<name>`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.cluster_peer.shapes import ApiError

__all__ = ["Faults"]


def _error(spec: Any, default_code: int = 500) -> tuple[int, str]:
    if not isinstance(spec, dict):
        raise ApiError(400, "fault error spec must be an object")
    code = int(spec.get("code", default_code))
    if not 400 <= code <= 599:
        raise ApiError(400, "fault code must be 4xx or 5xx")
    return code, str(spec.get("message", "injected failure"))


@dataclass
class Faults:
    down: set[str] = field(default_factory=set)
    pin_errors: dict[str, str] = field(default_factory=dict)
    pin_delay: dict[str, float] = field(default_factory=dict)
    reject: dict[str, tuple[int, str]] = field(default_factory=dict)
    fail_next: list[tuple[int, str]] = field(default_factory=list)
    malformed_next: int = 0
    cut_stream: dict[str, Any] | None = None
    api_delay: float = 0.0
    used: dict[str, int] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def merge(self, data: Any) -> None:
        """Apply one control request (unknown keys are a 400)."""
        if not isinstance(data, dict):
            raise ApiError(400, "faults must be a JSON object")
        unknown = set(data) - {f for f in vars(self)}
        if unknown:
            raise ApiError(400, f"unknown fault keys {sorted(unknown)}")
        try:
            if "down" in data:
                self.down = {str(p) for p in data["down"]}
            if "pin_errors" in data:
                self.pin_errors.update({str(k): str(v) for k, v in data["pin_errors"].items()})
            if "pin_delay" in data:
                self.pin_delay.update({str(k): float(v) for k, v in data["pin_delay"].items()})
            if "reject" in data:
                self.reject.update({str(k): _error(v) for k, v in data["reject"].items()})
            if "fail_next" in data:
                spec = data["fail_next"]
                self.fail_next = [_error(spec)] * int(spec.get("count", 1))
            if "malformed_next" in data:
                self.malformed_next = int(data["malformed_next"])
            if "cut_stream" in data:
                spec = data["cut_stream"]
                self.cut_stream = (
                    None
                    if spec is None
                    else {
                        "path": str(spec.get("path", "/pins")),
                        "after": int(spec.get("after", 1)),
                        "error": str(spec.get("error", "")),
                        "abort": bool(spec.get("abort", False)),
                        "count": int(spec.get("count", 1)),
                    }
                )
            if "api_delay" in data:
                self.api_delay = float(data["api_delay"])
            if "used" in data:
                self.used.update({str(k): int(v) for k, v in data["used"].items()})
            if "capacity" in data:
                self.capacity.update({str(k): int(v) for k, v in data["capacity"].items()})
            if "tags" in data:
                for peer, tags in data["tags"].items():
                    self.tags[str(peer)] = {str(k): str(v) for k, v in tags.items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise ApiError(400, f"bad fault value: {exc}") from None

    def clear(self) -> None:
        for name, value in vars(Faults()).items():
            setattr(self, name, value)

    def take_stream_cut(self, path: str) -> dict[str, Any] | None:
        cut = self.cut_stream
        if cut is None or cut["path"] != path:
            return None
        cut["count"] -= 1
        if cut["count"] <= 0:
            self.cut_stream = None
        return cut

    def pin_delay_of(self, cid: str) -> float:
        return self.pin_delay.get(cid, self.pin_delay.get("*", 0.0))

    def as_json(self) -> dict[str, Any]:
        return {
            "down": sorted(self.down),
            "pin_errors": self.pin_errors,
            "pin_delay": self.pin_delay,
            "reject": {cid: {"code": c, "message": m} for cid, (c, m) in self.reject.items()},
            "fail_next": len(self.fail_next),
            "malformed_next": self.malformed_next,
            "cut_stream": self.cut_stream,
            "api_delay": self.api_delay,
            "used": self.used,
            "capacity": self.capacity,
            "tags": self.tags,
        }
