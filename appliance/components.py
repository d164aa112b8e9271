"""The component interfaces every adapter implements and every service depends on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from appliance.model import (
    AccessKeyRecord,
    AddedContent,
    BucketMeta,
    CompletedUpload,
    DagCheck,
    DamageReport,
    IamGroup,
    IamUser,
    IamView,
    ListPage,
    ManagedPolicy,
    ObjectMeta,
    PartMeta,
    PeerInfo,
    PinJob,
    PinRecord,
    PinReport,
    Principal,
    PutOutcome,
    ReplicationPolicy,
    ScrubItem,
    UploadMeta,
    VersionPage,
    WriteCondition,
)

if TYPE_CHECKING:  # the parsed policy type lives with its parser; this module only names it
    from appliance.service.iam_policy import Policy

__all__ = [
    "ContentStore",
    "DagChecker",
    "IamStore",
    "MetadataStore",
    "ObjectBody",
    "Pinner",
    "PolicySource",
    "ScrubStore",
]


class ObjectBody(Protocol):
    """A request body being verified while it streams (api/s3/payload.py's VerifiedBody).

    Iterating yields the object's bytes; a failed check raises its domain error before the end, so a
    consumer streaming into IPFS aborts. The attributes are final once iteration has ended.
    """

    size: int
    md5_hex: str
    checksums: dict[str, str]

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The object's bytes, verified."""
        ...


class ContentStore(Protocol):
    """Bytes in IPFS, addressed by CID (the Kubo RPC API in production).

    Every method that may wait on the network is bounded by a timeout. Unreachable daemon or a
    timeout raises `BackendUnavailable`; an error answer raises `BackendError`.
    """

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        """Stream `chunks` into a UnixFS file (CIDv1, raw leaves, fixed-size chunks, sha2-256) and
        return its CID in base32. If `chunks` raises, the add is aborted and the exception propagates:
        nothing is pinned."""
        ...

    def cat(
        self, cid: str, offset: int = 0, length: int | None = None, *, size: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the file's bytes from `offset`, `length` bytes (None: to the end), verified against the CID (and
        against `size`, the file size recorded for it, when given): a node's bytes that do not match, or a stream
        that ends short or runs long, raise ContentIntegrityError before any wrong byte is yielded."""
        ...

    async def compose(self, parts: Sequence[tuple[str, int]], *, pin: bool = True) -> str:
        """One UnixFS file whose root links the given (cid, size) files in order, without moving their data;
        pinned recursively when `pin`. Returns the root CID."""
        ...

    async def pin(self, cid: str) -> None:
        """Pin `cid` recursively on the local node (idempotent)."""
        ...

    async def unpin(self, cid: str) -> None:
        """Remove the recursive pin of `cid` (idempotent: not pinned is success)."""
        ...

    async def is_pinned(self, cid: str) -> bool:
        """Whether `cid` is pinned recursively on the local node."""
        ...

    async def ping(self) -> str:
        """Return the node's version string if it answers, else raise BackendUnavailable."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MetadataStore(Protocol):
    """Buckets, objects, CID refcounts and the unpin queue (embedded LMDB).

    Every method is one whole transaction and blocking: callers run it on a worker thread.
    Object writes maintain the CID refcount and the unpin queue in the same transaction.
    """

    def create_bucket(self, bucket: BucketMeta) -> None:
        """Create a bucket; BucketAlreadyOwnedByYou if it exists."""
        ...

    def get_bucket(self, name: str) -> BucketMeta | None:
        """The bucket, or None."""
        ...

    def list_buckets(self) -> list[BucketMeta]:
        """All buckets in name order."""
        ...

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket; NoSuchBucket / BucketNotEmpty otherwise."""
        ...

    def put_object(
        self, meta: ObjectMeta, *, unpin_grace: float, now: float, condition: WriteCondition | None = None
    ) -> PutOutcome:
        """Insert or replace an object row; NoSuchBucket if the bucket is gone. Increments the new
        CID's refcount, cancels a queued unpin of it, decrements the replaced CID and queues its unpin
        at `now + unpin_grace` when it reaches zero. With `condition`, checked against the key's current
        version in the same transaction: ConditionalRequestConflict (and nothing written) if it fails."""
        ...

    def get_object(self, bucket: str, key: str) -> ObjectMeta | None:
        """The object, or None."""
        ...

    def report_damage(self, report: DamageReport) -> DamageReport:
        """Record a damaged block (merged with an earlier report of it); the stored report."""
        ...

    def damage_count(self) -> int:
        """How many blocks have an open damage report."""
        ...

    def damage_totals(self) -> dict[str, int]:
        """Damage reports made per source ("read", "scrub") since the store was created."""
        ...

    def delete_object(self, bucket: str, key: str, *, unpin_grace: float, now: float) -> ObjectMeta | None:
        """Remove an object row (None if absent), releasing its CID as put_object does."""
        ...

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """Keys > start_after with `prefix`, in UTF-8 byte order; with `delimiter`, keys sharing the
        part up to the first delimiter after the prefix are rolled into one common prefix.
        NoSuchBucket if the bucket does not exist."""
        ...

    def objects_by_cid(self, cid: str) -> list[tuple[str, str]]:
        """(bucket, key) of every object whose content is `cid`."""
        ...

    def cid_refcount(self, cid: str) -> int:
        """How many object rows reference `cid`."""
        ...

    def release_if_unreferenced(self, cid: str, *, unpin_grace: float, now: float) -> bool:
        """Queue an unpin of `cid` if no row references it (after a failed PUT). True if queued."""
        ...

    def claim_due_unpins(self, now: float, limit: int) -> list[str]:
        """Mark up to `limit` queued unpins due at `now` as in flight and return their CIDs."""
        ...

    def finish_unpin(self, cid: str) -> bool:
        """Remove the in-flight unpin job of `cid`. False if a PUT re-referenced the CID meanwhile
        (then the caller must pin it again)."""
        ...

    def retry_unpin(self, cid: str, at: float) -> None:
        """Put an in-flight unpin back in the queue, due at `at` (after a failed unpin call)."""
        ...

    def unpin_queue_depth(self) -> int:
        """Jobs queued or in flight."""
        ...

    def get_version(self, bucket: str, key: str, version_id: str) -> ObjectMeta | None:
        """A version of a key (current, noncurrent or delete marker; "null" for the unversioned one), or None."""
        ...

    def current_is_delete_marker(self, bucket: str, key: str) -> bool:
        """Whether the key's newest version is a delete marker."""
        ...

    def delete_version(
        self, bucket: str, key: str, version_id: str, *, unpin_grace: float, now: float
    ) -> ObjectMeta | None:
        """Remove one version for good; the next newest becomes current. None if there was no such version."""
        ...

    def list_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionPage:
        """One page of ListObjectVersions. NoSuchBucket."""
        ...

    def set_object_tags(
        self, bucket: str, key: str, tags: tuple[tuple[str, str], ...], version_id: str | None = None
    ) -> ObjectMeta | None:
        """Replace the tags of an object (of one version of it); None if it does not exist."""
        ...

    def set_object_acl(self, bucket: str, key: str, acl: str, version_id: str | None = None) -> ObjectMeta | None:
        """Replace the ACL (stored grants JSON) of an object (of one version of it); None if it does not exist."""
        ...

    def put_bucket_config(self, bucket: str, name: str, value: str) -> None:
        """Store a bucket sub-resource document (`name`: cors, tagging, ...), JSON text. NoSuchBucket."""
        ...

    def get_bucket_config(self, bucket: str, name: str) -> str | None:
        """The bucket's sub-resource document, or None if it has none. NoSuchBucket."""
        ...

    def delete_bucket_config(self, bucket: str, name: str) -> None:
        """Remove the sub-resource document (absent is fine). NoSuchBucket."""
        ...

    def create_upload(self, upload: UploadMeta) -> None:
        """Record a new multipart upload; NoSuchBucket if the bucket is gone."""
        ...

    def get_upload(self, upload_id: str) -> UploadMeta | None:
        """The upload in progress, or None."""
        ...

    def put_part(self, upload_id: str, part: PartMeta, *, unpin_grace: float, now: float) -> bool:
        """Record (or replace) a part and reference its CID; True if the CID must be re-pinned. NoSuchUpload."""
        ...

    def list_parts(self, upload_id: str, *, after: int = 0, limit: int = 10_000) -> list[PartMeta]:
        """Parts numbered above `after`, in order, at most `limit`. NoSuchUpload."""
        ...

    def list_uploads(self, bucket: str) -> list[UploadMeta]:
        """Every upload in progress in the bucket. NoSuchBucket."""
        ...

    def uploads_initiated_before(self, cutoff: float, limit: int = 100) -> list[UploadMeta]:
        """Uploads started before `cutoff` (abandoned-upload cleanup)."""
        ...

    def complete_upload(
        self,
        upload_id: str,
        meta: ObjectMeta,
        *,
        unpin_grace: float,
        now: float,
        condition: WriteCondition | None = None,
        checksum_type: str = "",
        requested: tuple[tuple[int, str], ...] = (),
    ) -> PutOutcome:
        """Commit the completed object, drop the upload, release its parts' references and record the completion
        (get_completed_upload). NoSuchUpload; ConditionalRequestConflict as put_object."""
        ...

    def get_completed_upload(self, upload_id: str) -> CompletedUpload | None:
        """The record complete_upload left for `upload_id`, until it expires."""
        ...

    def expire_completed_uploads(self, cutoff: float, limit: int = 1000) -> int:
        """Drop up to `limit` completion records made before `cutoff`; how many went."""
        ...

    def abort_upload(self, upload_id: str, *, unpin_grace: float, now: float) -> UploadMeta:
        """Drop the upload and release its parts' references. NoSuchUpload."""
        ...

    def schema_version(self) -> int:
        """The schema version stamped in the store."""
        ...

    # The pin outbox and pin status (state/pin_store.py)

    @property
    def pin_outbox(self) -> bool:
        """Whether object writes queue cluster pin jobs (else they record a local pin)."""
        ...

    def claim_pin_jobs(self, now: float, limit: int, *, lease: float) -> list[PinJob]:
        """Lease up to `limit` due jobs until `now + lease`."""
        ...

    def requeue_inflight_pins(self, now: float) -> int:
        """Make every in-flight job due now (the orchestrator starting)."""
        ...

    def finish_pin_job(self, job: PinJob, record: PinRecord) -> bool:
        """Drop the claimed job and store its final status; False if it was cancelled or re-queued meanwhile."""
        ...

    def reschedule_pin_job(self, job: PinJob, record: PinRecord) -> bool:
        """Re-queue the claimed job as given and store `record`; False if it was cancelled or re-queued meanwhile."""
        ...

    def pin_status(self, cid: str) -> PinRecord | None:
        """The pin status of `cid`, or None."""
        ...

    def mark_pinned(self, record: PinRecord) -> bool:
        """Store a pinned status learnt outside the outbox (a PUT acknowledged by the cluster); the CID's outbox job
        is finished in the same transaction when that pin is all it would do. False if nothing references the CID."""
        ...

    def pin_statuses(self, *, state: str = "", after: str = "", limit: int = 1000) -> list[PinRecord]:
        """Pin statuses in CID order after `after`, only `state` when given."""
        ...

    def pin_job(self, cid: str) -> PinJob | None:
        """The outbox job of `cid`, or None."""
        ...

    def pin_outbox_depth(self) -> int:
        """Pin jobs queued or in flight."""
        ...

    def pin_state_counts(self) -> dict[str, int]:
        """How many CIDs are in each pin state."""
        ...

    def queue_pins(self, cids: Iterable[str], *, now: float, extra: int | None = None, force: bool = True) -> int:
        """Queue pin jobs for referenced CIDs (`extra` replicas on top of the policy); how many were queued."""
        ...

    def referenced_cids(self, *, after: str = "", limit: int = 1000) -> list[tuple[str, str, str]]:
        """(cid, bucket, key) of CIDs objects or versions reference, in CID order after `after`."""
        ...

    def record_access(self, counts: Mapping[str, int], *, now: float, half_life: float) -> None:
        """Add access counts to each CID's decayed score."""
        ...

    def access_scores(self, *, now: float, half_life: float, limit: int = 100_000) -> dict[str, float]:
        """Every tracked CID's decayed score (pruning the ones decayed to nothing)."""
        ...

    def close(self) -> None:
        """Close the environment."""
        ...


class Pinner(Protocol):
    """Where pins are kept: the local IPFS node (`local`) or an IPFS-Cluster peer set (`cluster`).

    Every call is bounded by a timeout. Unreachable → `BackendUnavailable`; refused → `BackendError`.
    """

    kind: str

    async def pin(self, cid: str, *, name: str, policy: ReplicationPolicy, metadata: Mapping[str, str]) -> None:
        """Ask for `cid` to be pinned with `policy` (idempotent; pinning a pinned CID with a new policy updates
        it). Asynchronous in a cluster: poll `status`."""
        ...

    async def unpin(self, cid: str) -> None:
        """Remove the pin (idempotent)."""
        ...

    async def status(self, cid: str) -> PinReport:
        """The per-peer status of `cid` now."""
        ...

    async def recover(self, cid: str) -> PinReport:
        """Retry a failed pin of `cid` on the peers reporting errors."""
        ...

    def pinset(self) -> AsyncIterator[PinReport]:
        """Every pin the pinner holds, with its status."""
        ...

    async def peers(self) -> Sequence[PeerInfo]:
        """The peers (for placement, rebalancing and the admin API)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class DagChecker(Protocol):
    """Checks and repairs objects' DAGs on the local IPFS node, block by block (scrub; ipfsconn/dagcheck.py).

    Unreachable node → `BackendUnavailable`; an error answer that says nothing about the block → `BackendError`.
    """

    async def check(self, root: str, size: int) -> DagCheck:
        """Read every block of the UnixFS file `root` from the local node, each within a short deadline, and check
        its hash, its structure and its size (the root must hold `size` bytes); the faults found."""
        ...

    async def repair(self, block: str, root: str, kind: str) -> str | None:
        """Replace a `missing` or `damaged` block of `root` with a good copy fetched from the node's peers (a damaged
        one is removed first) and keep `root` pinned; None when the block now verifies, else why not."""
        ...

    async def block_ok(self, block: str) -> str | None:
        """None when the local node holds `block` with the right hash, else "missing" or "damaged: why"."""
        ...


class ScrubStore(MetadataStore, Protocol):
    """The metadata store as scrub uses it: damage reports and scrub's walk and progress (state/scrub_store.py)."""

    def damage_reports(self, limit: int = 1000) -> list[DamageReport]:
        """Open damage reports in block CID order."""
        ...

    def damage_count(self) -> int:
        """How many blocks have an open damage report."""
        ...

    def clear_damage(self, block: str) -> bool:
        """Drop the report of `block`; whether there was one."""
        ...

    def scrub_items(
        self, phase: str, after: bytes, *, bucket: str = "", prefix: str = "", limit: int = 100
    ) -> list[ScrubItem]:
        """Items of one walk phase strictly after position `after`."""
        ...

    def scrub_count(self, *, bucket: str = "", prefix: str = "") -> int:
        """About how many items a run over `bucket`/`prefix` walks."""
        ...

    def scrub_state(self) -> dict[str, Any] | None:
        """The current (or last) run's document."""
        ...

    def save_scrub_state(self, doc: dict[str, Any]) -> None:
        """Store the run's progress."""
        ...

    def finish_scrub(self, doc: dict[str, Any], summary: dict[str, Any], *, keep: int = 20) -> None:
        """Store a finished run and add its summary to the history."""
        ...

    def scrub_history(self, limit: int = 20) -> list[dict[str, Any]]:
        """Summaries of finished runs, newest first."""
        ...


