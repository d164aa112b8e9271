"""IamService: users, groups, access keys (with rotation), managed and inline policies, attachments, root key
rotation and the policy simulator, over the IAM store. The admin API calls it (on a worker thread: every method is
blocking and runs whole store transactions).

Documents are validated with the injected `parse` (iam_policy.parse_policy for identity policies), built-in
policies come from `builtin` (iam_builtin.BUILTIN): both are given by the composition root. Secrets are sealed
with the SecretBox before they reach the store and are returned only by create_key/rotate_key/rotate_root.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from appliance.components import IamStore
from appliance.errors import EntityAlreadyExists, InvalidArgument, NoSuchEntity
from appliance.model import AccessKeyRecord, IamGroup, IamUser, ManagedPolicy, Principal
from appliance.service import iam_names as names
from appliance.service.iam_secrets import SecretBox
from appliance.service.iam_source import IamPolicySource, documents_of
from appliance.service.identity import Credentials, read_root, rotate_root

__all__ = ["ACCOUNT", "IamService", "IamSettings", "NewKey"]

ACCOUNT = "000000000000"  # the account number in ARNs: one appliance, one account
MAX_DOCUMENT = 10 * 1024  # bytes of one identity policy (AWS: 6,144 managed; we allow a little more)
MAX_INLINE = 10  # inline policies per user or group


@dataclasses.dataclass(frozen=True, slots=True)
class IamSettings:
    max_keys_per_user: int = 2
    max_attached: int = 20
    max_grace: float = 90 * 86400.0


@dataclasses.dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the only time its secret leaves the service."""

    record: AccessKeyRecord
    secret: str = dataclasses.field(repr=False)
    expiring: tuple[str, ...] = ()  # rotate_key: the old keys now ending with the grace


Decide = Callable[[Principal, list[Any], str, str, str], Mapping[str, Any]]


