"""`s3ipfs serve` as operators run it: a real subprocess with 2 workers on a real local IPFS node."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.ipfsconn.devnode import LocalNode, jsipfs_path, kubo_path
from appliance.service.audit_log import records, verify_dir
from tests.support import raw
from tests.support.gateway import (
    Gateway,
    gateway_command,
    gateway_env,
    read_admin_token,
    start_gateway,
    stop_gateway,
    wait_ready,
    write_config,
)
from tests.support.nodes import start_local_node, stop_nodes

pytestmark = pytest.mark.skipif(
    kubo_path() is None and not jsipfs_path().exists(), reason="no IPFS node installed: run scripts/setup.sh"
)

UNKNOWN_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    started = start_local_node(tmp_path_factory.mktemp("daemon-node"))
    try:
        yield started
    finally:
        stop_nodes([started])


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, node: LocalNode) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("daemon-gw"), node, workers=2)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_health_and_ready(gateway: Gateway) -> None:
    health = httpx.get(f"{gateway.admin_url}/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = gateway.admin("GET", "/ready")
    assert ready.status_code == 200
    assert ready.json()["components"]["ipfs"]["ready"] is True
    assert ready.json()["components"]["metadata"]["ready"] is True
    assert ready.json()["components"]["workers"]["ready"] is True


def test_objects_by_cid(gateway: Gateway) -> None:
    unknown = gateway.admin("GET", f"/objects/by-cid/{UNKNOWN_CID}")
    assert (unknown.status_code, unknown.json()) == (200, [])
    malformed = gateway.admin("GET", "/objects/by-cid/not-a-cid")
    assert malformed.status_code == 400
    assert "not a CID" in malformed.json()["error"]


def test_metrics(gateway: Gateway) -> None:
    reply = gateway.admin("GET", "/metrics")
    assert reply.status_code == 200
    assert "s3ipfs_unpin_queue_depth 0.0" in reply.text
    assert "s3ipfs_unpinned_total" in reply.text


def test_s3_port_is_served_by_the_workers(gateway: Gateway) -> None:
    # Whatever the S3 app answers to an unsigned request, hypercorn answers it without a Server header.
    reply = httpx.get(f"{gateway.endpoint}/")
    assert reply.status_code < 500
    assert "server" not in reply.headers


def test_logs_name_the_role_and_never_the_secret(gateway: Gateway) -> None:
    log = gateway.log_path.read_text()
    assert f"main INFO appliance.daemon: root access key: {gateway.access_key}" in log
    assert gateway.secret_key not in log
    assert "worker-0 " in log
    assert "worker-1 " in log


def test_a_killed_worker_is_restarted(gateway: Gateway) -> None:
    workers = subprocess.run(
        ["pgrep", "-P", str(gateway.process.pid), "-f", "multiprocessing.spawn"],
        check=False,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert workers, "no worker processes found"
    victim = int(workers[0])
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while f"(pid {victim}) died" not in gateway.log_path.read_text():
        assert time.monotonic() < deadline, gateway.log_tail()
        time.sleep(0.1)
    # The replacement serves again.
    deadline = time.monotonic() + 30
    while gateway.log_path.read_text().count("Running on " + gateway.endpoint) < 3:
        assert time.monotonic() < deadline, gateway.log_tail()
        time.sleep(0.1)
    for _ in range(10):
        assert httpx.get(f"{gateway.endpoint}/").status_code < 500


def test_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, None, extra_config={"s3": {"prot": 1}})
    done = subprocess.run(
        gateway_command(path), env=gateway_env(), check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "s3.prot" in done.stderr


def test_port_in_use_exits_2(tmp_path: Path, gateway: Gateway) -> None:
    port = int(gateway.endpoint.rsplit(":", 1)[1])
    path = write_config(tmp_path, None, extra_config={"s3": {"port": port}})
    done = subprocess.run(
        gateway_command(path), env=gateway_env(), check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "s3.port" in done.stderr


def test_not_ready_without_ipfs_then_sigterm_exits_0(tmp_path: Path) -> None:
    own = start_local_node(tmp_path, "own-node")
    try:
        gw = start_gateway(tmp_path, own, workers=2, extra_config={"s3": {"graceful_timeout": 5}})
        try:
            stop_nodes([own])
            reply = wait_ready(gw, 30, status=503)
            body = reply.json()
            assert body["not_ready"] == ["ipfs"]
            assert body["components"]["ipfs"]["reason"]
            assert httpx.get(f"{gw.admin_url}/health").status_code == 200
            started = time.monotonic()
            code = stop_gateway(gw, timeout=gw.graceful_timeout + 5)
            assert code == 0, gw.log_tail()
            assert time.monotonic() - started < gw.graceful_timeout + 5
            assert "main INFO appliance.daemon: stopped" in gw.log_path.read_text()
        finally:
            stop_gateway(gw)
    finally:
        stop_nodes([own])


def test_sd_notify_ready_and_stopping(tmp_path: Path, node: LocalNode) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(notify_path))
        listener.settimeout(30)
        gw = start_gateway(tmp_path, node, workers=1, extra_env={"NOTIFY_SOCKET": str(notify_path)})
        try:
            messages = []
            while not any(m.startswith("STATUS=serving") for m in messages):
                messages.append(listener.recv(4096).decode())
            assert messages[0] == "STATUS=starting workers"
            assert "READY=1" in messages
            assert stop_gateway(gw) == 0
            while "STOPPING=1" not in messages:
                messages.append(listener.recv(4096).decode())
        finally:
            stop_gateway(gw)


def test_no_internal_detail_reaches_clients_while_the_node_is_stopped(tmp_path: Path) -> None:
    """The Kubo client's messages (the command, the node's address, the httpx error) stay in the log under the
    request id the client got; S3 and admin answer with the code and a generic message."""
    own = start_local_node(tmp_path, "leak-node")
    try:
        gw = start_gateway(tmp_path, own, workers=1, extra_config={"cache": {"memory_bytes": 0}})  # GETs reach IPFS
        try:
            keys = {"access_key": gw.access_key, "secret_key": gw.secret_key}
            assert raw.send(gw.endpoint, "PUT", "/leaky", **keys).status_code == 200
            put = raw.send(gw.endpoint, "PUT", "/leaky/there", body=b"stored before the stop", **keys)
            assert put.status_code == 200
            cid = put.headers["x-amz-meta-cid"]
            api = own.api_url.removeprefix("http://")
            stop_nodes([own])
            answers = {
                "PUT object": raw.send(gw.endpoint, "PUT", "/leaky/new", body=b"x" * 10_000, **keys),
                "GET object": raw.send(gw.endpoint, "GET", "/leaky/there", **keys),
                "live pin status": gw.admin("GET", f"/pins/{cid}?live=1"),
                "readiness": gw.admin("GET", "/ready"),
            }
            leaks = (
                api,
                api.split(":")[1],
                "ConnectError",
                "IPFS add",
                "IPFS cat",
                "IPFS pin",
                "/api/v0",
                str(tmp_path),
            )
            for what, answer in answers.items():
                seen = answer.text + "\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
                assert answer.status_code == 503, (what, answer.status_code, answer.text)
                for leak in leaks:
                    assert leak not in seen, f"{what}: {leak!r} reached the client: {seen[:600]}"
            ids = {
                "PUT object": answers["PUT object"].headers["x-amz-request-id"],
                "GET object": answers["GET object"].headers["x-amz-request-id"],
                "live pin status": answers["live pin status"].json()["request_id"],
                "readiness": answers["readiness"].json()["components"]["ipfs"]["reason"].split("request id ")[1][:16],
            }
            for what in ("PUT object", "GET object"):
                assert "<Code>ServiceUnavailable</Code>" in answers[what].text
                assert "<Message>Service is unavailable. Please retry.</Message>" in answers[what].text
            log = gw.log_path.read_text()
            for what, request_id in ids.items():
                lines = [line for line in log.splitlines() if f"request {request_id} " in line]
                assert lines, f"{what}: no log line for request {request_id}: {gw.log_tail()}"
                assert any("the node cannot be reached (ConnectError)" in line for line in lines), (what, lines)
        finally:
            stop_gateway(gw)
    finally:
        stop_nodes([own])


def test_admin_tokens_and_the_audit_log_of_a_live_run(gateway: Gateway) -> None:
    """Admin requests need the token; S3 writes (served by the workers) and admin changes (main process) land in
    one verified chain; neither the audit files nor the gateway's log hold the secret key or a token."""
    assert httpx.get(f"{gateway.admin_url}/metrics").status_code == 401
    assert httpx.get(f"{gateway.admin_url}/ready").status_code == 200  # probes stay open, like /health
    evil = httpx.get(f"{gateway.admin_url}/health", headers={"Host": "rebind.example.com"})
    assert evil.status_code == 421
    issued = httpx.post(
        f"{gateway.admin_url}/auth/token",
        json={"access_key": gateway.access_key, "secret_key": gateway.secret_key, "ttl": 300},
    )
    assert issued.status_code == 200
    token = issued.json()["token"]
    whoami = httpx.get(f"{gateway.admin_url}/auth/whoami", headers={"Authorization": f"Bearer {token}"})
    assert whoami.json()["user"] == "root"
    keys = {"access_key": gateway.access_key, "secret_key": gateway.secret_key}
    assert raw.send(gateway.endpoint, "PUT", "/audit-live", **keys).status_code == 200
    put = raw.send(gateway.endpoint, "PUT", "/audit-live/obj", body=b"audited bytes", **keys)
    assert put.status_code == 200
    denied = raw.send(gateway.endpoint, "PUT", "/audit-live/x", access_key=gateway.access_key, secret_key="wrong")
    assert denied.status_code == 403
    revoked = gateway.admin("DELETE", f"/auth/tokens/{issued.json()['token_id']}")
    assert revoked.status_code == 200
    assert (
        httpx.get(f"{gateway.admin_url}/auth/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )

    audit_dir = gateway.state_dir / "audit"
    count, broken = verify_dir(audit_dir)
    assert broken is None and count >= 6
    got = [data for _f, _l, data in records(audit_dir)]
    actions = {(d["api"], d["action"], d["status"]) for d in got}
    assert {("s3", "CreateBucket", 200), ("s3", "PutObject", 200), ("admin", "admin:auth_token", 200)} <= actions
    assert ("admin", "admin:metrics", 401) in actions and ("admin", "admin:auth_revoke", 200) in actions
    assert any(d["api"] == "s3" and d["status"] == 403 and d["code"] == "SignatureDoesNotMatch" for d in got)
    written = next(d for d in got if d["action"] == "PutObject")
    assert written["cid"] == put.headers["x-ipfs-cid"] and written["source_ip"] == "127.0.0.1"
    texts = [p.read_text() for p in audit_dir.glob("audit-*.jsonl")] + [gateway.log_path.read_text()]
    local = read_admin_token(gateway.state_dir)
    for secret in (gateway.secret_key, token, token.rsplit("_", 1)[1], local):
        assert all(secret not in text for text in texts)
