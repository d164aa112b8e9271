"""IAM's side of the metadata store (schema 6): users, groups and memberships, access keys (secrets sealed by the
caller), managed policies, inline policies and attachments, in the `iam` database; last-used times in `iam_usage`.

Layout of `iam` (names are folded to lower case in keys, so "Alice" and "alice" are one user, as in AWS IAM;
records keep the name as created):

    b"u" + user                      -> user record (JSON: model.IamUser, inline and attached policies included)
    b"g" + group                     -> group record (JSON: model.IamGroup)
    b"m" + group + NUL + user        -> b""   membership, by group
    b"n" + user + NUL + group        -> b""   membership, by user
    b"k" + access key id             -> access key record (JSON: model.AccessKeyRecord, the secret sealed)
    b"K" + user + NUL + access key   -> b""   a user's keys
    b"p" + policy                    -> managed policy record (JSON: model.ManagedPolicy)
    b"a" + policy + NUL + b"u"|b"g" + entity -> b""   attachments, by policy (built-in names too)

Every public method is one whole transaction; every write bumps the change counter (meta b"iam_generation") in the
same transaction, so a process that reads an unchanged counter knows its cached IAM view is current. Recording
last-used times does not bump it (that would empty every worker's cache on every request).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any

from appliance.errors import BackendError, DeleteConflict, EntityAlreadyExists, IamLimitExceeded, NoSuchEntity
from appliance.model import AccessKeyRecord, IamGroup, IamUser, IamView, ManagedPolicy
from appliance.state import keys
from appliance.state.store_base import StoreBase
from appliance.state.store_base import guarded as _guarded

__all__ = ["GENERATION_KEY", "IamMethods"]

GENERATION_KEY = b"iam_generation"
_COUNTER = struct.Struct(">Q")


def _fold(name: str) -> bytes:
    return name.lower().encode("utf-8")


def _dump(record: Any) -> bytes:
    data = dataclasses.asdict(record)
    if isinstance(record, AccessKeyRecord):
        data["sealed"] = base64.b64encode(record.sealed).decode("ascii")
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _pairs(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(b)) for a, b in raw)


def _load_user(raw: bytes) -> IamUser:
    d = json.loads(raw)
    return IamUser(
        name=d["name"],
        user_id=d["user_id"],
        arn=d["arn"],
        created=float(d["created"]),
        path=d.get("path", "/"),
        tags=_pairs(d.get("tags", ())),
        inline=_pairs(d.get("inline", ())),
        attached=tuple(d.get("attached", ())),
    )


def _load_group(raw: bytes) -> IamGroup:
    d = json.loads(raw)
    return IamGroup(
        name=d["name"],
        group_id=d["group_id"],
        arn=d["arn"],
        created=float(d["created"]),
        path=d.get("path", "/"),
        inline=_pairs(d.get("inline", ())),
        attached=tuple(d.get("attached", ())),
    )


def _load_key(raw: bytes) -> AccessKeyRecord:
    d = json.loads(raw)
    return AccessKeyRecord(
        access_key=d["access_key"],
        user=d["user"],
        status=d["status"],
        created=float(d["created"]),
        key_id=d["key_id"],
        sealed=base64.b64decode(d["sealed"]),
        expires=float(d.get("expires", 0.0)),
        last_used=float(d.get("last_used", 0.0)),
    )


def _load_policy(raw: bytes) -> ManagedPolicy:
    d = json.loads(raw)
    return ManagedPolicy(**d)


def _decode(load: Callable[[bytes], Any], raw: Any, what: str) -> Any:
    try:
        return load(bytes(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise BackendError(f"an unreadable IAM {what} record in the metadata store") from exc


class IamMethods(StoreBase):
    """The IAM methods of LmdbMetadataStore (components.IamStore)."""

    # ---- helpers inside a transaction ----

    def _bump(self, txn: Any) -> None:
        raw = txn.get(GENERATION_KEY, db=self._dbs.meta)
        current = _COUNTER.unpack(bytes(raw))[0] if raw is not None else 0
        txn.put(GENERATION_KEY, _COUNTER.pack(current + 1), db=self._dbs.meta)

    def _get(self, txn: Any, key: bytes) -> bytes | None:
        raw = txn.get(key, db=self._dbs.iam)
        return None if raw is None else bytes(raw)

    def _scan(self, txn: Any, prefix: bytes) -> list[tuple[bytes, bytes]]:
        cursor = txn.cursor(db=self._dbs.iam)
        out: list[tuple[bytes, bytes]] = []
        if not cursor.set_range(prefix):
            return out
        for raw_key, raw in cursor.iternext():
            k = bytes(raw_key)
            if not k.startswith(prefix):
                break
            out.append((k, bytes(raw)))
        return out

    def _user(self, txn: Any, name: str) -> IamUser:
        raw = self._get(txn, b"u" + _fold(name))
        if raw is None:
            raise NoSuchEntity(f"the user {name} does not exist")
        user: IamUser = _decode(_load_user, raw, "user")
        return user

    def _group(self, txn: Any, name: str) -> IamGroup:
        raw = self._get(txn, b"g" + _fold(name))
        if raw is None:
            raise NoSuchEntity(f"the group {name} does not exist")
        group: IamGroup = _decode(_load_group, raw, "group")
        return group

    def _key(self, txn: Any, access_key: str) -> AccessKeyRecord:
        raw = self._get(txn, b"k" + access_key.encode("utf-8"))
        if raw is None:
            raise NoSuchEntity(f"the access key {access_key} does not exist")
        record: AccessKeyRecord = _decode(_load_key, raw, "access key")
        return record

    def _user_keys(self, txn: Any, user: str) -> list[AccessKeyRecord]:
        head = b"K" + _fold(user) + b"\x00"
        return [self._key(txn, k[len(head) :].decode("utf-8")) for k, _ in self._scan(txn, head)]

    def _user_groups(self, txn: Any, user: str) -> list[IamGroup]:
        head = b"n" + _fold(user) + b"\x00"
        return [self._group(txn, k[len(head) :].decode("utf-8")) for k, _ in self._scan(txn, head)]

    def _put_key(self, txn: Any, record: AccessKeyRecord) -> None:
        txn.put(b"k" + record.access_key.encode("utf-8"), _dump(record), db=self._dbs.iam)
        txn.put(b"K" + _fold(record.user) + b"\x00" + record.access_key.encode("utf-8"), b"", db=self._dbs.iam)

    def _drop_key(self, txn: Any, record: AccessKeyRecord) -> None:
        txn.delete(b"k" + record.access_key.encode("utf-8"), db=self._dbs.iam)
        txn.delete(b"K" + _fold(record.user) + b"\x00" + record.access_key.encode("utf-8"), db=self._dbs.iam)
        txn.delete(record.access_key.encode("utf-8"), db=self._dbs.iam_usage)

    def _with_usage(self, txn: Any, record: AccessKeyRecord) -> AccessKeyRecord:
        raw = txn.get(record.access_key.encode("utf-8"), db=self._dbs.iam_usage)
        return record if raw is None else dataclasses.replace(record, last_used=keys.unpack_time(bytes(raw)))

    # ---- the change counter ----

    @_guarded
    def iam_generation(self) -> int:
        """The IAM change counter: it moves on every IAM write, in any process."""
        with self._env.begin() as txn:
            raw = txn.get(GENERATION_KEY, db=self._dbs.meta)
            return int(_COUNTER.unpack(bytes(raw))[0]) if raw is not None else 0

    # ---- users ----

    @_guarded
    def iam_create_user(self, user: IamUser) -> None:
        with self._env.begin(write=True) as txn:
            if not txn.put(b"u" + _fold(user.name), _dump(user), db=self._dbs.iam, overwrite=False):
                raise EntityAlreadyExists(f"the user {user.name} exists already")
            self._bump(txn)

    @_guarded
    def iam_get_user(self, name: str) -> IamUser | None:
        with self._env.begin() as txn:
            raw = self._get(txn, b"u" + _fold(name))
            return None if raw is None else _decode(_load_user, raw, "user")

    @_guarded
    def iam_list_users(self) -> list[IamUser]:
        with self._env.begin() as txn:
            return [_decode(_load_user, raw, "user") for _, raw in self._scan(txn, b"u")]

    @_guarded
    def iam_modify_user(self, name: str, change: Callable[[IamUser], IamUser]) -> IamUser:
        """Replace the user's record by `change(record)` (tags, inline policies) in one transaction."""
        with self._env.begin(write=True) as txn:
            user = self._user(txn, name)
            updated = change(user)
            if _fold(updated.name) != _fold(user.name) or updated.attached != user.attached:
                raise ValueError("iam_modify_user cannot rename a user or change its attachments")
            txn.put(b"u" + _fold(name), _dump(updated), db=self._dbs.iam)
            self._bump(txn)
            return updated

    @_guarded
    def iam_delete_user(self, name: str) -> list[str]:
        """Delete the user with its access keys, memberships and attachments; returns the deleted key ids."""
        with self._env.begin(write=True) as txn:
            user = self._user(txn, name)
            gone = []
            for record in self._user_keys(txn, name):
                self._drop_key(txn, record)
                gone.append(record.access_key)
            for group in self._user_groups(txn, name):
                txn.delete(b"m" + _fold(group.name) + b"\x00" + _fold(name), db=self._dbs.iam)
                txn.delete(b"n" + _fold(name) + b"\x00" + _fold(group.name), db=self._dbs.iam)
            for policy in user.attached:
                txn.delete(b"a" + _fold(policy) + b"\x00u" + _fold(name), db=self._dbs.iam)
            txn.delete(b"u" + _fold(name), db=self._dbs.iam)
            self._bump(txn)
            return gone

    # ---- groups ----

    @_guarded
    def iam_create_group(self, group: IamGroup) -> None:
        with self._env.begin(write=True) as txn:
            if not txn.put(b"g" + _fold(group.name), _dump(group), db=self._dbs.iam, overwrite=False):
                raise EntityAlreadyExists(f"the group {group.name} exists already")
            self._bump(txn)

    @_guarded
    def iam_get_group(self, name: str) -> tuple[IamGroup, list[str]] | None:
        """The group and its members' names."""
        with self._env.begin() as txn:
            raw = self._get(txn, b"g" + _fold(name))
            if raw is None:
                return None
            head = b"m" + _fold(name) + b"\x00"
            members = [self._user(txn, k[len(head) :].decode("utf-8")).name for k, _ in self._scan(txn, head)]
            return _decode(_load_group, raw, "group"), members

    @_guarded
    def iam_list_groups(self) -> list[IamGroup]:
        with self._env.begin() as txn:
            return [_decode(_load_group, raw, "group") for _, raw in self._scan(txn, b"g")]

    @_guarded
    def iam_modify_group(self, name: str, change: Callable[[IamGroup], IamGroup]) -> IamGroup:
        """Replace the group's record by `change(record)` (inline policies) in one transaction."""
        with self._env.begin(write=True) as txn:
            group = self._group(txn, name)
            updated = change(group)
            if _fold(updated.name) != _fold(group.name) or updated.attached != group.attached:
                raise ValueError("iam_modify_group cannot rename a group or change its attachments")
            txn.put(b"g" + _fold(name), _dump(updated), db=self._dbs.iam)
            self._bump(txn)
            return updated

    @_guarded
    def iam_delete_group(self, name: str) -> None:
        """Delete the group with its memberships and attachments."""
        with self._env.begin(write=True) as txn:
            group = self._group(txn, name)
            head = b"m" + _fold(name) + b"\x00"
            for k, _ in self._scan(txn, head):
                txn.delete(k, db=self._dbs.iam)
                txn.delete(b"n" + k[len(head) :] + b"\x00" + _fold(name), db=self._dbs.iam)
            for policy in group.attached:
                txn.delete(b"a" + _fold(policy) + b"\x00g" + _fold(name), db=self._dbs.iam)
            txn.delete(b"g" + _fold(name), db=self._dbs.iam)
            self._bump(txn)

    @_guarded
    def iam_set_member(self, group: str, user: str, *, member: bool) -> bool:
        """Add (`member`) or remove `user` in `group`; False when nothing changed."""
        with self._env.begin(write=True) as txn:
            self._group(txn, group)
            self._user(txn, user)
            by_group = b"m" + _fold(group) + b"\x00" + _fold(user)
            by_user = b"n" + _fold(user) + b"\x00" + _fold(group)
            if member:
                changed = bool(txn.put(by_group, b"", db=self._dbs.iam, overwrite=False))
                txn.put(by_user, b"", db=self._dbs.iam)
            else:
                changed = bool(txn.delete(by_group, db=self._dbs.iam))
                txn.delete(by_user, db=self._dbs.iam)
            if changed:
                self._bump(txn)
            return changed

    @_guarded
    def iam_groups_of(self, user: str) -> list[IamGroup]:
        with self._env.begin() as txn:
            self._user(txn, user)
            return self._user_groups(txn, user)

    # ---- access keys ----

    @_guarded
    def iam_create_key(self, record: AccessKeyRecord, *, limit: int, now: float) -> None:
        """Store a new key of an existing user (keys past their expiry are removed first; at most `limit` stay)."""
        with self._env.begin(write=True) as txn:
            self._user(txn, record.user)
            self._insert_key(txn, record, limit=limit, now=now)
            self._bump(txn)

    def _insert_key(self, txn: Any, record: AccessKeyRecord, *, limit: int, now: float) -> None:
        if self._get(txn, b"k" + record.access_key.encode("utf-8")) is not None:
            raise EntityAlreadyExists(f"the access key {record.access_key} exists already")
        current = []
        for old in self._user_keys(txn, record.user):
            if old.expires and old.expires <= now:
                self._drop_key(txn, old)
            else:
                current.append(old)
        if len(current) >= limit:
            raise IamLimitExceeded(
                f"the user {record.user} has {len(current)} access keys (the limit is {limit}): delete one first"
            )
        self._put_key(txn, record)

    @_guarded
    def iam_rotate_key(self, record: AccessKeyRecord, *, old_expires: float, limit: int, now: float) -> list[str]:
        """Store the new key `record` and make every other usable key of its user expire at `old_expires` (sooner
        expiries stay), in one transaction; returns the ids of the keys now expiring."""
        with self._env.begin(write=True) as txn:
            self._user(txn, record.user)
            expiring = []
            for old in self._user_keys(txn, record.user):
                if old.usable(now) and (not old.expires or old.expires > old_expires):
                    self._put_key(txn, dataclasses.replace(old, expires=old_expires))
                    expiring.append(old.access_key)
            self._insert_key(txn, record, limit=limit + len(expiring), now=now)
            self._bump(txn)
            return expiring

    @_guarded
    def iam_get_key(self, access_key: str) -> AccessKeyRecord | None:
        with self._env.begin() as txn:
            raw = self._get(txn, b"k" + access_key.encode("utf-8"))
            if raw is None:
                return None
            return self._with_usage(txn, _decode(_load_key, raw, "access key"))

    @_guarded
    def iam_list_keys(self, user: str) -> list[AccessKeyRecord]:
        with self._env.begin() as txn:
            self._user(txn, user)
            return [self._with_usage(txn, record) for record in self._user_keys(txn, user)]

    @_guarded
    def iam_set_key_status(self, access_key: str, status: str) -> AccessKeyRecord:
        with self._env.begin(write=True) as txn:
            record = dataclasses.replace(self._key(txn, access_key), status=status)
            self._put_key(txn, record)
            self._bump(txn)
            return record

    @_guarded
    def iam_delete_key(self, access_key: str) -> None:
        with self._env.begin(write=True) as txn:
            self._drop_key(txn, self._key(txn, access_key))
            self._bump(txn)

    @_guarded
    def iam_record_use(self, uses: Mapping[str, float]) -> None:
        """Last-used times, batched by the caller (no change-counter bump: caches stay valid)."""
        with self._env.begin(write=True) as txn:
            for access_key, when in uses.items():
                if txn.get(b"k" + access_key.encode("utf-8"), db=self._dbs.iam) is not None:
                    txn.put(access_key.encode("utf-8"), keys.pack_time(when), db=self._dbs.iam_usage)

    @_guarded
    def iam_identity(self, access_key: str) -> tuple[AccessKeyRecord, IamUser, tuple[str, ...]] | None:
        """The key, its user and the user's group names, read together (None when the key is unknown)."""
        with self._env.begin() as txn:
            raw = self._get(txn, b"k" + access_key.encode("utf-8"))
            if raw is None:
                return None
            record: AccessKeyRecord = _decode(_load_key, raw, "access key")
            groups = tuple(g.name for g in self._user_groups(txn, record.user))
            return record, self._user(txn, record.user), groups

    @_guarded
    def iam_view(self, user: str) -> IamView:
        """The user, its groups and the managed documents they attach, in one transaction."""
        with self._env.begin() as txn:
            found = self._user(txn, user)
            groups = tuple(self._user_groups(txn, user))
            managed: dict[str, str] = {}
            for name in {*found.attached, *(p for g in groups for p in g.attached)}:
                raw = self._get(txn, b"p" + _fold(name))
                if raw is not None:
                    managed[name] = _decode(_load_policy, raw, "policy").document
            return IamView(found, groups, managed)

    # ---- managed policies and attachments ----

    @_guarded
    def iam_put_policy(self, policy: ManagedPolicy, *, create: bool) -> ManagedPolicy:
        """Create (`create`) or update a managed policy; an update keeps `created` and counts the version."""
        with self._env.begin(write=True) as txn:
            key = b"p" + _fold(policy.name)
            raw = self._get(txn, key)
            if create and raw is not None:
                raise EntityAlreadyExists(f"the policy {policy.name} exists already")
            if not create:
                if raw is None:
                    raise NoSuchEntity(f"the policy {policy.name} does not exist")
                old: ManagedPolicy = _decode(_load_policy, raw, "policy")
                policy = dataclasses.replace(policy, name=old.name, created=old.created, version=old.version + 1)
            txn.put(key, _dump(policy), db=self._dbs.iam)
            self._bump(txn)
            return policy

    @_guarded
    def iam_get_policy(self, name: str) -> ManagedPolicy | None:
        with self._env.begin() as txn:
            raw = self._get(txn, b"p" + _fold(name))
            return None if raw is None else _decode(_load_policy, raw, "policy")

    @_guarded
    def iam_list_policies(self) -> list[ManagedPolicy]:
        with self._env.begin() as txn:
            return [_decode(_load_policy, raw, "policy") for _, raw in self._scan(txn, b"p")]

    @_guarded
    def iam_policy_entities(self, name: str) -> list[tuple[str, str]]:
        """("user" | "group", name) of everything `name` is attached to."""
        with self._env.begin() as txn:
            return self._entities(txn, name)

    def _entities(self, txn: Any, name: str) -> list[tuple[str, str]]:
        head = b"a" + _fold(name) + b"\x00"
        out = []
        for k, _ in self._scan(txn, head):
            kind, entity = k[len(head) : len(head) + 1], k[len(head) + 1 :].decode("utf-8")
            if kind == b"u":
                out.append(("user", self._user(txn, entity).name))
            else:
                out.append(("group", self._group(txn, entity).name))
        return out

    @_guarded
    def iam_delete_policy(self, name: str) -> None:
        with self._env.begin(write=True) as txn:
            if self._get(txn, b"p" + _fold(name)) is None:
                raise NoSuchEntity(f"the policy {name} does not exist")
            attached = self._entities(txn, name)
            if attached:
                listed = ", ".join(f"{kind} {entity}" for kind, entity in attached[:5])
                raise DeleteConflict(f"the policy {name} is attached to {listed}: detach it first")
            txn.delete(b"p" + _fold(name), db=self._dbs.iam)
            self._bump(txn)

    @_guarded
    def iam_attach(self, kind: str, entity: str, policy: str, *, attach: bool, builtin: bool, limit: int) -> bool:
        """Attach (`attach`) or detach a managed policy (or the built-in `policy` when `builtin`) on a user or group
        ("user" | "group"); False when nothing changed."""
        with self._env.begin(write=True) as txn:
            record: IamUser | IamGroup = self._user(txn, entity) if kind == "user" else self._group(txn, entity)
            if attach and not builtin and self._get(txn, b"p" + _fold(policy)) is None:
                raise NoSuchEntity(f"the policy {policy} does not exist")
            names = [p for p in record.attached if _fold(p) != _fold(policy)]
            present = len(names) != len(record.attached)
            if attach == present:
                return False
            if attach:
                if len(names) >= limit:
                    raise IamLimitExceeded(f"the {kind} {record.name} has {limit} attached policies (the limit)")
                names.append(policy)
            index = b"a" + _fold(policy) + b"\x00" + kind[:1].encode("ascii") + _fold(record.name)
            if attach:
                txn.put(index, b"", db=self._dbs.iam)
            else:
                txn.delete(index, db=self._dbs.iam)
            updated = dataclasses.replace(record, attached=tuple(names))
            txn.put((b"u" if kind == "user" else b"g") + _fold(record.name), _dump(updated), db=self._dbs.iam)
            self._bump(txn)
            return True
