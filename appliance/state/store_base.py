"""The base of the LMDB metadata store: opening the environment, the process guard, CID references and the write
of a key's current version (with versioning). The public methods live in lmdb_store.py, upload_store.py and
version_store.py; key layout: keys.py."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import lmdb

from appliance import metrics
from appliance.errors import BackendError, ConditionalRequestConflict, ConfigError
from appliance.model import ObjectMeta, PutOutcome, WriteCondition
from appliance.state import codec, keys, pins, versions
from appliance.state.codec import UnpinJob
from appliance.state.migrations import CURRENT_VERSION, check_version, migrate, read_version

__all__ = ["DEFAULT_MAP_SIZE", "DEFAULT_UNPINNED_TTL", "DEFAULT_UNPIN_LEASE", "StoreBase", "guarded"]

DEFAULT_MAP_SIZE = 64 << 30
DEFAULT_UNPIN_LEASE = 600.0  # an in-flight unpin older than this is claimable again (its claimer died)
DEFAULT_UNPINNED_TTL = 86400.0  # how long a finished unpin is remembered (longer than any PUT takes)
_MAX_DBS = 32  # room for the databases later schema versions add
_PRUNE_BATCH = 1000

_S = TypeVar("_S", bound="StoreBase")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _TimedTxn:
    """A write transaction's context manager that observes its duration (commit included) in the metrics."""

    __slots__ = ("_started", "_txn")

    def __init__(self, txn: Any) -> None:
        self._txn = txn
        self._started = 0.0

    def __enter__(self) -> Any:
        self._started = time.perf_counter()
        return self._txn.__enter__()

    def __exit__(self, *exc: object) -> Any:
        try:
            return self._txn.__exit__(*exc)
        finally:
            metrics.LMDB_WRITE_DURATION.observe(time.perf_counter() - self._started)


class _TimedEnv:
    """The LMDB environment, with write transactions timed; everything else passes through."""

    __slots__ = ("_env",)

    def __init__(self, env: Any) -> None:
        self._env = env

    def begin(self, *args: Any, **kwargs: Any) -> Any:
        txn = self._env.begin(*args, **kwargs)
        return _TimedTxn(txn) if kwargs.get("write") else txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