class IamService:
    def __init__(
        self,
        store: IamStore,
        box: SecretBox,
        *,
        parse: Callable[[str], Any],
        builtin: Mapping[str, str],
        root_file: Path,
        decide: Decide | None = None,
        settings: IamSettings = IamSettings(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._box = box
        self._parse = parse
        self._builtin = builtin
        self._root_file = root_file
        self._decide = decide
        self._settings = settings
        self._clock = clock
        self.source = IamPolicySource(store, box, parse=parse, builtin=builtin, clock=clock)

    # ---- users ----

    def create_user(self, name: object, *, path: object = "/", tags: object = None) -> IamUser:
        user_name = names.validate_name("user", name, names.MAX_USER_NAME)
        if user_name.lower() == "root":
            raise InvalidArgument("the user name root is reserved for the root key")
        user_path = names.validate_path(path)
        user = IamUser(
            name=user_name,
            user_id=names.new_id("AIDA"),
            arn=f"arn:aws:iam::{ACCOUNT}:user{user_path}{user_name}",
            created=self._clock(),
            path=user_path,
            tags=names.validate_tags(tags or {}),
        )
        self._store.iam_create_user(user)
        return user

    def list_users(self) -> list[IamUser]:
        return self._store.iam_list_users()

    def get_user(self, name: str) -> tuple[IamUser, list[IamGroup], list[AccessKeyRecord]]:
        user = self._store.iam_get_user(name)
        if user is None:
            raise NoSuchEntity(f"the user {name} does not exist")
        return user, self._store.iam_groups_of(user.name), self._store.iam_list_keys(user.name)

    def delete_user(self, name: str) -> list[str]:
        """Delete the user with its keys (refused on its next request), memberships and attachments."""
        return self._store.iam_delete_user(name)

    # ---- groups ----

    def create_group(self, name: object, *, path: object = "/") -> IamGroup:
        group_name = names.validate_name("group", name, names.MAX_GROUP_NAME)
        group_path = names.validate_path(path)
        group = IamGroup(
            name=group_name,
            group_id=names.new_id("AGPA"),
            arn=f"arn:aws:iam::{ACCOUNT}:group{group_path}{group_name}",
            created=self._clock(),
            path=group_path,
        )
        self._store.iam_create_group(group)
        return group

    def list_groups(self) -> list[IamGroup]:
        return self._store.iam_list_groups()

    def get_group(self, name: str) -> tuple[IamGroup, list[str]]:
        found = self._store.iam_get_group(name)
        if found is None:
            raise NoSuchEntity(f"the group {name} does not exist")
        return found

    def delete_group(self, name: str) -> None:
        self._store.iam_delete_group(name)

    def set_member(self, group: str, user: str, *, member: bool) -> bool:
        return self._store.iam_set_member(group, user, member=member)

    # ---- access keys ----

    def _record(self, user: str, access_key: str, secret: str, *, expires: float = 0.0) -> AccessKeyRecord:
        key_id, sealed = self._box.seal(access_key, secret)
        return AccessKeyRecord(
            access_key=access_key,
            user=user,
            status="Active",
            created=self._clock(),
            key_id=key_id,
            sealed=sealed,
            expires=expires,
        )

    def _check_not_root(self, access_key: str) -> None:
        if read_root(self._root_file).holds(access_key):
            raise EntityAlreadyExists(f"the access key {access_key} is a root key")

    def create_key(
        self, user: str, *, access_key: object = None, secret: object = None, expires: object = None
    ) -> NewKey:
        """A new active key for `user`: generated, or the given pair (an import keeps clients working)."""
        if (access_key is None) != (secret is None):
            raise InvalidArgument("give both access_key and secret_key, or neither")
        key = names.new_access_key() if access_key is None else names.validate_access_key(access_key)
        text = names.new_secret() if secret is None else names.validate_secret(secret)
        until = 0.0
        if expires is not None:
            if not isinstance(expires, (int, float)) or isinstance(expires, bool) or not math.isfinite(expires):
                raise InvalidArgument("expires must be a future time (seconds since the epoch)")
            if expires <= self._clock():
                raise InvalidArgument("expires must be a future time (seconds since the epoch)")
            until = float(expires)
        self._check_not_root(key)
        record = self._record(user, key, text, expires=until)
        self._store.iam_create_key(record, limit=self._settings.max_keys_per_user, now=self._clock())
        return NewKey(record, text)

    def list_keys(self, user: str) -> list[AccessKeyRecord]:
        return self._store.iam_list_keys(user)

    def set_key_status(self, access_key: str, *, active: bool) -> AccessKeyRecord:
        return self._store.iam_set_key_status(access_key, "Active" if active else "Inactive")

    def delete_key(self, access_key: str) -> None:
        self._store.iam_delete_key(access_key)

    def _grace(self, grace: object) -> float:
        if not isinstance(grace, (int, float)) or isinstance(grace, bool) or not 0 <= grace <= self._settings.max_grace:
            raise InvalidArgument(f"grace_seconds must be a number from 0 to {self._settings.max_grace:.0f}")
        return float(grace)

    def rotate_key(self, user: str, grace: object) -> NewKey:
        """A new key, active at once; the user's other usable keys stay valid for `grace` seconds more (their
        expiry), so clients switch over without downtime. Disabling or deleting an old key ends it sooner."""
        seconds = self._grace(grace)
        now = self._clock()
        text = names.new_secret()
        record = self._record(user, names.new_access_key(), text)
        expiring = self._store.iam_rotate_key(
            record, old_expires=now + seconds, limit=self._settings.max_keys_per_user, now=now
        )
        return NewKey(record, text, tuple(expiring))

    def rotate_root(self, grace: object) -> tuple[Credentials, float]:
        """A new root key pair; the old root key stays valid for `grace` seconds. Returns the pair and the time the
        old key stops working."""
        seconds = self._grace(grace)
        now = self._clock()
        _keys, creds = rotate_root(self._root_file, seconds, now)
        return creds, now + seconds

    # ---- policies ----

    def _document(self, document: object) -> str:
        if not isinstance(document, str):
            raise InvalidArgument("document must be the policy's JSON text (a string)")
        if len(document.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT:
            raise InvalidArgument(f"the policy document is larger than {MAX_DOCUMENT} bytes")
        self._parse(document)  # MalformedPolicy names the problem
        return document

    def put_policy(self, name: object, document: object, *, create: bool, description: object = "") -> ManagedPolicy:
        policy_name = names.validate_name("policy", name, names.MAX_POLICY_NAME)
        if policy_name in self._builtin:
            raise EntityAlreadyExists(f"{policy_name} is a built-in policy: choose another name")
        if not isinstance(description, str) or len(description) > 1000:
            raise InvalidArgument("description must be a string of at most 1000 characters")
        now = self._clock()
        policy = ManagedPolicy(
            name=policy_name,
            arn=f"arn:aws:iam::{ACCOUNT}:policy/{policy_name}",
            document=self._document(document),
            created=now,
            updated=now,
            description=description,
        )
        return self._store.iam_put_policy(policy, create=create)

    def get_policy(self, name: str) -> tuple[ManagedPolicy, bool, list[tuple[str, str]]]:
        """(policy, built-in?, the users and groups it is attached to)."""
        if name in self._builtin:
            policy = ManagedPolicy(name, f"arn:aws:iam::aws:policy/{name}", self._builtin[name], 0.0, 0.0)
            return policy, True, self._store.iam_policy_entities(name)
        found = self._store.iam_get_policy(name)
        if found is None:
            raise NoSuchEntity(f"the policy {name} does not exist")
        return found, False, self._store.iam_policy_entities(found.name)

    def list_policies(self) -> list[tuple[ManagedPolicy, bool]]:
        builtins = [
            (ManagedPolicy(name, f"arn:aws:iam::aws:policy/{name}", doc, 0.0, 0.0), True)
            for name, doc in sorted(self._builtin.items())
        ]
        return builtins + [(p, False) for p in self._store.iam_list_policies()]

    def delete_policy(self, name: str) -> None:
        if name in self._builtin:
            raise InvalidArgument(f"{name} is a built-in policy; it cannot be deleted")
        self._store.iam_delete_policy(name)

    def attach(self, kind: str, entity: str, policy: str, *, attach: bool) -> bool:
        if kind not in ("user", "group"):
            raise InvalidArgument("policies attach to a user or a group")
        return self._store.iam_attach(
            kind, entity, policy, attach=attach, builtin=policy in self._builtin, limit=self._settings.max_attached
        )

    def put_inline(self, kind: str, entity: str, name: object, document: object) -> None:
        policy_name = names.validate_name("policy", name, names.MAX_POLICY_NAME)
        text = self._document(document)

        def change(record: Any) -> Any:
            inline = [(n, d) for n, d in record.inline if n != policy_name]
            if len(inline) >= MAX_INLINE:
                raise InvalidArgument(f"at most {MAX_INLINE} inline policies per {kind}")
            return dataclasses.replace(record, inline=tuple(sorted([*inline, (policy_name, text)])))

        self._modify(kind, entity, change)

    def delete_inline(self, kind: str, entity: str, name: str) -> None:
        def change(record: Any) -> Any:
            inline = tuple((n, d) for n, d in record.inline if n != name)
            if len(inline) == len(record.inline):
                raise NoSuchEntity(f"the {kind} {entity} has no inline policy {name}")
            return dataclasses.replace(record, inline=inline)

        self._modify(kind, entity, change)

    def _modify(self, kind: str, entity: str, change: Callable[[Any], Any]) -> None:
        if kind == "user":
            self._store.iam_modify_user(entity, change)
        elif kind == "group":
            self._store.iam_modify_group(entity, change)
        else:
            raise InvalidArgument("inline policies belong to a user or a group")

    # ---- simulator ----

    def simulate(self, user: str, action: object, resource: object, source_ip: object = "") -> dict[str, Any]:
        """What the S3 app's identity-policy decision would be for `user` (the simulator core is iam_authorize's)."""
        if not isinstance(action, str) or not action or len(action) > 200:
            raise InvalidArgument("action must be a non-empty string such as s3:GetObject")
        if not isinstance(resource, str) or not resource or len(resource) > 2048:
            raise InvalidArgument("resource must be an ARN such as arn:aws:s3:::bucket/key, or *")
        if not isinstance(source_ip, str) or len(source_ip) > 64:
            raise InvalidArgument("source_ip must be an IP address")
        if self._decide is None:
            raise InvalidArgument("the policy simulator is not available in this build")
        found, groups, keys = self.get_user(user)
        # A signed request: the user's first key, or a stand-in (an empty key would make the principal anonymous).
        access_key = keys[0].access_key if keys else "SIMULATOR"
        principal = Principal(
            user=found.name, access_key=access_key, account=found.user_id, groups=tuple(g.name for g in groups)
        )
        view = self._store.iam_view(found.name)
        sources = documents_of(view, self._builtin)
        policies = [self._parse(document) for _where, document in sources]
        decision = dict(self._decide(principal, policies, action, resource, source_ip))
        decision["policies"] = [where for where, _ in sources]
        return decision
