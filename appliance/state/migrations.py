"""The schema-version stamp of the metadata store and its forward migrations.

Each migration is (version, function(txn, dbs)); opening a store runs, in one write transaction, every
migration newer than the stamp, then stamps CURRENT_VERSION. A store stamped newer than this code
refuses to open: an older s3ipfs must not rewrite rows it does not understand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.errors import ConfigError
from appliance.state.keys import SCHEMA_VERSION_KEY, Dbs

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "Migration", "check_version", "migrate", "read_version"]

Migration = Callable[[Any, Dbs], None]  # (lmdb write transaction, named databases)


def _initial(txn: Any, dbs: Dbs) -> None:
    """Version 1: the layout of keys.py. The named databases are created when the store opens,
    so a fresh store has nothing to convert."""


def _multipart(txn: Any, dbs: Dbs) -> None:
    """Version 2: multipart uploads (uploads, upload_index, parts). The databases are created when the store
    opens and start empty, so existing rows need no change."""


def _pins(txn: Any, dbs: Dbs) -> None:
    """Version 3: the pin outbox, pin status and access statistics (pin_jobs, pin_due, pin_status, access_stats).
    They start empty: objects written before have their local pin; the reconcile job queues the cluster pins
    they lack."""


def _integrity(txn: Any, dbs: Dbs) -> None:
    """Version 4: reports of damaged blocks found by verified reads and scrub (damaged_blocks), and scrub's
    progress and summaries (scrub). Both start empty."""


def _completed_uploads(txn: Any, dbs: Dbs) -> None:
    """Version 5: records of completed multipart uploads (completed_uploads, completed_due), so a retried
    CompleteMultipartUpload gets its first answer. They start empty: uploads completed before have no record."""


def _iam(txn: Any, dbs: Dbs) -> None:
    """Version 6: IAM users, groups, access keys and policies (iam) and key last-used times (iam_usage). Both start
    empty: the root key pair (keys/root.json) stays the only identity until users are created."""


MIGRATIONS: tuple[tuple[int, Migration], ...] = (
    (1, _initial),
    (2, _multipart),
    (3, _pins),
    (4, _integrity),
    (5, _completed_uploads),
    (6, _iam),
)
CURRENT_VERSION = MIGRATIONS[-1][0]


def read_version(txn: Any, dbs: Dbs) -> int:
    """The stamped schema version; 0 for a store never stamped (fresh)."""
    raw = txn.get(SCHEMA_VERSION_KEY, db=dbs.meta)
    if raw is None:
        return 0
    try:
        return int(bytes(raw).decode("ascii"))
    except ValueError as exc:
        raise ConfigError(f"the metadata store's schema version stamp is unreadable ({bytes(raw)!r})") from exc


def check_version(found: int, where: str) -> None:
    """ConfigError if the store at `where` was written by a newer s3ipfs."""
    if found > CURRENT_VERSION:
        raise ConfigError(
            f"the metadata store at {where} has schema version {found}, but this s3ipfs knows only up to "
            f"{CURRENT_VERSION}: upgrade s3ipfs to the version that wrote it (or newer) before starting it"
        )


def migrate(txn: Any, dbs: Dbs, where: str) -> int:
    """Bring the store up to CURRENT_VERSION inside `txn` (a write transaction); return the old version."""
    found = read_version(txn, dbs)
    check_version(found, where)
    for version, step in MIGRATIONS:
        if version > found:
            step(txn, dbs)
    if found != CURRENT_VERSION:
        txn.put(SCHEMA_VERSION_KEY, str(CURRENT_VERSION).encode("ascii"), db=dbs.meta)
    return found
