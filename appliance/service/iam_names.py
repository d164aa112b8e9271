"""IAM names, paths, tags and generated ids: validation (with Unicode look-alikes refused) and generation."""

from __future__ import annotations

import re
import secrets
import string
import unicodedata
from collections.abc import Mapping

from appliance.errors import InvalidArgument

__all__ = [
    "MAX_GROUP_NAME",
    "MAX_POLICY_NAME",
    "MAX_USER_NAME",
    "new_access_key",
    "new_id",
    "new_secret",
    "validate_access_key",
    "validate_name",
    "validate_path",
    "validate_secret",
    "validate_tags",
]

MAX_USER_NAME = 64
MAX_GROUP_NAME = 128
MAX_POLICY_NAME = 128
MAX_PATH = 512
MAX_TAGS = 50
_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]+")  # IAM's [\w+=,.@-], with \w in its ASCII sense, as AWS means it
_PATH = re.compile(r"/(?:[\x21-\x7e]+/)?")
_TAG = re.compile(r"[A-Za-z0-9 _.:/=+@-]*")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")  # imported keys (versitygw allows short ones)
_UPPER = string.ascii_uppercase + string.digits
_SECRET = string.ascii_letters + string.digits


def _text_problem(value: str) -> str | None:
    """Why `value` is not plain ASCII text, in words an operator understands; None when it is."""
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return "contains a control or invisible character"
    if value.isascii():
        return None
    if unicodedata.normalize("NFKC", value) != value:
        return "is not in Unicode normal form (it holds compatibility characters such as full-width letters)"
    return "holds non-ASCII characters (look-alike letters could impersonate another name)"


def validate_name(kind: str, value: object, limit: int) -> str:
    """`value` as a valid IAM name of `kind` (user, group, policy); InvalidArgument naming the problem."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"the {kind} name must be a non-empty string")
    problem = _text_problem(value)
    if problem:
        raise InvalidArgument(f"the {kind} name {value[:80]!r} {problem}")
    if len(value) > limit:
        raise InvalidArgument(f"the {kind} name is {len(value)} characters long; the limit is {limit}")
    if not _NAME.fullmatch(value):
        raise InvalidArgument(f"the {kind} name {value!r} may hold only letters, digits and _+=,.@-")
    return value


def validate_path(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_PATH or _text_problem(value) or not _PATH.fullmatch(value):
        raise InvalidArgument("path must start and end with / and hold printable ASCII only (e.g. /division/)")
    return value


def validate_tags(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise InvalidArgument("tags must be an object of name: value strings")
    if len(value) > MAX_TAGS:
        raise InvalidArgument(f"at most {MAX_TAGS} tags")
    out = []
    for name, text in value.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise InvalidArgument("tags must be an object of name: value strings")
        if not 1 <= len(name) <= 128 or len(text) > 256 or not _TAG.fullmatch(name) or not _TAG.fullmatch(text):
            raise InvalidArgument(f"tag {name[:80]!r}: names are 1..128 and values 0..256 of letters, digits, _.:/=+-@")
        out.append((name, text))
    return tuple(sorted(out))


def validate_access_key(value: object) -> str:
    """An imported access key id: 1..128 ASCII letters, digits and _+=,.@- (no "/": SigV4 scopes split on it)."""
    if not isinstance(value, str) or not _ACCESS_KEY.fullmatch(value):
        raise InvalidArgument("an access key id is 1 to 128 ASCII letters, digits and _+=,.@-")
    return value


def validate_secret(value: object) -> str:
    """An imported secret: 1..128 printable ASCII characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or not value.isascii() or not value.isprintable():
        raise InvalidArgument("a secret key is 1 to 128 printable ASCII characters")
    return value


def new_access_key() -> str:
    """20 characters, upper-case letters and digits, AWS-like ("AKIA" + 16)."""
    return "AKIA" + "".join(secrets.choice(_UPPER) for _ in range(16))


def new_secret() -> str:
    """40 letters and digits (safe to paste into shells and config files)."""
    return "".join(secrets.choice(_SECRET) for _ in range(40))


def new_id(prefix: str) -> str:
    """A unique id like AWS's ("AIDA..." for users, "AGPA..." for groups): prefix + 17 upper-case characters."""
    return prefix + "".join(secrets.choice(_UPPER) for _ in range(17))
