"""Range and conditional-request logic for GET/HEAD, pure functions (S3's precedence rules)."""

from __future__ import annotations

import math
import re
from email.utils import parsedate_to_datetime

from appliance.errors import InvalidRange, NotModified, PreconditionFailed

__all__ = ["check_conditions", "parse_range"]

_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a Range header asks for, or None for the whole object.

    A header S3 would ignore (not bytes=, several ranges, syntax errors, last < first) gives None;
    an unsatisfiable one raises InvalidRange (416)."""
    if value is None:
        return None
    match = _RANGE.fullmatch(value.strip().replace(" ", ""))
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        suffix = int(last_text)
        if suffix == 0:
            raise InvalidRange(object_size=size)
        if size == 0:
            # "The last N bytes" of an empty object is the whole (empty) object: 200, as S3 answers tail reads
            # (bytes=0- on an empty object stays 416: it names a first byte that does not exist).
            return None
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise InvalidRange(object_size=size)
    last = min(int(last_text), size - 1) if last_text else size - 1
    return first, last


def _etags(value: str) -> list[str]:
    return [tag.strip().removeprefix("W/").strip('"') for tag in value.split(",") if tag.strip()]


def _matches(value: str, etag: str) -> bool:
    tags = _etags(value)
    return "*" in tags or etag in tags


def _timestamp(value: str) -> float | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def check_conditions(headers: dict[str, str], *, etag: str, last_modified: float, now: float) -> None:
    """Raise PreconditionFailed (412) or NotModified (304) as S3 does for If-Match, If-Unmodified-Since,
    If-None-Match and If-Modified-Since. Unparseable dates are ignored, as HTTP requires."""
    modified = math.floor(last_modified)  # HTTP dates carry whole seconds
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _matches(if_match, etag):
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.")
    else:
        since = headers.get("if-unmodified-since")
        stamp = _timestamp(since) if since is not None else None
        if stamp is not None and modified > stamp:
            raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if _matches(if_none_match, etag):
            raise NotModified(etag=etag, last_modified=last_modified)
        return
    since = headers.get("if-modified-since")
    stamp = _timestamp(since) if since is not None else None
    if stamp is not None and stamp <= now and modified <= stamp:
        raise NotModified(etag=etag, last_modified=last_modified)
