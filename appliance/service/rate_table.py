"""Token buckets in one small shared-memory table, so every worker process spends from the same budget.

The table is a file (on tmpfs when one is available) that the main process creates and every worker maps with
`mmap`. A bucket lives in a slot chosen by a stable hash of (kind, name), with a few linear probes on a collision;
one check locks only its slot, with an `fcntl` byte-range lock held for a handful of arithmetic operations (two
system calls, no LMDB, no I/O). A slot whose bucket has refilled completely holds nothing a fresh bucket would not,
so it may be taken by another key; when every probe is busy the one closest to full is evicted (the only case in
which a client may get slightly more than its rate: a table far too small for its clients).

Layout: a 64-byte header (magic, slot count, throttled counters per kind) and `slots` records of 40 bytes:
    hash u64 (0 = empty) | tokens f64 | last f64 (CLOCK_MONOTONIC seconds) | full_at f64 | kind u64
CLOCK_MONOTONIC is one clock for the whole host, so processes agree on elapsed time.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KIND_IP", "KIND_KEY", "RateTable", "TableStats", "retry_after_seconds", "take"]

KIND_KEY = 1
KIND_IP = 2

_MAGIC = b"S3RLTB01"
_HEADER = struct.Struct("<8sQQQ")  # magic, slots, throttled (key), throttled (ip); padded to 64 bytes
_HEADER_SIZE = 64
_SLOT = struct.Struct("<QdddQ")
_PROBES = 8


def take(tokens: float, last: float, now: float, rate: float, burst: float) -> tuple[float, float]:
    """One request against a bucket holding `tokens` at time `last`: returns (tokens left, wait).

    wait == 0: admitted, one token spent. wait > 0: refused, nothing spent; a token is there again after `wait`
    seconds. Time running backwards (it cannot with CLOCK_MONOTONIC, but a test clock may) refills nothing."""
    tokens = min(burst, tokens + max(0.0, now - last) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


def _hash(kind: int, name: str) -> int:
    digest = hashlib.blake2b(f"{kind}:{name}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") | 1  # never 0, the empty marker


@dataclass(frozen=True, slots=True)
class TableStats:
    """What /metrics shows: refusals since the table was made, and buckets currently not full, per kind."""

    throttled_key: int
    throttled_ip: int
    tracked_key: int
    tracked_ip: int


class RateTable:
    """The shared bucket table at `path`: `create` it once (main process), `open` it in every worker."""

    def __init__(self, path: Path, fd: int, mm: mmap.mmap, slots: int) -> None:
        self.path = path
        self._fd = fd
        self._mm = mm
        self.slots = slots

    @classmethod
    def create(cls, path: Path, slots: int) -> RateTable:
        """A new zeroed table (0600) at `path`, replacing a stale one."""
        size = _HEADER_SIZE + slots * _SLOT.size
        # A fresh name (O_EXCL) then rename: a symlink planted at a predictable name in a shared tmpfs is replaced,
        # never followed.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
            _HEADER.pack_into(mm, 0, _MAGIC, slots, 0, 0)
            os.replace(tmp, path)
        except BaseException:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
        return cls(path, fd, mm, slots)

    @classmethod
    def open(cls, path: Path) -> RateTable:
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        magic, slots, _k, _i = _HEADER.unpack_from(mm, 0)
        if magic != _MAGIC or size != _HEADER_SIZE + slots * _SLOT.size:
            mm.close()
            os.close(fd)
            raise ValueError(f"{path} is not a rate-limit table")
        return cls(path, fd, mm, slots)

    def close(self) -> None:
        self._mm.close()
        os.close(self._fd)

    def unlink(self) -> None:
        self.path.unlink(missing_ok=True)

    # ---- the per-request check --------------------------------------------------------------------------------

    def take(self, kind: int, name: str, rate: float, burst: int, now: float) -> float:
        """Spend one token of (kind, name)'s bucket; 0.0 when admitted, else seconds until a token is back."""
        h = _hash(kind, name)
        base = h % self.slots
        offsets = [_HEADER_SIZE + ((base + i) % self.slots) * _SLOT.size for i in range(_PROBES)]
        for _attempt in range(3):
            free: int | None = None
            for offset in offsets:  # unlocked look: a torn read only sends us to the locked re-check below
                slot_hash, _t, _l, full_at, _k = _SLOT.unpack_from(self._mm, offset)
                if slot_hash == h:
                    wait = self._locked_take(offset, h, kind=kind, rate=rate, burst=burst, now=now, claim=False)
                    if wait is not None:
                        return wait
                    break  # taken over meanwhile: look again
                if free is None and (slot_hash == 0 or full_at <= now):
                    free = offset
            else:
                if free is not None:
                    wait = self._locked_take(free, h, kind=kind, rate=rate, burst=burst, now=now, claim=True)
                    if wait is not None:
                        return wait
                else:  # every probe busy: evict the bucket closest to full
                    victim = min(offsets, key=lambda off: _SLOT.unpack_from(self._mm, off)[3])
                    wait = self._locked_take(
                        victim, h, kind=kind, rate=rate, burst=burst, now=now, claim=True, evict=True
                    )
                    if wait is not None:
                        return wait
        return 0.0  # lost every race to other processes: admit rather than spin

    def _locked_take(
        self, offset: int, h: int, *, kind: int, rate: float, burst: int, now: float, claim: bool, evict: bool = False
    ) -> float | None:
        """Under the slot's lock: spend from the bucket at `offset` if it is h's (or claim it for h when it is
        free, or `evict`). None when the slot changed hands since the unlocked look."""
        fcntl.lockf(self._fd, fcntl.LOCK_EX, _SLOT.size, offset)
        try:
            slot_hash, tokens, last, full_at, _k = _SLOT.unpack_from(self._mm, offset)
            if slot_hash != h:
                if not claim or not (evict or slot_hash == 0 or full_at <= now):
                    return None
                tokens, last = float(burst), now
            tokens, wait = take(tokens, last, now, rate, burst)
            full_at = now + (burst - tokens) / rate
            _SLOT.pack_into(self._mm, offset, h, tokens, now, full_at, kind)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, _SLOT.size, offset)
        if wait > 0:
            self._count_throttled(kind)
        return wait

    def _count_throttled(self, kind: int) -> None:
        field = 16 if kind == KIND_KEY else 24
        fcntl.lockf(self._fd, fcntl.LOCK_EX, 8, field)
        try:
            (count,) = struct.unpack_from("<Q", self._mm, field)
            struct.pack_into("<Q", self._mm, field, count + 1)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 8, field)

    # ---- metrics (main process) -------------------------------------------------------------------------------

    def stats(self, now: float) -> TableStats:
        """Counters and the buckets in use (not yet full again), read without locks (a metric, not a decision)."""
        _magic, _slots, throttled_key, throttled_ip = _HEADER.unpack_from(self._mm, 0)
        tracked = {KIND_KEY: 0, KIND_IP: 0}
        view = memoryview(self._mm)[_HEADER_SIZE : _HEADER_SIZE + self.slots * _SLOT.size]
        try:
            for slot_hash, _t, _l, full_at, kind in _SLOT.iter_unpack(view):
                if slot_hash and full_at > now and kind in tracked:
                    tracked[kind] += 1
        finally:
            view.release()
        return TableStats(throttled_key, throttled_ip, tracked[KIND_KEY], tracked[KIND_IP])


def retry_after_seconds(wait: float) -> int:
    """The Retry-After header value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait))
