"""One scrub run: its options, where the walk is, its counters, and the documents the store keeps and the admin API
shows (progress with an ETA while it runs, a summary once it ends)."""

from __future__ import annotations

import base64
import dataclasses
import math
import secrets
from typing import Any

from appliance.errors import BackendError

__all__ = ["COUNTERS", "DEFAULT_RATE", "MAX_RATE", "ScrubOptions", "ScrubRun"]

DEFAULT_RATE = 20.0  # objects per second: one object's blocks at a time leaves the node to S3 traffic
MAX_RATE = 10_000.0
_MAX_SAMPLES = 50

#: What a run counts (the summary carries all of them).
COUNTERS = (
    "objects_checked",  # items whose DAG was read
    "objects_skipped",  # items whose CID this run had already checked clean (the same content under another key)
    "blocks_checked",
    "bytes_checked",
    "damaged",  # blocks found corrupt (hash mismatch) or invalid (malformed, sizes that do not add up)
    "missing",  # blocks the local node does not hold
    "repaired",  # of those, blocks replaced with a good copy from the peers
    "unrepaired",  # blocks still missing or damaged when the run left them
    "pins_checked",
    "pins_wrong",  # CIDs not pinned where their policy says
    "pins_repaired",  # of those, pinned again (local) or queued again in the pin outbox (cluster)
    "errors",  # items that could not be checked (the node answered an error); the run goes on
    "reports_rechecked",  # open damage reports checked again at the start
    "reports_cleared",  # of those, found fine now (or their object is gone) and cleared
)


@dataclasses.dataclass(frozen=True, slots=True)
class ScrubOptions:
    """What a run covers and how fast it goes."""

    bucket: str = ""
    prefix: str = ""
    rate: float = DEFAULT_RATE  # objects per second
    repair: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.rate, int | float) and math.isfinite(self.rate) and 0 < self.rate <= MAX_RATE):
            raise ValueError(f"rate must be a number of objects per second above 0 and at most {MAX_RATE:g}")
        if self.prefix and not self.bucket:
            raise ValueError("a prefix needs a bucket")


@dataclasses.dataclass
class ScrubRun:
    """A run's state; `document()` is what the store keeps (after every object), `from_document` reads it back."""

    id: str
    options: ScrubOptions
    started: float
    state: str = "running"  # running | done | cancelled | failed
    finished: float = 0.0
    phase: str = "objects"
    after: bytes = b""  # the position of the last item done in `phase`
    total: int = 0  # about how many items the run walks (for the ETA)
    resumes: int = 0  # how many times the run was taken up again after the daemon stopped
    error: str = ""
    counters: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # This session (since the start or the last resume), for the observed rate; not stored.
    session_started: float = 0.0
    session_done: int = 0

    @classmethod
    def new(cls, options: ScrubOptions, now: float, total: int) -> ScrubRun:
        return cls(id=secrets.token_hex(8), options=options, started=now, total=total, session_started=now)

    @property
    def done(self) -> int:
        return self.counters["objects_checked"] + self.counters["objects_skipped"]

    def add(self, name: str, count: int = 1) -> None:
        self.counters[name] += count

    def sample(self, **entry: Any) -> None:
        if len(self.samples) < _MAX_SAMPLES:
            self.samples.append(entry)

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "options": dataclasses.asdict(self.options),
            "state": self.state,
            "started": self.started,
            "finished": self.finished,
            "phase": self.phase,
            "after": base64.b64encode(self.after).decode("ascii"),
            "total": self.total,
            "resumes": self.resumes,
            "error": self.error,
            "counters": dict(self.counters),
            "samples": list(self.samples),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any], now: float) -> ScrubRun:
        """The run a stored document describes; BackendError if it is unreadable."""
        try:
            options = ScrubOptions(**doc["options"])
            counters = dict.fromkeys(COUNTERS, 0)
            counters.update({name: int(value) for name, value in doc["counters"].items() if name in counters})
            return cls(
                id=str(doc["id"]),
                options=options,
                started=float(doc["started"]),
                state=str(doc["state"]),
                finished=float(doc["finished"]),
                phase=str(doc["phase"]),
                after=base64.b64decode(doc["after"]),
                total=int(doc["total"]),
                resumes=int(doc["resumes"]),
                error=str(doc["error"]),
                counters=counters,
                samples=list(doc["samples"]),
                session_started=now,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(f"the stored scrub run is unreadable: {exc}"[:200]) from exc

    def progress(self, now: float) -> dict[str, Any]:
        """The running run as the admin API shows it: counters, the fraction done and an ETA in seconds (None
        until the rate is known)."""
        doc = self.document()
        del doc["after"]
        total = max(self.total, self.done)
        remaining = total - self.done
        elapsed = now - self.session_started
        rate = self.session_done / elapsed if elapsed > 0 and self.session_done else 0.0
        doc.update(
            done=self.done,
            total=total,
            fraction=round(self.done / total, 4) if total else 0.0,
            rate=round(rate, 2),
            eta_seconds=round(remaining / rate, 1) if rate > 0 else (0.0 if remaining == 0 else None),
            elapsed_seconds=round(now - self.started, 1),
        )
        return doc

    def summary(self) -> dict[str, Any]:
        """What the history keeps of a finished run."""
        return {
            "id": self.id,
            "state": self.state,
            "options": dataclasses.asdict(self.options),
            "started": self.started,
            "finished": self.finished,
            "duration_seconds": round(max(0.0, self.finished - self.started), 3),
            "resumes": self.resumes,
            "error": self.error,
            **self.counters,
            "samples": self.samples[:20],
        }