def guarded(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Check the store is usable here and translate LMDB failures into domain errors."""

    @functools.wraps(method)
    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if self._pid != os.getpid():
            raise BackendError("the metadata store was opened before a fork: open it in the process that uses it")
        try:
            return method(self, *args, **kwargs)
        except lmdb.MapFullError as exc:
            raise BackendError(
                f"metadata store is full ({self._map_size} bytes): raise metadata.map_size and restart"
            ) from exc
        except lmdb.ReadonlyError as exc:
            raise BackendError("the metadata store is open read-only: this operation writes") from exc
        except lmdb.Error as exc:
            raise BackendError(f"metadata store error: {exc}") from exc

    return wrapper


class StoreBase:
    """The LMDB environment, its named databases and the reference bookkeeping every write shares."""

    def __init__(
        self,
        path: Path,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        readonly: bool = False,
        unpin_lease: float = DEFAULT_UNPIN_LEASE,
        unpinned_ttl: float = DEFAULT_UNPINNED_TTL,
        clock: Callable[[], float] = time.time,
        pin_outbox: bool = False,
    ) -> None:
        if unpin_lease <= 0:
            raise ConfigError("the unpin lease must be positive")
        self._path = Path(path)
        self._map_size = map_size
        self._lease = unpin_lease
        self._unpinned_ttl = unpinned_ttl
        self._clock = clock
        self._outbox = pin_outbox  # cluster replication: object writes queue pin jobs (state/pins.py)
        self._pid = os.getpid()
        try:
            if not readonly:
                self._path.mkdir(parents=True, exist_ok=True)
            self._env = _TimedEnv(
                lmdb.open(
                    str(self._path),
                    map_size=map_size,
                    subdir=True,
                    readonly=readonly,
                    create=not readonly,
                    lock=True,
                    sync=True,
                    metasync=True,
                    max_dbs=_MAX_DBS,
                    max_readers=1024,
                )
            )
        except (lmdb.Error, OSError) as exc:
            raise ConfigError(
                f"cannot open the metadata store at {self._path}: {exc}; check metadata.path and its permissions"
            ) from exc
        try:
            if self._env.max_key_size() < keys.LMDB_MAX_KEY:
                raise ConfigError(f"liblmdb's key size limit is {self._env.max_key_size()}; s3ipfs needs 511")
            self._dbs = self._open_dbs(readonly)
        except BaseException:
            self._env.close()
            raise

    def _open_dbs(self, readonly: bool) -> keys.Dbs:
        where = str(self._path)
        try:
            if readonly:
                # py-lmdb keeps a handle opened in a read transaction only if open_db makes its own.
                dbs = keys.Dbs(*(self._env.open_db(name, create=False, dupsort=dup) for name, dup in keys.DB_SPECS))
                with self._env.begin() as txn:
                    found = read_version(txn, dbs)
                check_version(found, where)
                if found < CURRENT_VERSION:
                    raise ConfigError(f"the metadata store at {where} needs a migration: open it writable once")
                return dbs
            with self._env.begin(write=True) as txn:
                dbs = keys.Dbs(*(self._env.open_db(name, txn=txn, dupsort=dup) for name, dup in keys.DB_SPECS))
                migrate(txn, dbs, where)
            return dbs
        except lmdb.NotFoundError as exc:
            raise ConfigError(f"the metadata store at {where} is not initialised: start s3ipfs once") from exc
        except lmdb.Error as exc:
            raise ConfigError(f"cannot open the metadata store at {where}: {exc}") from exc

    def close(self) -> None:
        if self._pid == os.getpid():
            self._env.close()

    # References and jobs

    def _refcount(self, txn: Any, cid: str) -> int:
        cursor = txn.cursor(db=self._dbs.cid_refs)
        return int(cursor.count()) if cursor.set_key(cid.encode("utf-8")) else 0

    def _add_ref(self, txn: Any, cid: str, oid: bytes) -> None:
        ref = keys.ref_value(oid)
        if ref.startswith(keys.LONG_REF_MARK):
            txn.put(ref[1:], oid, db=self._dbs.long_names)
        txn.put(cid.encode("utf-8"), ref, db=self._dbs.cid_refs)

    def _drop_ref(self, txn: Any, cid: str, oid: bytes, *, due: float, now: float) -> None:
        """Remove one reference; queue the CID's unpin at `due` if it was the last."""
        ref = keys.ref_value(oid)
        if ref.startswith(keys.LONG_REF_MARK):
            txn.delete(ref[1:], db=self._dbs.long_names)
        self._drop_ref_value(txn, cid, ref, due=due, now=now)

    def _drop_ref_value(self, txn: Any, cid: str, ref: bytes, *, due: float, now: float) -> None:
        """Remove one reference value; if it was the last, queue the unpin at `due` and mark the pin status
        `unpinning` at `now`, the caller's time like every other write."""
        txn.delete(cid.encode("utf-8"), ref, db=self._dbs.cid_refs)
        if self._refcount(txn, cid) == 0:
            codec.set_job(txn, self._dbs, cid, UnpinJob("queued", due))
            pins.cancel(txn, self._dbs, cid, now=now)

    def _take_unpin(self, txn: Any, cid: str) -> bool:
        """Cancel the unpin job of a CID a row now references; True if it was already in flight."""
        job = codec.remove_job(txn, self._dbs, cid)
        return job is not None and job.state == "inflight"

    def _prune_unpinned(self, txn: Any, now: float) -> None:
        cursor = txn.cursor(db=self._dbs.unpinned_expiry)
        expired: list[str] = []
        for index_key in cursor.iternext(values=False):
            if keys.split_due_key(index_key)[0] > now or len(expired) == _PRUNE_BATCH:
                break
            expired.append(keys.split_due_key(index_key)[1])
        for cid in expired:
            codec.take_unpinned(txn, self._dbs, cid)

    # The current version of a key

    def _check_condition(self, txn: Any, meta: ObjectMeta, condition: WriteCondition | None) -> None:
        """A conditional write's check inside the commit transaction. The caller checked it before taking the body,
        so a failure here means a concurrent write to the key won meanwhile: ConditionalRequestConflict (409)."""
        if condition is None:
            return
        current = codec.load_object(txn, self._dbs.objects, keys.object_id(meta.bucket, meta.key))
        if condition.violation(current):
            raise ConditionalRequestConflict()

    def _write_current(self, txn: Any, meta: ObjectMeta, *, unpin_grace: float, now: float) -> PutOutcome:
        """Make `meta` the key's current version: in a versioned bucket the previous one becomes noncurrent
        (Enabled) or, if it is the "null" version, is replaced (Suspended)."""
        oid = keys.object_id(meta.bucket, meta.key)
        mode = versions.bucket_versioning(txn, self._dbs, meta.bucket)
        if mode == versions.ENABLED:
            meta = dataclasses.replace(meta, version_id=versions.new_version_id(now))
        elif mode == versions.SUSPENDED:
            meta = dataclasses.replace(meta, version_id="null")
            self._drop_null_versions(txn, oid, due=now + unpin_grace, now=now)
        else:
            meta = dataclasses.replace(meta, version_id="")
        current = codec.load_object(txn, self._dbs.objects, oid)
        if mode and current is not None and not (mode == versions.SUSPENDED and current.shown_version == "null"):
            self._archive(txn, oid, current)
        previous = codec.store_object(txn, self._dbs.objects, oid, meta)
        repin = False
        if previous is None or previous.cid != meta.cid:
            if previous is not None:
                self._drop_ref(txn, previous.cid, oid, due=now + unpin_grace, now=now)
            self._add_ref(txn, meta.cid, oid)
            pins.enqueue(
                txn,
                self._dbs,
                meta.cid,
                name=f"{meta.bucket}/{meta.key}",
                bucket=meta.bucket,
                now=now,
                outbox=self._outbox,
            )
            repin = self._take_unpin(txn, meta.cid)
            # An unpin that finished while this PUT was streaming may have removed the pin `add` made.
            repin = codec.take_unpinned(txn, self._dbs, meta.cid) or repin
        return PutOutcome(previous=previous, repin_needed=repin, current=meta)

    def _archive(self, txn: Any, oid: bytes, meta: ObjectMeta) -> None:
        """Copy the current version into `versions` with its own CID reference (the caller then replaces or
        removes the current row, dropping its object reference without reaching refcount zero)."""
        archived = dataclasses.replace(meta, version_id=meta.shown_version)
        vkey = versions.version_key_of(oid, archived)
        txn.put(vkey, codec.encode_version(archived), db=self._dbs.versions)
        txn.put(archived.cid.encode("utf-8"), keys.version_ref(vkey), db=self._dbs.cid_refs)

    def _drop_version(self, txn: Any, vkey: bytes, meta: ObjectMeta, *, due: float, now: float) -> None:
        txn.delete(vkey, db=self._dbs.versions)
        if not meta.delete_marker:
            self._drop_ref_value(txn, meta.cid, keys.version_ref(vkey), due=due, now=now)

    def _drop_null_versions(self, txn: Any, oid: bytes, *, due: float, now: float) -> None:
        for vkey, meta in list(versions.iter_versions(txn, self._dbs, oid)):
            if meta.shown_version == "null":
                self._drop_version(txn, vkey, meta, due=due, now=now)
