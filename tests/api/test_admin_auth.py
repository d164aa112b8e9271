"""Admin API authentication through Quart's test client: tokens (issue, use, list, revoke, expire, forged), the Host
check, JSON bodies only, no CORS, OPTIONS refused; and the audit records of admin requests, which never hold the
secret key or a token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from appliance.api.admin.app import AdminState, create_admin_app
from appliance.api.admin.auth import AdminAuth, AdminPrincipal
from appliance.service.audit import Auditor
from appliance.service.audit_log import AuditLog, AuditSettings, records, verify_dir
from appliance.service.objects import ObjectService
from appliance.service.unpinner import Unpinner
from appliance.state import LmdbMetadataStore
from tests.support.admin_auth import ADMIN_HOST, ROOT, admin_auth
from tests.unit.service.test_pin_orchestrator import MemoryContent, as_content
from tests.unit.state.support import GRACE


@dataclass
class Rig:
    app: Quart
    auth: AdminAuth
    audit_dir: Path

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        sent = {"Host": ADMIN_HOST}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        if data:
            sent["Content-Length"] = str(len(data))
        response = await self.app.test_client().open(path, method=method, headers=sent, data=data)  # type: ignore[call-arg]
        return response.status_code, await response.get_json(silent=True), response.headers

    async def login(self, **extra: Any) -> str:
        status, body, _ = await self.call(
            "POST", "/auth/token", body={"access_key": ROOT.access_key, "secret_key": ROOT.secret_key, **extra}
        )
        assert status == 200, body
        token: str = body["token"]
        return token


def _rig(tmp_path: Path, **auth_kwargs: Any) -> Iterator[Rig]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = as_content(MemoryContent())
    state = AdminState(
        objects=ObjectService(store, content, unpin_grace=GRACE),
        content=content,
        store=store,
        unpinner=Unpinner(store, content, interval=1.0),
    )
    log = AuditLog(AuditSettings(directory=tmp_path / "audit"))
    auth = admin_auth(tmp_path, auditor=Auditor(log.append), **auth_kwargs)
    yield Rig(create_admin_app(state, auth), auth, tmp_path / "audit")
    log.close()
    store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from _rig(tmp_path)


async def test_health_is_open_everything_else_needs_a_token(rig: Rig) -> None:
    assert (await rig.call("GET", "/health"))[0] == 200
    for path in ("/metrics", "/objects/by-cid/x", "/auth/tokens", "/auth/whoami", "/nowhere"):
        status, body, headers = await rig.call("GET", path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert "s3ipfs admin login" in body["error"]
    status, _, _ = await rig.call("GET", "/metrics", headers={"Authorization": "Basic cm9vdDpyb290"})
    assert status == 401


async def test_token_flow(rig: Rig) -> None:
    token = await rig.login(ttl=600)
    status, body, _ = await rig.call("GET", "/auth/whoami", token=token)
    assert (status, body["user"], body["access_key"]) == (200, "root", ROOT.access_key)
    assert (await rig.call("GET", "/metrics", token=token))[0] == 200
    status, listing, _ = await rig.call("GET", "/auth/tokens", token=token)
    assert status == 200 and [t["id"] for t in listing["tokens"]] == [body["token_id"]]
    assert "digest" not in listing["tokens"][0] and token not in json.dumps(listing)
    other = await rig.login()
    status, revoked, _ = await rig.call("DELETE", f"/auth/tokens/{body['token_id']}", token=other)
    assert (status, revoked) == (200, {"revoked": [body["token_id"]]})
    assert (await rig.call("GET", "/auth/whoami", token=token))[0] == 401
    assert (await rig.call("DELETE", "/auth/tokens/0000000000000000", token=other))[0] == 404
    assert (await rig.call("DELETE", "/auth/tokens", token=other))[1] == {"revoked_count": 1}
    assert (await rig.call("GET", "/auth/whoami", token=other))[0] == 401


@pytest.mark.parametrize(
    "body",
    [
        {"access_key": ROOT.access_key, "secret_key": "wrong"},
        {"access_key": "NOSUCHKEY", "secret_key": ROOT.secret_key},
        {"access_key": ROOT.access_key, "secret_key": ROOT.secret_key[:-1]},
    ],
)
async def test_wrong_keys_get_no_token(rig: Rig, body: dict[str, str]) -> None:
    status, answer, _ = await rig.call("POST", "/auth/token", body=body)
    assert status == 401 and "token" not in answer


@pytest.mark.parametrize(
    "body", [None, [], {"access_key": 1, "secret_key": "x"}, {"access_key": ROOT.access_key}, "text"]
)
async def test_malformed_token_requests(rig: Rig, body: Any) -> None:
    status, _answer, _ = await rig.call("POST", "/auth/token", body=body if body is not None else {})
    assert status == 400


@pytest.mark.parametrize("ttl", [0, 59, 10**9, "1h", True, -5])
async def test_ttl_bounds(rig: Rig, ttl: Any) -> None:
    body = {"access_key": ROOT.access_key, "secret_key": ROOT.secret_key, "ttl": ttl}
    assert (await rig.call("POST", "/auth/token", body=body))[0] == 400


async def test_expired_and_forged_tokens(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await rig.login(ttl=60)
    forged = token[:-4] + "AAAA" if not token.endswith("AAAA") else token[:-4] + "BBBB"
    for bad in (forged, "s3ipfs_at_x", token + "x", "Bearer " + token):
        assert (await rig.call("GET", "/auth/whoami", token=bad))[0] == 401
    record = rig.auth.tokens.list()[0]
    import appliance.service.admin_tokens as admin_tokens

    real_time = admin_tokens.time.time
    monkeypatch.setattr(rig.auth.tokens, "_clock", lambda: real_time() + 61)
    assert record.expires and (await rig.call("GET", "/auth/whoami", token=token))[0] == 401


@pytest.mark.parametrize(
    "host", ["evil.example.com", "evil.example.com:9001", "127.0.0.1:9002", "127.0.0.1", "", "localhost"]
)
async def test_host_check(rig: Rig, host: str) -> None:
    token = await rig.login()
    status, body, _ = await rig.call("GET", "/auth/whoami", token=token, headers={"Host": host})
    assert status == 421 and "Host" in body["error"]
    for ok in ("127.0.0.1:9001", "localhost:9001", "[::1]:9001", "LOCALHOST:9001"):
        assert (await rig.call("GET", "/auth/whoami", token=token, headers={"Host": ok}))[0] == 200


async def test_bodies_must_be_json_and_no_cors(rig: Rig) -> None:
    token = await rig.login()
    headers = {"Content-Type": "text/plain", "Content-Length": "2"}
    response = await rig.app.test_client().open(  # type: ignore[call-arg]
        "/batches",
        method="POST",
        data=b"{}",
        headers={"Host": ADMIN_HOST, "Authorization": f"Bearer {token}", **headers},
    )
    assert response.status_code == 415
    form = await rig.app.test_client().open(  # type: ignore[call-arg]
        "/auth/token",
        method="POST",
        data=b"access_key=a&secret_key=b",
        headers={"Host": ADMIN_HOST, "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "25"},
    )
    assert form.status_code == 415  # a browser form cannot ask for a token
    status, _, answer = await rig.call(
        "OPTIONS",
        "/auth/whoami",
        token=token,
        headers={"Origin": "http://evil.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert status == 405
    _, _, answer = await rig.call("GET", "/auth/whoami", token=token, headers={"Origin": "http://evil.example.com"})
    assert not [h for h in answer.keys() if h.lower().startswith("access-control-")]


async def test_authorize_hook_and_iam_users(tmp_path: Path) -> None:
    def verify(access_key: str, secret_key: str) -> AdminPrincipal | None:
        users = {("ALICEKEY", "alice-secret"): "alice", ("BOBKEY", "bob-secret"): "bob"}
        user = users.get((access_key, secret_key))
        return AdminPrincipal(user, access_key) if user else None

    def authorize(principal: AdminPrincipal, action: str, resource: str) -> bool:
        return principal.is_root or principal.user == "alice"  # alice holds a policy allowing admin:*

    for rig in _rig(tmp_path, verify_key=verify, authorize=authorize):
        ok = await rig.call("POST", "/auth/token", body={"access_key": "ALICEKEY", "secret_key": "alice-secret"})
        assert ok[0] == 200 and ok[1]["user"] == "alice"
        status, body, _ = await rig.call("GET", "/auth/whoami", token=ok[1]["token"])
        assert (status, body["user"]) == (200, "alice")
        denied = await rig.call("POST", "/auth/token", body={"access_key": "BOBKEY", "secret_key": "bob-secret"})
        assert denied[0] == 403 and "admin" in denied[1]["error"]
        wrong = await rig.call(
            "POST", "/auth/token", body={"access_key": ROOT.access_key, "secret_key": "alice-secret"}
        )
        assert wrong[0] == 401


async def test_audit_records_of_admin_requests(rig: Rig) -> None:
    token = await rig.login()
    await rig.call("GET", "/metrics", token=token)  # a read: not audited
    await rig.call("GET", "/metrics")  # denied: audited
    await rig.call("POST", "/auth/token", body={"access_key": ROOT.access_key, "secret_key": "nope"})
    await rig.call("GET", "/ready", token=token, headers={"Host": "evil.example.com"})
    _status, body, _ = await rig.call("GET", "/auth/tokens", token=token)
    await rig.call("DELETE", f"/auth/tokens/{body['tokens'][0]['id']}", token=token)
    assert verify_dir(rig.audit_dir)[1] is None
    got = [data for _f, _l, data in records(rig.audit_dir)]
    summary = [(d["action"], d["status"]) for d in got]
    assert summary == [
        ("admin:auth_token", 200),
        ("admin:metrics", 401),
        ("admin:auth_token", 401),
        ("admin:ready", 421),
        ("admin:auth_revoke", 200),
    ]
    issued = got[0]
    assert issued["principal"] == {"user": "root", "access_key": ROOT.access_key}
    assert issued["api"] == "admin" and "source_ip" in issued and issued["extra"]["issued_token_id"]
    assert got[2]["principal"]["access_key"] == ROOT.access_key and got[2]["principal"]["user"] == ""
    assert got[4]["resource"].startswith("/auth/tokens/") and got[4]["extra"]["token_id"]
    text = "".join(p.read_text() for p in rig.audit_dir.glob("audit-*"))
    assert ROOT.secret_key not in text and token not in text and token.rsplit("_", 1)[1] not in text