class PolicySource(Protocol):
    """Who holds an access key and which identity policies apply to them (the IAM store; in memory in tests).

    Calls are cheap and non-blocking (the implementation keeps what it serves in memory) because the S3 app asks on
    every request."""

    def principal_for(self, access_key: str) -> tuple[Principal, str] | None:
        """(principal, secret) for SigV4; None for a key that is unknown, disabled or expired."""
        ...

    def policies_for(self, principal: Principal) -> Sequence[Policy]:
        """The principal's attached and inline policies, and those of its groups."""
        ...

    def record_use(self, access_key: str, now: float) -> None:
        """Note that `access_key` was used at `now` (last-used time; may be batched)."""
        ...


class IamStore(Protocol):
    """IAM records in the metadata store (state/iam_store.py). Each method is one whole transaction; every write
    moves `iam_generation()`, in whichever process it ran. Unknown entities raise NoSuchEntity, duplicates
    EntityAlreadyExists, limits IamLimitExceeded, a policy still attached DeleteConflict."""

    def iam_generation(self) -> int:
        """The change counter: moves on every IAM write (not on last-used times)."""
        ...

    def iam_create_user(self, user: IamUser) -> None: ...
    def iam_get_user(self, name: str) -> IamUser | None: ...
    def iam_list_users(self) -> list[IamUser]: ...
    def iam_modify_user(self, name: str, change: Callable[[IamUser], IamUser]) -> IamUser:
        """Replace the record by change(record) in one transaction (no rename, no attachment change)."""
        ...

    def iam_delete_user(self, name: str) -> list[str]:
        """Delete the user with its keys, memberships and attachments; the deleted key ids."""
        ...

    def iam_create_group(self, group: IamGroup) -> None: ...
    def iam_get_group(self, name: str) -> tuple[IamGroup, list[str]] | None: ...
    def iam_list_groups(self) -> list[IamGroup]: ...
    def iam_modify_group(self, name: str, change: Callable[[IamGroup], IamGroup]) -> IamGroup: ...
    def iam_delete_group(self, name: str) -> None: ...
    def iam_set_member(self, group: str, user: str, *, member: bool) -> bool: ...
    def iam_groups_of(self, user: str) -> list[IamGroup]: ...

    def iam_create_key(self, record: AccessKeyRecord, *, limit: int, now: float) -> None: ...
    def iam_rotate_key(self, record: AccessKeyRecord, *, old_expires: float, limit: int, now: float) -> list[str]:
        """Store `record` and make the user's other usable keys expire at `old_expires`; their ids."""
        ...

    def iam_get_key(self, access_key: str) -> AccessKeyRecord | None: ...
    def iam_list_keys(self, user: str) -> list[AccessKeyRecord]: ...
    def iam_set_key_status(self, access_key: str, status: str) -> AccessKeyRecord: ...
    def iam_delete_key(self, access_key: str) -> None: ...
    def iam_record_use(self, uses: Mapping[str, float]) -> None:
        """Last-used times (batched by the caller)."""
        ...

    def iam_identity(self, access_key: str) -> tuple[AccessKeyRecord, IamUser, tuple[str, ...]] | None: ...
    def iam_view(self, user: str) -> IamView: ...

    def iam_put_policy(self, policy: ManagedPolicy, *, create: bool) -> ManagedPolicy: ...
    def iam_get_policy(self, name: str) -> ManagedPolicy | None: ...
    def iam_list_policies(self) -> list[ManagedPolicy]: ...
    def iam_policy_entities(self, name: str) -> list[tuple[str, str]]: ...
    def iam_delete_policy(self, name: str) -> None: ...
    def iam_attach(self, kind: str, entity: str, policy: str, *, attach: bool, builtin: bool, limit: int) -> bool: ...
