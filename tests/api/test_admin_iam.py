"""The admin API's IAM routes through Quart's test client, over a real LMDB store and IamService (with the test
stand-in policy parser): users, groups, keys (secret only at creation), rotation, policies, attachments, inline
policies, root rotation, the simulator, and hostile input — bad names, Unicode look-alikes, huge bodies, wrong
types, bad JSON — answered 400/404/409 with `{"error"}`, never 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from appliance.api.admin.app import AdminState
from appliance.service.iam import IamService
from appliance.service.objects import ObjectService
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.support.admin_auth import authed_admin_app
from tests.unit.service.iam_support import ALLOW_GET, make_service
from tests.unit.service.scrub_fakes import FakeNode
from tests.unit.state.support import GRACE

__all__ = ["IamAdmin", "build_iam_admin"]


@dataclass
class IamAdmin:
    app: Quart
    store: LmdbMetadataStore
    iam: IamService


def build_iam_admin(tmp_path: Path, *, port: int = 9001) -> IamAdmin:
    """The admin app with the IAM routes (the caller closes `store`)."""
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    node = FakeNode()
    iam = make_service(tmp_path, store)
    state = AdminState(
        objects=ObjectService(store, node, unpin_grace=GRACE),  # type: ignore[arg-type]
        content=node,  # type: ignore[arg-type]
        store=store,
        unpinner=Unpinner(store, node, interval=1.0),  # type: ignore[arg-type]
        iam=iam,
    )
    return IamAdmin(authed_admin_app(state, tmp_path, port=port), store, iam)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[IamAdmin]:
    built = build_iam_admin(tmp_path)
    yield built
    built.store.close()


async def call(
    admin: IamAdmin, method: str, path: str, body: Any = None, *, raw: bytes | None = None
) -> tuple[int, Any]:
    client = admin.app.test_client()
    kwargs: dict[str, Any] = {}
    if raw is not None:
        kwargs["data"] = raw
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    response = await client.open(path, method=method, **kwargs)
    return response.status_code, await response.get_json()


async def test_user_group_key_policy_round_trip(admin: IamAdmin) -> None:
    assert (await call(admin, "POST", "/iam/users", {"name": "alice", "tags": {"team": "a"}}))[0] == 201
    status, key = await call(admin, "POST", "/iam/users/alice/keys")
    assert status == 201 and len(key["secret_key"]) == 40 and key["status"] == "Active"
    status, user = await call(admin, "GET", "/iam/users/alice")
    assert status == 200 and [k["access_key"] for k in user["access_keys"]] == [key["access_key"]]
    assert key["secret_key"] not in json.dumps(user)  # never again after creation
    assert (await call(admin, "POST", "/iam/groups", {"name": "ops"}))[0] == 201
    assert (await call(admin, "PUT", "/iam/groups/ops/members/alice"))[1]["changed"] is True
    assert (await call(admin, "GET", "/iam/groups/ops"))[1]["members"] == ["alice"]
    assert (await call(admin, "POST", "/iam/policies", {"name": "get", "document": ALLOW_GET}))[0] == 201
    assert (await call(admin, "PUT", "/iam/users/alice/policies/get"))[1]["changed"] is True
    assert (await call(admin, "PUT", "/iam/groups/ops/policies/readwrite"))[1]["changed"] is True
    assert (await call(admin, "PUT", "/iam/users/alice/inline/extra", {"document": ALLOW_GET}))[0] == 200
    status, policy = await call(admin, "GET", "/iam/policies/get")
    assert policy["attached_to"] == [{"kind": "user", "name": "alice"}] and policy["document"] == ALLOW_GET
    assert (await call(admin, "DELETE", "/iam/policies/get"))[0] == 409  # attached
    status, decision = await call(
        admin, "POST", "/iam/simulate", {"user": "alice", "action": "s3:PutObject", "resource": "arn:aws:s3:::b/k"}
    )
    assert status == 200 and decision["allowed"] is True and "group ops builtin readwrite" in decision["policies"]
    status, listed = await call(admin, "GET", "/iam/policies")
    assert {p["name"] for p in listed["policies"]} == {
        "admin",
        "readwrite",
        "readonly",
        "writeonly",
        "ipfs-operator",
        "get",
    }
    status, disabled = await call(admin, "POST", f"/iam/keys/{key['access_key']}/disable")
    assert status == 200 and disabled["status"] == "Inactive"
    assert admin.iam.source.principal_for(key["access_key"]) is None
    status, rotated = await call(admin, "POST", "/iam/users/alice/keys/rotate", {"grace_seconds": 60})
    assert status == 201 and rotated["expiring"] == []  # the only other key is disabled: nothing to keep
    assert (await call(admin, "DELETE", f"/iam/keys/{key['access_key']}"))[0] == 200
    status, gone = await call(admin, "DELETE", "/iam/users/alice")
    assert status == 200 and gone["access_keys_deleted"] == [rotated["access_key"]]
    assert (await call(admin, "GET", "/iam/users/alice"))[0] == 404


async def test_root_rotation_route(admin: IamAdmin, tmp_path: Path) -> None:
    status, data = await call(admin, "POST", "/iam/root/rotate", {"grace_seconds": 30})
    assert status == 201 and len(data["secret_key"]) == 40
    doc = json.loads((tmp_path / "keys" / "root.json").read_text())
    assert doc["access_key"] == data["access_key"] and len(doc["previous"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "/iam/users", {"name": "bad name"}, 400, "only letters"),
        ("POST", "/iam/users", {"name": "\u0430lice"}, 400, "look-alike"),
        ("POST", "/iam/users", {"name": "alice\u202e"}, 400, "control or invisible"),
        ("POST", "/iam/users", {"name": "\uff41dmin"}, 400, "normal form"),
        ("POST", "/iam/users", {"name": 42}, 400, "non-empty string"),
        ("POST", "/iam/users", {"name": ["a"]}, 400, "non-empty string"),
        ("POST", "/iam/users", {"name": "x" * 65}, 400, "limit is 64"),
        ("POST", "/iam/users", {"name": "ok", "tags": "t"}, 400, "tags"),
        ("POST", "/iam/users", {"name": "ok", "path": 5}, 400, "path"),
        ("POST", "/iam/users", [1, 2], 400, "JSON object"),
        ("GET", "/iam/users/" + "x" * 600, None, 400, "limit"),
        ("GET", "/iam/users/nobody", None, 404, "does not exist"),
        ("DELETE", "/iam/keys/AKIANOSUCHKEY0000000", None, 404, "does not exist"),
        ("POST", "/iam/keys/bad%21key/disable", None, 400, "access key id"),
        ("POST", "/iam/keys/AKIAX/explode", None, 400, "enable or disable"),
        ("POST", "/iam/policies", {"name": "p", "document": "{nope"}, 400, "valid JSON"),
        ("POST", "/iam/policies", {"name": "p", "document": '{"Statement": "x"}'}, 400, "Statement"),
        ("POST", "/iam/policies", {"name": "p", "document": {"Statement": []}}, 400, "string"),
        ("POST", "/iam/policies", {"name": "admin", "document": ALLOW_GET}, 409, "built-in"),
        ("PUT", "/iam/users/nobody/policies/readwrite", None, 404, "does not exist"),
        ("PUT", "/iam/things/x/policies/readwrite", None, 400, "users or groups"),
        ("POST", "/iam/users/nobody/keys/rotate", {"grace_seconds": "1d"}, 400, "grace_seconds"),
        ("POST", "/iam/root/rotate", {"grace_seconds": -5}, 400, "grace_seconds"),
        ("POST", "/iam/simulate", {"user": "nobody", "action": "s3:GetObject", "resource": "*"}, 404, "nobody"),
        ("POST", "/iam/simulate", {"user": "x", "action": 5, "resource": "*"}, 400, "action"),
        ("POST", "/iam/simulate", {"action": "s3:GetObject"}, 400, "user"),
    ],
)
async def test_hostile_input_gets_a_clear_client_error(
    admin: IamAdmin, method: str, path: str, body: Any, status: int, words: str
) -> None:
    got, data = await call(admin, method, path, body)
    assert got == status, data
    assert words in data["error"]


async def test_bad_bodies(admin: IamAdmin) -> None:
    status, data = await call(admin, "POST", "/iam/users", raw=b"{not json")
    assert status == 400 and "not JSON" in data["error"]
    status, data = await call(admin, "POST", "/iam/users", raw=b"\xff\xfe")
    assert status == 400
    status, data = await call(admin, "POST", "/iam/users", raw=b"[" * 70_000)
    assert status == 400 and "larger than" in data["error"]
    status, data = await call(admin, "POST", "/iam/users", raw=b"")
    assert status == 400
    huge_doc = json.dumps({"Statement": [], "pad": "a" * 20_000})
    status, data = await call(admin, "POST", "/iam/policies", {"name": "big", "document": huge_doc})
    assert status == 400 and "larger than" in data["error"]
    assert (await call(admin, "POST", "/iam/users", {"name": "dup"}))[0] == 201
    status, data = await call(admin, "POST", "/iam/users", {"name": "DUP"})
    assert status == 409 and "exists already" in data["error"]
    for _ in range(2):
        await call(admin, "POST", "/iam/users/dup/keys")
    status, data = await call(admin, "POST", "/iam/users/dup/keys")
    assert status == 409 and "limit" in data["error"]
    for expires in (b"NaN", b"Infinity", b"-1", b'"tomorrow"', b"true"):
        status, data = await call(admin, "POST", "/iam/users/dup/keys", raw=b'{"expires": ' + expires + b"}")
        assert status == 400 and "expires" in data["error"]
    status, data = await call(admin, "POST", "/iam/users/dup/keys", {"access_key": "only-the-key"})
    assert status == 400 and "both" in data["error"]
