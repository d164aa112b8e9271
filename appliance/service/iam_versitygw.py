"""Import versitygw's internal IAM (`<iam-dir>/users.json`, auth/iam_internal.go) as IAM users with the same access
keys and secrets, so clients keep working after a migration. Pure: reading and planning; the CLI applies the plan
through the admin API.

users.json is {"accessAccounts": {<access key>: {"access", "secret", "role", "userID", "groupID", "projectID"}}}.
The map key is the access key (a mismatching inner "access" is ignored, as versitygw does); the ID fields are JSON
integers defaulting to 0; any role other than admin/userplus behaves as user. The root account is not in the file.

Role mapping (docs/iam.md):
    admin     -> the built-in `admin` policy (everything, like versitygw's admin that bypasses ACLs and policies)
    userplus  -> `readwrite` (every S3 action, CreateBucket included)
    user      -> `readwrite` plus the inline policy `versitygw-user` denying s3:CreateBucket; which buckets it may use
                 is then decided by bucket ownership and bucket policies/ACLs, as in versitygw
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import InvalidArgument, RequestError
from appliance.service import iam_names as names

__all__ = [
    "NO_CREATE_BUCKET",
    "ROLE_POLICIES",
    "ImportedAccount",
    "PlannedUser",
    "plan_import",
    "read_users_json",
]

MAX_FILE = 64 * 1024 * 1024
NO_CREATE_BUCKET = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "VersitygwUser", "Effect": "Deny", "Action": "s3:CreateBucket", "Resource": "*"}],
    },
    separators=(",", ":"),
)
ROLE_POLICIES: dict[str, tuple[str, ...]] = {"admin": ("admin",), "userplus": ("readwrite",), "user": ("readwrite",)}


@dataclass(frozen=True, slots=True)
class ImportedAccount:
    access: str
    secret: str = field(repr=False)
    role: str  # as written in the file
    user_id: int = 0
    group_id: int = 0
    project_id: int = 0

    @property
    def effective_role(self) -> str:
        return self.role if self.role in ("admin", "userplus") else "user"


@dataclass(frozen=True, slots=True)
class PlannedUser:
    """One user to create (or bring up to date) with its key, policies and tags."""

    name: str
    account: ImportedAccount
    policies: tuple[str, ...]
    inline: tuple[tuple[str, str], ...]
    tags: Mapping[str, str]


def _int(value: Any, what: str, access: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"users.json: account {access!r}: {what} must be an integer")
    return value


def read_users_json(iam_dir: Path) -> list[ImportedAccount]:
    """The accounts of `<iam_dir>/users.json` (only users.json: users.json.backup is versitygw's own copy)."""
    path = iam_dir / "users.json"
    try:
        if path.stat().st_size > MAX_FILE:
            raise RequestError(f"{path} is larger than {MAX_FILE} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RequestError(f"cannot read {path}: {exc.strerror}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"{path} is not JSON: {str(exc)[:100]}") from exc
    accounts = data.get("accessAccounts") if isinstance(data, dict) else None
    if accounts is None:
        accounts = {}
    if not isinstance(accounts, dict):
        raise RequestError(f"{path}: accessAccounts must be an object keyed by access key")
    out = []
    for access, entry in sorted(accounts.items()):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"users.json: account {access!r} must be an object")
        secret, role = entry.get("secret", ""), entry.get("role", "")
        if not isinstance(secret, str) or not isinstance(role, str):
            raise InvalidArgument(f"users.json: account {access!r}: secret and role must be strings")
        out.append(
            ImportedAccount(
                access=access,
                secret=secret,
                role=role,
                user_id=_int(entry.get("userID"), "userID", access),
                group_id=_int(entry.get("groupID"), "groupID", access),
                project_id=_int(entry.get("projectID"), "projectID", access),
            )
        )
    return out


def _user_name(access: str) -> str:
    """The IAM user name of an account: its access key when that is a valid name, else vgw- + its safe part."""
    try:
        if access.lower() == "root":  # reserved here for the root key
            raise InvalidArgument("reserved")
        return names.validate_name("user", access, names.MAX_USER_NAME)
    except InvalidArgument:
        safe = "".join(ch for ch in access if ch.isascii() and (ch.isalnum() or ch in "_+=,.@-"))[:50]
        return names.validate_name("user", f"vgw-{safe or 'account'}", names.MAX_USER_NAME)


def plan_import(
    accounts: list[ImportedAccount], *, root: ImportedAccount | None = None
) -> tuple[list[PlannedUser], list[str]]:
    """The users to create and the problems that keep an account out (bad access key or secret, name clash)."""
    planned: list[PlannedUser] = []
    problems: list[str] = []
    taken: dict[str, str] = {}
    everyone = [*accounts, *([root] if root is not None else [])]
    for account in everyone:
        try:
            names.validate_access_key(account.access)
            names.validate_secret(account.secret)
        except InvalidArgument as exc:
            problems.append(f"account {account.access[:40]!r} skipped: {exc.message}")
            continue
        name = "versitygw-root" if account is root else _user_name(account.access)
        if name.lower() in taken:
            problems.append(f"account {account.access!r} skipped: user name {name} is also {taken[name.lower()]!r}")
            continue
        taken[name.lower()] = account.access
        role = "admin" if account is root else account.effective_role
        tags = {"versitygw-role": "root" if account is root else account.effective_role}
        if account.user_id or account.group_id or account.project_id:
            tags |= {
                "versitygw-uid": str(account.user_id),
                "versitygw-gid": str(account.group_id),
                "versitygw-project": str(account.project_id),
            }
        inline = (("versitygw-user", NO_CREATE_BUCKET),) if role == "user" else ()
        planned.append(PlannedUser(name, account, ROLE_POLICIES[role], inline, tags))
    return planned, problems
