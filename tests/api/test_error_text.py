"""Internal detail never reaches a client (api/error_text.py): errors that carry a node URL, an LMDB message and a
file path, raised by a failing content store, metadata store or pinner, are answered with the error code and a
generic message; the detail is in the log record under the response's request id. S3 and admin alike, through
Quart's test client (the live case, with a stopped IPFS node, is in tests/integration/test_daemon.py)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from prometheus_client import CollectorRegistry
from quart import Quart

from appliance.api.admin.app import AdminState
from appliance.api.error_text import INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE
from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, S3Config
from appliance.errors import BackendError, BackendUnavailable, ConfigError
from appliance.model import ReplicationPolicy
from appliance.service.buckets import BucketService
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.service.pin_orchestrator import OrchestratorSettings, PinOrchestrator
from appliance.service.pin_policy import PolicyBook
from appliance.service.unpinner import Unpinner
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.api.s3.test_app_quart import AK, SK, MemoryContent, _call
from tests.support.admin_auth import authed_admin_app
from tests.unit.service.test_pin_orchestrator import FakePinner
from tests.unit.state.support import GRACE, make_bucket, make_meta

_serial = itertools.count()


def planted(kind: type[BaseException] = BackendError) -> BaseException:
    """An error whose text holds what must never reach a client: a node URL, an LMDB message, a state path; each
    with its own marker so a leak names the case."""
    marker = f"LEAK{next(_serial):03d}"
    return kind(
        f"IPFS cat {marker}: http://10.66.77.88:5999/api/v0/cat answered 500; "
        "mdb_txn_begin: MDB_MAP_FULL: Environment mapsize limit reached; /var/lib/s3ipfs/meta/data.mdb"
    )


LEAKS = ("LEAK", "10.66.77.88", "5999", "/api/v0", "MDB_MAP_FULL", "mdb_txn_begin", "/var/lib/s3ipfs")


def _marker(error: BaseException) -> str:
    return str(error).split(":", 1)[0].rsplit(" ", 1)[-1]


def assert_clean(status: int, headers: Any, body: bytes) -> None:
    """Nothing of the planted detail in the body or any header."""
    seen = body.decode("utf-8", "replace") + "\n" + "\n".join(f"{name}: {value}" for name, value in headers.items())
    for leak in LEAKS:
        assert leak not in seen, f"{leak!r} reached the client ({status}): {seen[:600]}"


def assert_logged(caplog: pytest.LogCaptureFixture, request_id: str, error: BaseException) -> None:
    """A log record names the request id and holds the planted detail."""
    marker = _marker(error)
    for record in caplog.records:
        text = record.getMessage()
        if request_id in text and marker in text and "10.66.77.88:5999" in text and "MDB_MAP_FULL" in text:
            return
    raise AssertionError(f"no log record with {request_id} and {marker}: {[r.getMessage() for r in caplog.records]}")


# ---- S3 -----------------------------------------------------------------------------------------------------------


class FailingContent(MemoryContent):
    """The in-memory content store, with `fail` (when set) raised by add and cat."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: BaseException | None = None

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> Any:
        if self.fail is not None:
            async for _ in chunks:
                pass
            raise self.fail
        return await super().add(chunks, pin=pin)

    async def cat(
        self, cid: str, offset: int = 0, length: int | None = None, *, size: int | None = None
    ) -> AsyncIterator[bytes]:
        if self.fail is not None:
            raise self.fail
        async for piece in super().cat(cid, offset, length, size=size):
            yield piece


@dataclass
class S3Rig:
    app: Quart
    store: LmdbMetadataStore
    content: FailingContent


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Rig]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = FailingContent()
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),  # type: ignore[arg-type]
        multipart=MultipartService(store, content, unpin_grace=0),  # type: ignore[arg-type]
        buckets=BucketService(store, default_region="us-east-1"),
        identity=Identity([Credentials(AK, SK)]),
        s3=S3Config(),
        auth=AuthConfig(),
    )
    yield S3Rig(create_app(services), store, content)
    store.close()


def _raiser(error: BaseException) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


DELETE_BODY = b"<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object></Delete>"

