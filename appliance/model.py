"""Frozen values that cross layers: bucket and object metadata, listing pages, added content."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from appliance.errors import InvalidBucketName, KeyTooLongError

__all__ = [
    "MAX_KEY_BYTES",
    "AddedContent",
    "BucketMeta",
    "ListPage",
    "ObjectMeta",
    "PartMeta",
    "PutOutcome",
    "UploadMeta",
    "VersionPage",
    "validate_bucket_name",
    "parse_version_id",
    "validate_key",
]

MAX_KEY_BYTES = 1024

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

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must be >= 0")
        if not self.cid and not self.delete_marker:
            raise ValueError("cid must be set")

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
