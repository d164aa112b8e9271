"""`s3ipfs pins …` called in-process through main(argv) against real HTTP servers on loopback: the admin app (real
LMDB store, fake cluster pinner, every pin job) served by hypercorn in a thread, and a tiny canned-JSON server for
the gateway's failures. Checks the human output and --json of every subcommand, and the exit codes: 1 on a 4xx
with the API's message on stderr, 3 when nothing listens (or 503), 4 on another 5xx or a failed batch."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from appliance.cli.main import main
from appliance.model import PeerInfo
from tests.api.test_admin_pin_ops import GiB, OpsAdmin, build_ops_admin, cid_of
from tests.support.admin_auth import install_cli_token
from tests.support.nodes import free_ports
from tests.unit.state.support import BUCKET

T = TypeVar("T")
CIDS = sorted(cid_of(i) for i in range(6))


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("S3IPFS_"):
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "s3ipfs.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\nadmin:\n  host: 127.0.0.1\n  port: {port}\n")
    return path


# ---- the admin app served by hypercorn in a thread ----------------------------------------------------------------


class Served:
    """The admin app of `ops` on a free loopback port, in its own thread and event loop."""

    def __init__(self, ops: OpsAdmin, port: int) -> None:
        self.ops = ops
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._shutdown: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="admin-app", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None

        async def run() -> None:
            self._shutdown = asyncio.Event()
            await serve(self.ops.app, config, shutdown_trigger=self._shutdown.wait)  # type: ignore[arg-type]
            await self.ops.batches.aclose()

        self.loop.run_until_complete(run())
        self.loop.close()

    def start(self) -> None:
        self._thread.start()
        for _ in range(500):
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            threading.Event().wait(0.01)
        raise RuntimeError("the admin app did not start")

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in the server's loop (where the app's tasks live) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        shutdown = self._shutdown
        if shutdown is not None:
            self.loop.call_soon_threadsafe(shutdown.set)
        self._thread.join(timeout=30)


@dataclass
class Cli:
    config: Path
    served: Served

    @property
    def ops(self) -> OpsAdmin:
        return self.served.ops

    def __call__(self, *argv: str) -> int:
        return main(["pins", *argv, "--config", str(self.config)])

    def batch(self, *argv: str) -> int:
        return main(["pins", "batch", *argv, "--config", str(self.config)])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    port = free_ports(1)[0]
    ops = build_ops_admin(tmp_path / "meta", port=port)
    install_cli_token(ops.app, tmp_path / "state", monkeypatch)  # the CLI finds it as the local root token
    served = Served(ops, port)
    served.start()
    try:
        yield Cli(write_config(tmp_path, served.port), served)
    finally:
        served.stop()
        ops.store.close()


def pinned_objects(cli: Cli, count: int = 3) -> list[str]:
    for i in range(count):
        cli.ops.put(f"k{i}", CIDS[i])
    cli.served.run(cli.ops.orchestrator.run_once())
    cli.ops.clock.now += 1  # later commands happen after the pins were recorded
    return CIDS[:count]


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    captured = capsys.readouterr()
    assert captured.err == ""
    return json.loads(captured.out)


def api(cli: Cli, path: str) -> Any:
    headers = {"Authorization": f"Bearer {cli.ops.app.config['TEST_ROOT_TOKEN']}"}
    return httpx.get(f"http://127.0.0.1:{cli.served.port}{path}", headers=headers, timeout=10.0, trust_env=False).json()


# ---- summary, list, status, repin ---------------------------------------------------------------------------------


def test_summary(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    pinned_objects(cli, 2)
    cli.ops.put("later", CIDS[5])
    assert cli("summary") == 0
    assert capsys.readouterr().out.splitlines() == [
        "pinner: cluster",
        "outbox depth: 1",
        "  error      0",
        "  pinned     2",
        "  pinning    0",
        "  queued     1",
        "  unpinning  0",
        "completed since start: 2, errors since start: 0",
    ]
    assert cli("summary", "--json") == 0
    assert out_json(capsys) == api(cli, "/pins/summary")


def test_list_pages_and_filters(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cids = pinned_objects(cli, 3)
    cli.ops.put("later", CIDS[5])
    assert cli("list", "--limit", "2") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{cids[0]}  pinned    2 peers pinned", f"{cids[1]}  pinned    2 peers pinned"]
    assert captured.err == f"(more: --after {cids[1]})\n"
    assert cli("list", "--after", cids[1]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{cids[2]}  pinned    2 peers pinned",
        f"{CIDS[5]}  queued    0 peers pinned",
    ]
    assert cli("list", "--state", "queued", "--json") == 0
    assert [p["cid"] for p in out_json(capsys)["pins"]] == [CIDS[5]]
    assert cli("list", "--limit", "0") == 1
    assert capsys.readouterr().err == "s3ipfs: limit must be an integer from 1 to 10000\n"


def test_status(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    (cid,) = pinned_objects(cli, 1)
    assert cli("status", cid) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"cid: {cid}"
    assert re.fullmatch(r"state: pinned  \(updated (\d+s ago|\d+m ago|[\d.]+h ago)\)", lines[1])
    assert lines[2:] == ["  peer-a  pinned", "  peer-b  pinned", "  peer-c  remote"]
    assert cli("status", cid, "--live") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "live: pinned=2 allocations=peer-a,peer-b"
    cli.ops.put("again", CIDS[4])
    assert cli("status", CIDS[4]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "outbox job: pin queued, attempts 0"
    assert cli("status", cid, "--live", "--json") == 0
    doc = out_json(capsys)
    assert doc["cid"] == cid and doc["live"]["allocations"] == ["peer-a", "peer-b"]


def test_status_errors(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("status", CIDS[3]) == 1
    assert capsys.readouterr() == ("", f"s3ipfs: no pin is tracked for {CIDS[3]}\n")
    assert cli("status", "not-a-cid") == 1
    assert capsys.readouterr() == ("", "s3ipfs: not a CID: 'not-a-cid'\n")


def test_repin(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    (cid,) = pinned_objects(cli, 1)
    assert cli("repin", cid) == 0
    assert capsys.readouterr().out == f"queued 1 pin job(s) for {cid}\n"
    assert cli.ops.store.pin_job(cid) is not None
    assert cli("repin", cid, "--json") == 0
    assert out_json(capsys) == {"queued": 1}
    assert cli("repin", CIDS[4]) == 1
    assert capsys.readouterr().err == f"s3ipfs: no object references {CIDS[4]}\n"


# ---- policies and peers -------------------------------------------------------------------------------------------


def test_policy_get_set_clear(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("policy", "get", BUCKET) == 0
    assert capsys.readouterr().out == f"{BUCKET}: replication 2..2, ack local (the defaults of the config)\n"
    assert cli("policy", "set", BUCKET, "--min", "1", "--max", "3", "--ack", "cluster", "--peers", "p1,p2,") == 0
    assert capsys.readouterr().out == f"{BUCKET}: replication 1..3, ack cluster, peers p1,p2 (its own policy)\n"
    assert cli("policy", "get", BUCKET, "--json") == 0
    doc = out_json(capsys)
    assert doc["own"] is True and doc["policy"]["replication_max"] == 3
    assert cli("policy", "clear", BUCKET) == 0
    assert capsys.readouterr().out == f"{BUCKET}: replication 2..2, ack local (the defaults of the config)\n"
    assert cli.ops.store.get_bucket_config(BUCKET, "replication") is None


def test_policy_set_with_tags(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("policy", "set", BUCKET, "--tags", "site=a,rack=r1") == 0
    assert capsys.readouterr().out == f"{BUCKET}: replication 2..2, ack local, tags rack=r1,site=a (its own policy)\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["policy", "set", BUCKET], "give at least one of --min, --max, --ack, --peers, --tags"),
        (["policy", "set", BUCKET, "--tags", "site"], "--tags takes name=value pairs separated by commas, not 'site'"),
        (
            ["policy", "set", BUCKET, "--tags", "site=a,=b"],
            "--tags takes name=value pairs separated by commas, not '=b'",
        ),
        (
            ["policy", "set", BUCKET, "--tags", "site="],
            "--tags takes name=value pairs separated by commas, not 'site='",
        ),
        (["policy", "set", BUCKET, "--min", "3", "--max", "2"], "replication_min is larger than replication_max"),
        (["policy", "set", "nope", "--min", "1"], "no such bucket: nope"),
        (["batch", "repin", BUCKET, "--tags", "x"], "--tags takes name=value pairs separated by commas, not 'x'"),
    ],
)
def test_policy_errors(cli: Cli, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert cli(*argv) == 1
    assert capsys.readouterr() == ("", f"s3ipfs: {message}\n")
    assert cli.ops.store.get_bucket_config(BUCKET, "replication") is None
    assert cli.ops.batches.batches() == []


def test_peers(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cli.ops.pinner.peer_list = [
        PeerInfo("peer-a", "a", freespace=3 * GiB // 2, tags=(("rack", "r1"), ("site", "x"))),
        PeerInfo("peer-b", "", error="dial backoff"),
    ]
    assert cli("peers") == 0
    assert capsys.readouterr().out.splitlines() == [
        "pinner: cluster",
        "peer-a  a  ok  1.5 GiB free  rack=r1,site=x",
        "peer-b  -  ERROR dial backoff  -",
    ]
    assert cli("peers", "--json") == 0
    assert out_json(capsys) == api(cli, "/peers")


# ---- reconcile and rebalance --------------------------------------------------------------------------------------


def test_reconcile(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cids = pinned_objects(cli, 3)
    del cli.ops.pinner.pinned[cids[0]]
    assert cli("reconcile", "--last") == 1
    assert capsys.readouterr().err == "s3ipfs: no reconcile pass has run yet; POST /reconcile runs one\n"
    assert cli("reconcile", "--dry-run") == 0
    assert capsys.readouterr().out.splitlines() == [
        "reconcile (dry run: nothing changed) with the cluster pinner",
        "  referenced CIDs: 3, in the pinset: 2",
        "  missing from the pinset: 1  (queued again: 0)",
        "  in error on a peer: 0  (recovered: 0)",
        "  our orphan pins: 0  (queued for unpin: 0)",
        "  pins made by others (left alone): 0",
        f"    missing: {cids[0]}",
    ]
    assert cli.ops.store.pin_job(cids[0]) is None
    assert cli("reconcile") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "reconcile with the cluster pinner" and out[2] == "  missing from the pinset: 1  (queued again: 1)"
    assert cli.ops.store.pin_job(cids[0]) is not None
    assert cli("reconcile", "--last", "--json") == 0
    last = out_json(capsys)
    assert last["dry_run"] is False and last["queued"] == 1 and last["running"] is False
    assert cli("reconcile", "--dry-run", "--json") == 0
    assert out_json(capsys)["dry_run"] is True


def test_rebalance(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cids = pinned_objects(cli, 2)
    assert cli("rebalance", "--last") == 1
    assert capsys.readouterr().err == "s3ipfs: no rebalancing pass has run yet; POST /rebalance runs one\n"
    cli.ops.pinner.peer_list[0] = PeerInfo("peer-a", "a", freespace=GiB)
    assert cli("rebalance", "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["rebalance (dry run: nothing moved)", f"  drain peer-a: free space {GiB} < {10 * GiB} bytes"]
    assert sorted(lines[2:4]) == sorted(f"  move {cid}: peer-a -> peer-c" for cid in cids)
    assert lines[4:] == ["  moved: 0"]
    assert all(cli.ops.pinner.allocations[cid] == ("peer-a", "peer-b") for cid in cids)
    assert cli("rebalance", "--json") == 0
    done = out_json(capsys)
    assert done["moved"] == 2 and done["failures"] == []
    assert all(cli.ops.pinner.allocations[cid] == ("peer-b", "peer-c") for cid in cids)
    assert cli("rebalance", "--last") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "  moved: 2"


# ---- batches ------------------------------------------------------------------------------------------------------

_LINE = re.compile(
    r"(?P<id>[0-9a-f]{16})  (?P<op>\w+) +(?P<state>\w+) +(?P<done>\d+)/(?P<total>[\d?]+) done, "
    r"(?P<failed>\d+) failed, (?P<skipped>\d+) skipped"
)


def batch_line(text: str) -> dict[str, str]:
    found = _LINE.fullmatch(text)
    assert found is not None, text
    return found.groupdict()


def test_batch_pin_and_wait(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cids = [cid_of(500 + i) for i in range(3)]
    assert cli.batch("pin", *cids, "--wait") == 0
    captured = capsys.readouterr()
    progress = [batch_line(line) for line in captured.err.splitlines()]
    assert progress and all(p["state"] == "running" and p["total"] == "3" for p in progress)
    (final,) = captured.out.splitlines()
    assert batch_line(final) | {"id": ""} == {
        "id": "",
        "op": "pin",
        "state": "done",
        "done": "3",
        "total": "3",
        "failed": "0",
        "skipped": "0",
    }
    assert set(cids) <= set(cli.ops.pinner.pinned)


def test_batch_pin_from_a_file_and_from_stdin(
    cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = tmp_path / "cids.txt"
    listed.write_text(f"# wanted\n{CIDS[0]}\n\n   {CIDS[1]}  \n#{CIDS[2]}\n")
    assert cli.batch("pin", CIDS[3], "--file", str(listed), "--json") == 0
    started = out_json(capsys)
    assert started["op"] == "pin" and started["total"] == 3 and started["params"] == {"count": 3}
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{CIDS[4]}\n{CIDS[5]}\n"))
    assert cli.batch("unpin", "--file", "-", "--wait", "--json") == 0
    captured = capsys.readouterr()
    done = json.loads(captured.out)
    assert [batch_line(line)["op"] for line in captured.err.splitlines()] == ["unpin"]  # progress on stderr
    assert done["op"] == "unpin" and done["state"] == "done" and done["total"] == 2
    assert cli.batch("pin") == 1
    assert capsys.readouterr().err == "s3ipfs: give CIDs as arguments or with --file FILE (one per line, - for stdin)\n"


def test_batch_pin_of_an_unreadable_file(cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    assert cli.batch("pin", "--file", str(missing)) == 1
    assert capsys.readouterr() == ("", f"s3ipfs: cannot read CIDs from {missing}: No such file or directory\n")
    binary = tmp_path / "cids.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert cli.batch("unpin", "--file", str(binary)) == 1
    assert capsys.readouterr() == ("", f"s3ipfs: cannot read CIDs from {binary}: UnicodeDecodeError\n")
    assert cli.batch("pin", "--file", str(tmp_path)) == 1
    assert capsys.readouterr() == ("", f"s3ipfs: cannot read CIDs from {tmp_path}: Is a directory\n")
    too_many = tmp_path / "many.txt"
    too_many.write_text("\n".join(cid_of(i) for i in range(100_001)))
    assert cli.batch("pin", "--file", str(too_many)) == 1
    assert capsys.readouterr() == ("", "s3ipfs: more than 100000 CIDs; split the list\n")
    assert cli.ops.batches.batches() == []


def test_batch_pin_rejected_by_the_api(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.batch("pin", CIDS[0], "bogus") == 1
    assert capsys.readouterr() == ("", "s3ipfs: not a CID: 'bogus'\n")
    assert cli.ops.batches.batches() == []


def test_batch_unpin_reports_skipped(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    (cid,) = pinned_objects(cli, 1)
    assert cli.batch("unpin", cid, "--wait") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert batch_line(lines[0])["state"] == "done" and batch_line(lines[0])["skipped"] == "1"
    assert lines[1:] == [f"  error: {cid}: objects still reference it (delete them to release it)"]
    assert cid in cli.ops.pinner.pinned


def test_batch_repin_with_a_policy_and_wait(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    pinned_objects(cli, 3)
    assert cli.batch("repin", BUCKET, "--min", "3", "--max", "3", "--wait") == 0
    captured = capsys.readouterr()
    assert [batch_line(line)["state"] for line in captured.err.splitlines()] == ["running"]
    (final,) = captured.out.splitlines()
    assert (batch_line(final)["op"], batch_line(final)["state"], batch_line(final)["done"]) == ("repin", "done", "3")
    stored = json.loads(cli.ops.store.get_bucket_config(BUCKET, "replication") or "{}")
    assert (stored["replication_min"], stored["replication_max"]) == (3, 3)
    assert cli.batch("repin", "nope") == 1
    assert capsys.readouterr().err == "s3ipfs: no such bucket: nope\n"


def test_batch_list_status_and_cancel(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.batch("list") == 0
    assert capsys.readouterr().out == ""
    cli.ops.pinner.pin_delay = 0.5
    assert cli.batch("pin", *(cid_of(600 + i) for i in range(100)), "--json") == 0
    running = out_json(capsys)["id"]
    assert cli.batch("status", running) == 0
    assert batch_line(capsys.readouterr().out.strip())["state"] == "running"
    assert cli.batch("cancel", running) == 0
    assert capsys.readouterr().out == f"cancelled {running}\n"
    assert cli.batch("status", running, "--wait", "--json") == 0
    assert out_json(capsys)["state"] == "cancelled"
    assert cli.batch("cancel", running) == 1
    assert capsys.readouterr().err == f"s3ipfs: batch {running} is cancelled, not running\n"
    assert cli.batch("cancel", "feedfacefeedface", "--json") == 1
    assert capsys.readouterr().err == "s3ipfs: no such batch: 'feedfacefeedface'\n"
    cli.ops.pinner.pin_delay = 0.0
    cli.ops.clock.now += 10
    assert cli.batch("pin", CIDS[0], "--wait") == 0
    capsys.readouterr()
    assert cli.batch("list") == 0
    lines = [batch_line(line) for line in capsys.readouterr().out.splitlines()]
    assert [(b["state"], b["total"]) for b in lines] == [("done", "1"), ("cancelled", "100")]
    assert cli.batch("list", "--json") == 0
    assert [b["id"] for b in out_json(capsys)["batches"]][1] == running


# ---- failures of the gateway --------------------------------------------------------------------------------------


@dataclass
class Canned:
    """A tiny HTTP server answering canned (status, body) per (method, path); records what it was sent."""

    routes: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: Any) -> None:
        self.routes[(method, path)] = (status, body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.fixture
def canned(tmp_path: Path) -> Iterator[tuple[Canned, Path]]:
    state = Canned()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.seen.append((self.command, self.path, self.rfile.read(length)))
            status, body = state.routes.get((self.command, self.path), (404, b'{"error": "no canned answer"}'))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _reply

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, write_config(tmp_path, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("status", "body", "code", "message"),
    [
        (400, {"error": "limit must be an integer"}, 1, "limit must be an integer"),
        (404, b"<html>not found</html>", 1, "HTTP 404 from GET /pins/summary"),
        (409, {"detail": "no error key"}, 1, "HTTP 409 from GET /pins/summary"),
        (500, {"error": "internal trouble"}, 4, "internal trouble"),
        (502, {"error": "the cluster answered 500: boom"}, 4, "the cluster answered 500: boom"),
        (500, b"Internal Server Error", 4, "HTTP 500 from GET /pins/summary"),
        (503, {"error": "cluster unreachable"}, 3, "cluster unreachable"),
        (503, b"", 3, "HTTP 503 from GET /pins/summary"),
    ],
)
def test_api_errors_map_to_exit_codes(
    canned: tuple[Canned, Path], capsys: pytest.CaptureFixture[str], status: int, body: Any, code: int, message: str
) -> None:
    server, config = canned
    server.answer("GET", "/pins/summary", status, body)
    assert main(["pins", "summary", "--config", str(config)]) == code
    assert capsys.readouterr() == ("", f"s3ipfs: {message}\n")


def test_a_failed_batch_exits_4(canned: tuple[Canned, Path], capsys: pytest.CaptureFixture[str]) -> None:
    server, config = canned
    doc = {
        "id": "00112233aabbccdd",
        "op": "repin",
        "params": {},
        "started": 1.0,
        "state": "failed",
        "total": None,
        "done": 5,
        "failed": 1,
        "skipped": 0,
        "finished": 2.0,
        "errors": ["disk I/O error"],
    }
    server.answer("GET", "/batches/00112233aabbccdd", 200, doc)
    assert main(["pins", "batch", "status", "00112233aabbccdd", "--config", str(config)]) == 4
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "00112233aabbccdd  repin failed    5/? done, 1 failed, 0 skipped",
        "  error: disk I/O error",
    ]
    assert captured.err == "s3ipfs: batch 00112233aabbccdd failed\n"


def test_requests_sent(canned: tuple[Canned, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The method, path and body each command sends (the canned server answers 404 to each)."""
    server, config = canned
    for argv in (
        ["reconcile", "--dry-run"],
        ["rebalance"],
        ["list", "--state", "error", "--after", "b x", "--limit", "5"],
        ["policy", "set", BUCKET, "--min", "1", "--tags", "site=a"],
        ["batch", "repin", BUCKET, "--prefix", "a/", "--ack", "cluster"],
        ["batch", "unpin", CIDS[0]],
    ):
        assert main(["pins", *argv, "--config", str(config)]) == 1
    capsys.readouterr()
    assert [(m, p, json.loads(b) if b else None) for m, p, b in server.seen] == [
        ("POST", "/reconcile?dry_run=1", None),
        ("POST", "/rebalance", None),
        ("GET", "/pins?limit=5&state=error&after=b+x", None),
        ("PUT", f"/buckets/{BUCKET}/replication", {"replication_min": 1, "tags": {"site": "a"}}),
        ("POST", "/batches", {"op": "repin", "bucket": BUCKET, "prefix": "a/", "policy": {"ack": "cluster"}}),
        ("POST", "/batches", {"op": "unpin", "cids": [CIDS[0]]}),
    ]


def test_nothing_listening_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)
    config = write_config(tmp_path, port)
    for argv in (["summary"], ["reconcile"], ["batch", "list"], ["batch", "pin", CIDS[0]]):
        assert main(["pins", *argv, "--config", str(config)]) == 3
        assert capsys.readouterr() == (
            "",
            f"s3ipfs: cannot reach the gateway's admin API at http://127.0.0.1:{port} (ConnectError); "
            "is s3ipfs running?\n",
        )


def test_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("admin:\n  port: 70000\n")
    assert main(["pins", "summary", "--config", str(config)]) == 2
    assert "admin.port" in capsys.readouterr().err