# (name, the failing part, the error's class, request) -> S3 code and status expected
S3_CASES: list[tuple[str, str, type[BaseException], tuple[str, str, bytes], str, int]] = [
    ("put: content add fails", "content", BackendError, ("PUT", "/leaky/new", b"data"), "InternalError", 500),
    ("put: node unavailable", "content", BackendUnavailable, ("PUT", "/leaky/new", b"data"), "ServiceUnavailable", 503),
    ("get: content cat fails", "content", BackendError, ("GET", "/leaky/there", b""), "InternalError", 500),
    ("get: node unavailable", "content", BackendUnavailable, ("GET", "/leaky/there", b""), "ServiceUnavailable", 503),
    ("list buckets: store fails", "list_buckets", BackendError, ("GET", "/", b""), "InternalError", 500),
    ("head object: store raises", "get_object", RuntimeError, ("HEAD", "/leaky/there", b""), "InternalError", 500),
    ("get object: unmapped OSError", "get_object", OSError, ("GET", "/leaky/there", b""), "InternalError", 500),
    ("list: config error", "list_objects", ConfigError, ("GET", "/leaky?list-type=2", b""), "InternalError", 500),
    ("create bucket: store fails", "create_bucket", BackendError, ("PUT", "/another", b""), "InternalError", 500),
]


@pytest.mark.parametrize(
    ("failing", "kind", "request_", "code", "status"),
    [case[1:] for case in S3_CASES],
    ids=[case[0] for case in S3_CASES],
)
async def test_s3_errors_carry_no_internal_detail(
    s3: S3Rig,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    kind: type[BaseException],
    request_: tuple[str, str, bytes],
    code: str,
    status: int,
) -> None:
    assert (await _call(s3.app, "PUT", "/leaky")).status_code == 200
    assert (await _call(s3.app, "PUT", "/leaky/there", body=b"stored")).status_code == 200
    error = planted(kind)
    if failing == "content":
        s3.content.fail = error
    else:
        monkeypatch.setattr(s3.store, failing, _raiser(error))
    method, path, body = request_
    with caplog.at_level(logging.WARNING):
        response = await _call(s3.app, method, path, body=body)
    data = await response.get_data()
    assert response.status_code == status
    assert_clean(response.status_code, response.headers, data)
    request_id = response.headers["x-amz-request-id"]
    if method != "HEAD":
        document = ET.fromstring(data)
        assert document.findtext("Code") == code
        assert document.findtext("Message") == (UNAVAILABLE_MESSAGE if status == 503 else INTERNAL_MESSAGE)
        assert document.findtext("RequestId") == request_id
    assert_logged(caplog, request_id, error)


async def test_delete_objects_entries_carry_no_internal_detail(
    s3: S3Rig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _call(s3.app, "PUT", "/leaky")
    error = planted()
    monkeypatch.setattr(s3.store, "delete_object", _raiser(error))
    md5 = base64.b64encode(hashlib.md5(DELETE_BODY).digest()).decode()
    with caplog.at_level(logging.WARNING):
        response = await _call(s3.app, "POST", "/leaky?delete", body=DELETE_BODY, headers={"Content-MD5": md5})
    data = await response.get_data()
    assert response.status_code == 200
    assert_clean(200, response.headers, data)
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    entries = ET.fromstring(data).findall("s3:Error", ns)
    assert [(e.findtext("s3:Code", None, ns), e.findtext("s3:Message", None, ns)) for e in entries] == [
        ("InternalError", INTERNAL_MESSAGE)
    ] * 2
    assert_logged(caplog, response.headers["x-amz-request-id"], error)


async def test_s3_client_errors_keep_their_message(s3: S3Rig) -> None:
    response = await _call(s3.app, "GET", "/no-such-bucket/k")
    document = ET.fromstring(await response.get_data())
    assert (response.status_code, document.findtext("Code")) == (404, "NoSuchBucket")
    assert document.findtext("Message").startswith("The specified bucket does not exist")


# ---- admin ----------------------------------------------------------------------------------------------------------


CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyka"


@dataclass
class AdminRig:
    app: Quart
    store: LmdbMetadataStore
    content: FailingContent
    pinner: FakePinner

    async def get(self, path: str) -> Any:
        return await self.app.test_client().get(path)


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[AdminRig]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26, pin_outbox=True)
    content = FailingContent()
    pinner = FakePinner()
    policies = PolicyBook(store, ReplicationPolicy(1, 1))
    orchestrator = PinOrchestrator(
        store, pinner, policies, OrchestratorSettings(), rng=random.Random(1), registry=CollectorRegistry()
    )
    state = AdminState(
        objects=ObjectService(store, content, unpin_grace=0),  # type: ignore[arg-type]
        content=content,  # type: ignore[arg-type]
        store=store,
        unpinner=Unpinner(store, content, interval=1.0),  # type: ignore[arg-type]
        pinner=pinner,
        policies=policies,
        orchestrator=orchestrator,
    )
    yield AdminRig(authed_admin_app(state, tmp_path), store, content, pinner)
    store.close()


