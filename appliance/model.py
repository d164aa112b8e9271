"""Frozen values that cross layers: bucket and object metadata, listing pages, added content."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from appliance.errors import InvalidBucketName, KeyTooLongError

__all__ = [
    "ANONYMOUS",
    "Principal",
    "MAX_KEY_BYTES",
    "AccessKeyRecord",
    "IamGroup",
    "IamUser",
    "IamView",
    "ManagedPolicy",
    "AddedContent",
    "BlockFault",
    "BucketMeta",
    "Cid",
    "DagCheck",
    "DamageReport",
    "DAG_PB",
    "RAW",
    "CompletedUpload",
    "ListPage",
    "ObjectMeta",
    "PIN_STATES",
    "PartMeta",
    "PeerInfo",
    "PinJob",
    "PinRecord",
    "PinReport",
    "PutOutcome",
    "ReplicationPolicy",
    "ScrubItem",
    "UploadMeta",
    "VersionPage",
    "decode_varint",
    "encode_varint",
    "WriteCondition",
    "etag_matches",
    "validate_bucket_name",
    "parse_version_id",
    "validate_key",
]

MAX_KEY_BYTES = 1024

DAG_PB = 0x70  # multicodec of dag-pb blocks (UnixFS nodes)
RAW = 0x55  # multicodec of raw blocks (leaves)
SHA2_256 = 0x12  # multihash code
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_MAX_CID_TEXT = 200


def encode_varint(n: int) -> bytes:
    """An unsigned LEB128 varint (multiformats and protobuf)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`; ValueError if it is truncated or longer than 64 bits."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _b58decode(text: str) -> bytes:
    num = 0
    for char in text:
        num = num * 58 + _B58_INDEX[char]
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


@dataclass(frozen=True, slots=True)
class Cid:
    """A CIDv1 (binary form: version 1, codec, multihash), rendered as base32 text (`bafy…`/`bafk…`).

    The one place CIDs are parsed and printed: `Cid.parse` reads base32 (`b…`), base58btc (`z…`) and CIDv0
    (`Qm…`, upgraded to CIDv1 dag-pb) and raises ValueError on anything else; `str(cid)`/`.text` is base32.
    `verifies(block)` checks a block's bytes against the multihash (sha2-256 only: every block we read was
    written that way; any other hash is unverifiable and fails)."""

    raw: bytes
    codec: int = field(init=False, compare=False, repr=False)
    hash_code: int = field(init=False, compare=False, repr=False)
    digest: bytes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        raw = self.raw
        if raw[:1] != b"\x01":
            raise ValueError("not a CIDv1")
        codec, pos = decode_varint(raw, 1)
        hash_code, pos = decode_varint(raw, pos)
        size, pos = decode_varint(raw, pos)
        if len(raw) - pos != size or size == 0:
            raise ValueError("the multihash length does not match its digest")
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "hash_code", hash_code)
        object.__setattr__(self, "digest", raw[pos:])

    @classmethod
    def parse(cls, text: str) -> Cid:
        """The CID in `text` (base32 CIDv1, base58btc CIDv1 or a CIDv0); ValueError if it is not one."""
        if not isinstance(text, str) or not text.isascii() or not 8 < len(text) <= _MAX_CID_TEXT:
            raise ValueError("not a CID")
        try:
            if text.startswith("b") and text == text.lower():
                raw = base64.b32decode(text[1:].upper() + "=" * (-(len(text) - 1) % 8))
            elif text.startswith("z"):
                raw = _b58decode(text[1:])
            elif text.startswith("Qm") and len(text) == 46:
                raw = b"\x01" + encode_varint(DAG_PB) + _b58decode(text)
            else:
                raise ValueError("not a CID")
        except (ValueError, KeyError) as exc:  # binascii.Error is a ValueError
            raise ValueError("not a CID") from exc
        return cls(raw)

    @classmethod
    def of_block(cls, block: bytes, codec: int = DAG_PB) -> Cid:
        """The CIDv1 (sha2-256) of a block."""
        digest = hashlib.sha256(block).digest()
        return cls(b"\x01" + encode_varint(codec) + bytes([SHA2_256, len(digest)]) + digest)

    @staticmethod
    def normalise(text: str) -> str:
        """`text` as base32 CIDv1 text; ValueError if it is not a CID."""
        return Cid.parse(text).text

    @property
    def text(self) -> str:
        return "b" + base64.b32encode(self.raw).decode("ascii").lower().rstrip("=")

    @property
    def is_raw(self) -> bool:
        return self.codec == RAW

    def verifies(self, block: bytes) -> bool:
        """Whether `block` hashes to this CID's digest (False for a hash function other than sha2-256)."""
        return self.hash_code == SHA2_256 and hashlib.sha256(block).digest() == self.digest

    def __str__(self) -> str:
        return self.text


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def validate_bucket_name(name: str) -> str:
    """Return `name` if it follows S3's bucket naming rules, else raise InvalidBucketName."""
    if (
        not _BUCKET_RE.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or _IP_RE.match(name)
        or name.startswith(("xn--", "sthree-"))
        or name.endswith(("-s3alias", "--ol-s3"))
    ):
        raise InvalidBucketName(f"The specified bucket is not valid: {name[:80]!r}.")
    return name


def parse_version_id(version_id: str) -> tuple[int, int] | None:
    """(microseconds, random) of a version id the metadata store made (24 hex digits), else None."""
    if len(version_id) != 24 or not version_id.isascii():
        return None
    try:
        return int(version_id[:16], 16), int(version_id[16:], 16)
    except ValueError:
        return None


def validate_key(key: str) -> str:
    """Return `key` if it is a valid S3 key (1..1024 UTF-8 bytes), else raise."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise KeyTooLongError("The key is not valid UTF-8.") from exc
    if size == 0 or size > MAX_KEY_BYTES:
        raise KeyTooLongError(f"Your key is too long ({size} bytes; the limit is {MAX_KEY_BYTES}).")
    return key


@dataclass(frozen=True, slots=True)
class BucketMeta:
    """A bucket as stored in the metadata store."""

    name: str
    created: float
    region: str
    owner: str


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """One object: where its bytes live (cid) and what S3 returns about it."""

    bucket: str
    key: str
    cid: str
    size: int
    etag: str  # hex MD5 of the body, without quotes
    last_modified: float
    content_type: str = "binary/octet-stream"
    user_meta: tuple[tuple[str, str], ...] = ()
    # Standard headers stored as sent: content-encoding, content-disposition, content-language,
    # cache-control, expires.
    headers: tuple[tuple[str, str], ...] = ()
    checksums: tuple[tuple[str, str], ...] = ()  # (algorithm, base64 value)
    owner: str = ""
    parts: tuple[int, ...] = ()  # part sizes of an object completed from a multipart upload
    tags: tuple[tuple[str, str], ...] = ()  # object tagging, in the order given
    version_id: str = ""  # "" in a bucket that never had versioning; "null" or an id once it has
    delete_marker: bool = False  # a versioned DELETE's marker: no content, no CID
    # Per part of a multipart object, the part's (algorithm, base64 value) checksums (GetObjectAttributes).
    part_checksums: tuple[tuple[tuple[str, str], ...], ...] = ()
    # The part numbers the completing request named, when they are not simply 1..N (S3 keeps them).
    part_numbers: tuple[int, ...] = ()
    # The object's ACL grants as stored JSON (service/s3_acl.py); "" is private: the owner has full control.
    acl: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must be >= 0")
        if not self.cid and not self.delete_marker:
            raise ValueError("cid must be set")

    @property
    def numbered_parts(self) -> tuple[tuple[int, int], ...]:
        """(part number, size) of each part of a multipart object, in order; () for a plain object."""
        numbers = self.part_numbers or range(1, len(self.parts) + 1)
        return tuple(zip(numbers, self.parts, strict=True))

    @property
    def shown_version(self) -> str:
        """The version id S3 shows: objects from before versioning are the "null" version."""
        return self.version_id or "null"


@dataclass(frozen=True, slots=True)
class UploadMeta:
    """A multipart upload in progress."""

    upload_id: str
    bucket: str
    key: str
    initiated: float
    content_type: str = "binary/octet-stream"
    user_meta: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    owner: str = ""
    checksum_algorithm: str = ""  # declared at CreateMultipartUpload (lower case), or ""
    tags: tuple[tuple[str, str], ...] = ()
    checksum_type: str = ""  # "COMPOSITE" or "FULL_OBJECT" when an algorithm is declared


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match value (a comma list of quoted or bare ETags, or "*") names `etag`."""
    tags = [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()]
    return "*" in tags or etag in tags


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """A conditional write (PutObject, CompleteMultipartUpload): If-Match <etag> or If-None-Match: *, checked against
    the key's current version both before the body is taken and again inside the commit transaction."""

    if_match: str | None = None  # the header as sent
    if_none_match: bool = False  # If-None-Match: *

    def violation(self, current: ObjectMeta | None) -> str:
        """ "" if the condition holds for `current` (None: no current version, or a delete marker); "missing" when
        If-Match meets no object; "failed" otherwise."""
        if self.if_none_match and current is not None:
            return "failed"
        if self.if_match is not None:
            if current is None:
                return "missing"
            if not etag_matches(self.if_match, current.etag):
                return "failed"
        return ""


@dataclass(frozen=True, slots=True)
class PartMeta:
    """One uploaded part: its own UnixFS file in IPFS."""

    part_number: int
    cid: str
    size: int
    etag: str  # hex MD5 of the part
    last_modified: float
    checksums: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CompletedUpload:
    """A multipart upload that completed, kept for a while so a retried CompleteMultipartUpload gets the same answer."""

    upload_id: str
    meta: ObjectMeta  # the object as committed (version id included)
    checksum_type: str  # the upload's COMPOSITE / FULL_OBJECT, or ""
    parts: tuple[tuple[int, str], ...]  # (part number, ETag) as the completing request listed them
    completed: float


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """What a metadata commit of a PUT did: the replaced object, and whether its CID must be re-pinned
    because an unpin of the same CID was in flight (see state/lmdb_store.py)."""

    previous: ObjectMeta | None
    repin_needed: bool
    current: ObjectMeta | None = None  # the row as committed (with the version id the store gave it)


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing, in key order."""

    objects: tuple[ObjectMeta, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_marker: str | None  # the last key or common prefix returned, when truncated


@dataclass(frozen=True, slots=True)
class VersionPage:
    """One page of ListObjectVersions: (version or delete marker, is latest) in key order, newest first per key."""

    versions: tuple[tuple[ObjectMeta, bool], ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_key_marker: str
    next_version_id_marker: str


@dataclass(frozen=True, slots=True)
class AddedContent:
    """Content added to IPFS: its root CID (base32 CIDv1) and its byte size."""

    cid: str
    size: int
    extra: dict[str, str] = field(default_factory=dict)


#: The life of an object's pin as the gateway tracks it: waiting in the outbox, asked of the pinner and not yet
#: confirmed, confirmed at the policy's replication, failing (retried), released (the unpin is queued).
PIN_STATES = ("queued", "pinning", "pinned", "error", "unpinning")


@dataclass(frozen=True, slots=True)
class ReplicationPolicy:
    """How a bucket's CIDs are pinned: replication bounds (-1/-1 = every peer, 0 = the cluster's default), when a
    PUT is acknowledged (`local`: once on the local node; `cluster`: once `replication_min` peers report pinned),
    and placement: explicit peers first, else peers whose allocation tags match every (tag, value)."""

    replication_min: int = 0
    replication_max: int = 0
    ack: str = "local"
    allocations: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def with_extra(self, extra: int, limit: int) -> ReplicationPolicy:
        """The policy with `extra` more replicas (the dynamic policy), never above `limit` (0: no limit); a policy
        pinning everywhere (-1) or to the cluster's default (0) is unchanged."""
        if extra <= 0 or self.replication_min <= 0 or self.replication_max <= 0:
            return self
        top = self.replication_max + extra
        if limit > 0:
            top = min(top, max(limit, self.replication_max))
        low = min(self.replication_min + extra, top)
        return ReplicationPolicy(low, top, self.ack, self.allocations, self.tags)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One peer of the pin set as the pinner sees it: id, name, addresses, its error (unreachable), free space in
    bytes when reported, allocation tags."""

    peer_id: str
    name: str
    addresses: tuple[str, ...] = ()
    error: str = ""
    freespace: int | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PinReport:
    """What the pinner reports for one CID now: per peer (status, error), the allocations (empty = everywhere)."""

    cid: str
    peers: tuple[tuple[str, str, str], ...]  # (peer, status, error), sorted by peer
    allocations: tuple[str, ...] = ()
    name: str = ""
    metadata: tuple[tuple[str, str], ...] = ()  # the pin's metadata (the gateway marks its own pins)

    @property
    def pinned(self) -> int:
        return sum(1 for _, status, _ in self.peers if status == "pinned")

    @property
    def errors(self) -> tuple[tuple[str, str, str], ...]:
        """The peers in an error state (the cluster's error statuses)."""
        bad = {"cluster_error", "pin_error", "unexpectedly_unpinned", "undefined", "unpin_error"}
        return tuple(p for p in self.peers if p[1] in bad)

    @property
    def in_pinset(self) -> bool:
        """Whether any peer holds or is fetching the pin (a CID outside the pinset reports only `unpinned`)."""
        return any(status not in ("unpinned", "remote") for _, status, _ in self.peers)

    def satisfies(self, minimum: int) -> bool:
        """At least `minimum` peers pinned (minimum <= 0: every peer that holds an allocation, one at least)."""
        if minimum > 0:
            return self.pinned >= minimum
        holders = [status for _, status, _ in self.peers if status != "remote"]
        if self.allocations:
            allocated = set(self.allocations)
            holders = [status for peer, status, _ in self.peers if peer in allocated]
        return bool(holders) and all(status == "pinned" for status in holders)


@dataclass(frozen=True, slots=True)
class PinRecord:
    """The pin status the gateway keeps per CID (returned in `x-ipfs-pin-status` and by the admin API)."""

    cid: str
    state: str  # one of PIN_STATES
    name: str = ""
    peers: tuple[tuple[str, str, str], ...] = ()  # the last per-peer report
    error: str = ""
    updated: float = 0.0
    attempts: int = 0
    completions: int = 0  # how many times an outbox job for this CID finished (tests check exactly-once)
    replication_min: int = 0
    replication_max: int = 0
    extra: int = 0  # replicas the dynamic policy added (0: the bucket's policy as is)


@dataclass(frozen=True, slots=True)
class PinJob:
    """One outbox entry (one per CID): pin it with its bucket's policy, then verify the replication."""

    cid: str
    name: str  # the cluster pin name, bucket/key
    bucket: str
    due: float
    phase: str = "pin"  # "pin": ask the pinner; "verify": poll until the policy is met
    state: str = "queued"  # "queued" | "inflight"
    attempts: int = 0
    seq: int = 0  # bumped by every enqueue: a finish of an older claim leaves the newer job in place
    created: float = 0.0
    started: float = 0.0  # when the pin was first asked (pin timeout, ipfs_pin_duration_seconds)
    extra: int = 0  # replicas the dynamic policy adds on top of the bucket's policy


@dataclass(frozen=True, slots=True)
class DamageReport:
    """A block a node served wrong (hash mismatch, bad UnixFS structure, wrong size) or could not serve: found by a
    verified read or by scrub, kept until scrub repairs it or an operator clears it."""

    block: str  # the block's CID (base32)
    root: str  # the object's root CID it was read for
    reason: str  # "hash mismatch", "missing", "malformed: …", "size mismatch", …
    first_seen: float
    last_seen: float
    count: int = 1
    source: str = "read"  # "read" or "scrub"


@dataclass(frozen=True, slots=True)
class BlockFault:
    """One block of an object's DAG that is not right on the local node: `missing` (the node does not hold it),
    `corrupt` (its bytes do not hash to its CID: a peer's copy can replace it) or `invalid` (the bytes are what the
    CID names but no valid part of the file: not a UnixFS file node, or a size other than its parent or the object's
    metadata says; only writing the object again fixes that)."""

    block: str  # the block's CID (base32)
    kind: str  # "missing" | "corrupt" | "invalid"
    reason: str


@dataclass(frozen=True, slots=True)
class DagCheck:
    """What checking one object's DAG on the local node found: the blocks and bytes read, and every fault (the
    blocks under a faulty one cannot be reached, so a repaired object is checked again)."""

    root: str
    blocks: int = 0
    bytes: int = 0
    faults: tuple[BlockFault, ...] = ()


@dataclass(frozen=True, slots=True)
class ScrubItem:
    """One thing scrub checks: a current object, a noncurrent version or a part of a multipart upload in progress.
    `phase` and `position` order the walk (position is the metadata key the next walk starts after)."""

    phase: str  # "objects" | "versions" | "parts"
    position: bytes
    bucket: str
    key: str
    cid: str
    size: int
    version_id: str = ""
    part_number: int = 0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request. `user` is "" for anonymous; root is user "root"."""

    user: str  # IAM user name ("root" for the root key, "" anonymous)
    access_key: str  # the key that signed ("" anonymous)
    account: str  # canonical owner id shown in listings/ACLs (the root access key for root: Identity.owner_of)
    groups: tuple[str, ...] = ()
    is_root: bool = False

    @property
    def anonymous(self) -> bool:
        return not self.access_key


ANONYMOUS = Principal(user="", access_key="", account="")


# ---- IAM (state/iam_store.py keeps them; service/iam.py manages them) ---------------------------------------


@dataclass(frozen=True, slots=True)
class IamUser:
    """An IAM user. `user_id` is its stable canonical id (the owner id of what it creates; survives key rotation).
    `inline` maps inline policy names to their documents; `attached` names managed or built-in policies."""

    name: str
    user_id: str
    arn: str
    created: float
    path: str = "/"
    tags: tuple[tuple[str, str], ...] = ()
    inline: tuple[tuple[str, str], ...] = ()
    attached: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IamGroup:
    """An IAM group: its members get its inline and attached policies."""

    name: str
    group_id: str
    arn: str
    created: float
    path: str = "/"
    inline: tuple[tuple[str, str], ...] = ()
    attached: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    """An access key as stored: the secret only sealed (AES-256-GCM under the IAM key `key_id`, the access key id as
    associated data), never in clear. `expires` 0 = never; `last_used` 0 = never used."""

    access_key: str
    user: str
    status: str  # "Active" | "Inactive"
    created: float
    key_id: str
    sealed: bytes = field(repr=False)
    expires: float = 0.0
    last_used: float = 0.0

    def __repr__(self) -> str:
        return (
            f"AccessKeyRecord(access_key={self.access_key!r}, user={self.user!r}, status={self.status!r}, "
            f"expires={self.expires!r}, sealed='***')"
        )

    def usable(self, now: float) -> bool:
        """Active and not past its expiry."""
        return self.status == "Active" and (not self.expires or now < self.expires)


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    """A customer-managed IAM policy: a name and its current document (`version` counts its updates)."""

    name: str
    arn: str
    document: str
    created: float
    updated: float
    version: int = 1
    description: str = ""


@dataclass(frozen=True, slots=True)
class IamView:
    """What a user's policies come from, read in one transaction: the user, its groups, and the documents of the
    managed policies any of them attaches (built-in names are absent: the service knows those)."""

    user: IamUser
    groups: tuple[IamGroup, ...]
    managed: Mapping[str, str]
