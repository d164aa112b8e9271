"""IamService over a real LMDB store: users, groups, keys (generation, import, status, rotation with grace),
policies and attachments, the policy source (cache, expiry, fail closed), root rotation, names and Unicode tricks."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    IamLimitExceeded,
    InvalidArgument,
    MalformedPolicy,
    NoSuchEntity,
)
from appliance.service.iam import IamService
from appliance.service.identity import Identity, read_root
from appliance.state import LmdbMetadataStore
from tests.unit.service.iam_support import ALLOW_GET, Clock, make_service


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def iam(tmp_path: Path, store: LmdbMetadataStore, clock: Clock) -> IamService:
    return make_service(tmp_path, store, clock)


def test_user_lifecycle_and_case_insensitive_names(iam: IamService) -> None:
    user = iam.create_user("Alice", path="/eng/", tags={"team": "storage"})
    assert user.arn == "arn:aws:iam::000000000000:user/eng/Alice"
    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", user.user_id)
    with pytest.raises(EntityAlreadyExists):
        iam.create_user("alice")  # IAM names are unique regardless of case
    found, groups, keys = iam.get_user("ALICE")
    assert (found.name, groups, keys) == ("Alice", [], [])
    assert [u.name for u in iam.list_users()] == ["Alice"]
    assert iam.delete_user("alice") == []
    with pytest.raises(NoSuchEntity):
        iam.get_user("Alice")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "non-empty"),
        ("a" * 65, "limit is 64"),
        ("bad name", "only letters"),
        ("a/b", "only letters"),
        ("alice\u200b", "control or invisible"),  # zero-width space
        ("alice\x00", "control or invisible"),
        ("\uff41\uff4c\uff49\uff43\uff45", "normal form"),  # full-width "alice": NFKC folds it to "alice"
        ("\u0430lice", "look-alike"),  # Cyrillic a
        ("\ufb01le", "normal form"),  # the fi ligature
        ("root", "reserved"),
    ],
)
def test_bad_user_names_are_refused(iam: IamService, name: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        iam.create_user(name)


def test_bad_paths_and_tags(iam: IamService) -> None:
    for path in ("eng", "/eng", "/e g/", "/\u0435/"):
        with pytest.raises(InvalidArgument):
            iam.create_user("bob", path=path)
    for tags in ([("a", "b")], {"a": 1}, {"": "x"}, {f"k{i}": "v" for i in range(51)}):
        with pytest.raises(InvalidArgument):
            iam.create_user("bob", tags=tags)


def test_groups_and_membership(iam: IamService) -> None:
    iam.create_user("alice")
    iam.create_group("ops")
    assert iam.set_member("ops", "alice", member=True)
    assert not iam.set_member("OPS", "Alice", member=True)
    assert iam.get_group("ops")[1] == ["alice"]
    assert [g.name for g in iam.get_user("alice")[1]] == ["ops"]
    with pytest.raises(NoSuchEntity):
        iam.set_member("ops", "nobody", member=True)
    iam.delete_group("ops")
    assert iam.get_user("alice")[1] == []


def test_keys_generated_shown_once_and_checked(iam: IamService) -> None:
    iam.create_user("alice")
    new = iam.create_key("alice")
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", new.record.access_key)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", new.secret)
    assert new.secret not in repr(new) and new.secret not in repr(new.record)
    principal, secret = iam.source.principal_for(new.record.access_key) or (None, "")
    assert secret == new.secret and principal is not None and principal.user == "alice"
    assert principal.account == iam.get_user("alice")[0].user_id
    listed = iam.list_keys("alice")
    assert [k.access_key for k in listed] == [new.record.access_key]
    iam.create_key("alice")
    with pytest.raises(IamLimitExceeded):
        iam.create_key("alice")
    with pytest.raises(NoSuchEntity):
        iam.create_key("nobody")


def test_disabled_deleted_and_expired_keys_are_refused(iam: IamService, clock: Clock) -> None:
    iam.create_user("alice")
    key = iam.create_key("alice").record.access_key
    assert iam.source.principal_for(key) is not None  # cached now
    iam.set_key_status(key, active=False)
    assert iam.source.principal_for(key) is None
    iam.set_key_status(key, active=True)
    assert iam.source.principal_for(key) is not None
    iam.delete_key(key)
    assert iam.source.principal_for(key) is None
    timed = iam.create_key("alice", expires=clock.now + 10).record.access_key
    assert iam.source.principal_for(timed) is not None
    clock.now += 11
    assert iam.source.principal_for(timed) is None
    with pytest.raises(InvalidArgument):
        iam.create_key("alice", expires=clock.now - 1)


def test_imported_key_keeps_its_secret_and_root_keys_are_refused(iam: IamService, tmp_path: Path) -> None:
    iam.create_user("carol")
    new = iam.create_key("carol", access_key="carol", secret="s3cr3t")
    assert iam.source.principal_for("carol") is not None
    assert (iam.source.principal_for("carol") or (None, ""))[1] == "s3cr3t" == new.secret
    with pytest.raises(EntityAlreadyExists):
        iam.create_key("carol", access_key="carol", secret="other")
    root = read_root(tmp_path / "keys" / "root.json").current.access_key
    with pytest.raises(EntityAlreadyExists, match="root key"):
        iam.create_key("carol", access_key=root, secret="x")
    for bad in ({"access_key": "a/b", "secret": "x"}, {"access_key": "ok", "secret": "\n"}, {"access_key": "ok"}):
        with pytest.raises(InvalidArgument):
            iam.create_key("carol", **bad)


def test_rotate_key_with_grace(iam: IamService, clock: Clock) -> None:
    iam.create_user("alice")
    old = iam.create_key("alice").record.access_key
    new = iam.rotate_key("alice", 60)
    assert new.expiring == (old,)
    assert iam.source.principal_for(old) is not None  # both work during the grace
    assert iam.source.principal_for(new.record.access_key) is not None
    clock.now += 61
    assert iam.source.principal_for(old) is None
    assert iam.source.principal_for(new.record.access_key) is not None
    again = iam.rotate_key("alice", 0)  # grace 0: the old key ends at once (expired keys are removed)
    assert [k.access_key for k in iam.list_keys("alice")] == [again.record.access_key]
    assert iam.source.principal_for(new.record.access_key) is None
    for grace in (-1, "1h", True, 10**9):
        with pytest.raises(InvalidArgument):
            iam.rotate_key("alice", grace)


def test_root_rotation_with_grace(iam: IamService, tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "keys" / "root.json"
    before = read_root(path)
    identity = Identity([], root_file=path, users=iam.source, clock=clock)
    assert identity.lookup_secret(before.current.access_key) == before.current.secret_key
    creds, until = iam.rotate_root(30)
    assert until == clock.now + 30
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    fresh = Identity([], root_file=path, users=iam.source, clock=clock)
    assert fresh.lookup_secret(creds.access_key) == creds.secret_key
    assert fresh.lookup_secret(before.current.access_key) == before.current.secret_key
    assert fresh.owner_of(creds.access_key) == fresh.owner_of(before.current.access_key) == before.current.access_key
    clock.now += 31
    assert fresh.lookup_secret(before.current.access_key) is None
    assert fresh.is_root(creds.access_key) and not fresh.is_root(before.current.access_key)


def test_identity_consults_iam_keys(iam: IamService, tmp_path: Path, clock: Clock) -> None:
    identity = Identity([], root_file=tmp_path / "keys" / "root.json", users=iam.source, clock=clock)
    iam.create_user("alice")
    new = iam.create_key("alice")
    assert identity.lookup_secret(new.record.access_key) == new.secret
    assert identity.owner_of(new.record.access_key) == iam.get_user("alice")[0].user_id
    assert identity.lookup_secret("AKIANOSUCHKEY0000000") is None


def test_policies_attach_inline_and_builtin(iam: IamService) -> None:
    iam.create_user("alice")
    iam.create_group("ops")
    iam.set_member("ops", "alice", member=True)
    iam.put_policy("get-only", ALLOW_GET, create=True)
    with pytest.raises(EntityAlreadyExists):
        iam.put_policy("readwrite", ALLOW_GET, create=True)
    with pytest.raises(MalformedPolicy, match="valid JSON"):
        iam.put_policy("broken", "{not json", create=True)
    with pytest.raises(MalformedPolicy):
        iam.put_policy("broken", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}), create=True)
    with pytest.raises(InvalidArgument):
        iam.put_policy("huge", json.dumps({"Statement": [], "x": "a" * 20000}), create=True)
    assert iam.attach("user", "alice", "get-only", attach=True)
    assert not iam.attach("user", "alice", "get-only", attach=True)
    iam.attach("group", "ops", "readwrite", attach=True)
    iam.put_inline("user", "alice", "extra", ALLOW_GET)
    with pytest.raises(NoSuchEntity):
        iam.attach("user", "alice", "nope", attach=True)
    key = iam.create_key("alice").record.access_key
    principal = (iam.source.principal_for(key) or (None, ""))[0]
    assert principal is not None and principal.groups == ("ops",)
    assert len(iam.source.policies_for(principal)) == 3
    policy, builtin, entities = iam.get_policy("get-only")
    assert not builtin and entities == [("user", "alice")]
    with pytest.raises(DeleteConflict):
        iam.delete_policy("get-only")
    updated = iam.put_policy("get-only", ALLOW_GET.replace("GetObject", "PutObject"), create=False)
    assert updated.version == 2 and updated.created == policy.created
    decision = iam.simulate("alice", "s3:PutObject", "arn:aws:s3:::b/k")
    assert decision["allowed"] and "user alice managed get-only" in decision["policies"]
    denied = iam.simulate("alice", "iam:CreateUser", "*")
    assert not denied["allowed"] and decision["policies"] == denied["policies"]
    iam.attach("user", "alice", "get-only", attach=False)
    iam.delete_inline("user", "alice", "extra")
    assert len(iam.source.policies_for(principal)) == 1  # the group's readwrite
    iam.delete_policy("get-only")
    assert [p.name for p, b in iam.list_policies() if not b] == []
    with pytest.raises(InvalidArgument):
        iam.delete_policy("admin")


def test_a_stored_policy_that_no_longer_parses_denies_everything(iam: IamService, store: LmdbMetadataStore) -> None:
    iam.create_user("alice")
    iam.put_inline("user", "alice", "ok", ALLOW_GET)
    store.iam_modify_user("alice", lambda u: dataclasses.replace(u, inline=(("x", "{"),)))
    key = iam.create_key("alice").record.access_key
    principal = (iam.source.principal_for(key) or (None, ""))[0]
    assert principal is not None
    [policy] = iam.source.policies_for(principal)
    assert [(st.sid, st.allow) for st in policy.statements] == [("Unreadable", False)]


def test_last_used_is_batched(iam: IamService, store: LmdbMetadataStore) -> None:
    iam.create_user("alice")
    key = iam.create_key("alice").record.access_key
    generation = store.iam_generation()
    iam.source.record_use(key, 100.0)
    iam.source.record_use(key, 200.0)
    assert iam.list_keys("alice")[0].last_used == 0.0  # nothing written yet
    assert iam.source.flush() == 1
    assert iam.source.flush() == 0
    assert iam.list_keys("alice")[0].last_used == 200.0
    assert store.iam_generation() == generation  # usage does not empty the caches