ADMIN_CASES: list[tuple[str, str, type[BaseException], str, str, int]] = [
    ("live pin status: pinner fails", "status", BackendError, f"/pins/{CID}?live=1", "BadGateway", 502),
    ("peers: cluster unreachable", "peers", BackendUnavailable, "/peers", "ServiceUnavailable", 503),
    ("pin listing: store fails", "pin_statuses", BackendError, "/pins", "BadGateway", 502),
    ("summary: unmapped exception", "pin_state_counts", RuntimeError, "/pins/summary", "InternalError", 500),
    ("by CID: store fails", "objects_by_cid", OSError, f"/objects/by-cid/{CID}", "InternalError", 500),
    ("metrics: store fails", "unpin_queue_depth", ConfigError, "/metrics", "InternalError", 500),
]


@pytest.mark.parametrize(
    ("failing", "kind", "path", "code", "status"),
    [case[1:] for case in ADMIN_CASES],
    ids=[case[0] for case in ADMIN_CASES],
)
async def test_admin_errors_carry_no_internal_detail(
    admin: AdminRig,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
    kind: type[BaseException],
    path: str,
    code: str,
    status: int,
) -> None:
    error = planted(kind)
    if failing == "status":
        admin.store.create_bucket(make_bucket())
        admin.store.put_object(make_meta("k", CID), unpin_grace=GRACE, now=0.0)  # queues the CID's pin job
        admin.pinner.statuses[CID] = [error]
    elif failing == "peers":
        monkeypatch.setattr(admin.pinner, "peers", _async_raiser(error))
    else:
        monkeypatch.setattr(admin.store, failing, _raiser(error))
    with caplog.at_level(logging.WARNING):
        response = await admin.get(path)
    data = await response.get_data()
    assert response.status_code == status
    assert_clean(status, response.headers, data)
    body = await response.get_json()
    request_id = body["request_id"]
    assert response.headers["x-request-id"] == request_id
    generic = UNAVAILABLE_MESSAGE if status == 503 else INTERNAL_MESSAGE
    assert body == {"error": f"{generic} (request id {request_id})", "code": code, "request_id": request_id}
    assert_logged(caplog, request_id, error)


def _async_raiser(error: BaseException) -> Callable[..., Any]:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


async def test_admin_ready_reasons_carry_no_internal_detail(
    admin: AdminRig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    node_error, store_error = planted(BackendUnavailable), planted(OSError)
    monkeypatch.setattr(admin.content, "ping", _async_raiser(node_error))
    monkeypatch.setattr(admin.store, "schema_version", _raiser(store_error))
    with caplog.at_level(logging.WARNING):
        response = await admin.get("/ready")
    data = await response.get_data()
    assert response.status_code == 503
    assert_clean(503, response.headers, data)
    components = (await response.get_json())["components"]
    ipfs, metadata = components["ipfs"]["reason"], components["metadata"]["reason"]
    assert ipfs.startswith("the IPFS node cannot be reached (request id ")
    assert metadata.startswith("the metadata store cannot be read (request id ")
    assert_logged(caplog, ipfs.split("request id ", 1)[1].split(";", 1)[0], node_error)
    assert_logged(caplog, metadata.split("request id ", 1)[1].split(";", 1)[0], store_error)


async def test_admin_client_errors_keep_their_message(admin: AdminRig) -> None:
    response = await admin.get("/pins?limit=0")
    assert response.status_code == 400
    assert await response.get_json() == {"error": "limit must be an integer from 1 to 10000"}
    missing = await admin.get("/no/such/route")
    assert missing.status_code == 404  # Quart's own, untouched by the error handlers
