"""The S3 app through Quart's test client: every request signed by botocore, content in an in-memory fake (the unit
under test is the front end; the live suites use a real IPFS node)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from quart import Quart

import appliance.api.s3.handlers as handlers_module
from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, S3Config
from appliance.errors import BackendUnavailable
from appliance.model import AddedContent
from appliance.service.buckets import BucketService
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.support import raw

AK, SK = "AKIDTEST", "secret-test"
HOST = "127.0.0.1:9000"


class MemoryContent:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.down = False

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        data = b"".join([c async for c in chunks])
        if self.down:
            raise BackendUnavailable("node down")
        cid = "bafk" + hashlib.sha256(data).hexdigest()[:20]
        self.blobs[cid] = data
        return AddedContent(cid=cid, size=len(data))

    async def cat(
        self, cid: str, offset: int = 0, length: int | None = None, *, size: int | None = None
    ) -> AsyncIterator[bytes]:
        if self.down:
            raise BackendUnavailable("node down")
        data = self.blobs[cid]
        yield data[offset : None if length is None else offset + length]

    async def pin(self, cid: str) -> None: ...
    async def unpin(self, cid: str) -> None: ...
    async def is_pinned(self, cid: str) -> bool:
        return True

    async def ping(self) -> str:
        return "mem"

    async def aclose(self) -> None: ...


@pytest.fixture
def app(tmp_path: Path) -> Any:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = MemoryContent()
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),
        multipart=MultipartService(store, content, unpin_grace=0),
        buckets=BucketService(store, default_region="us-east-1"),
        identity=Identity([Credentials(AK, SK)]),
        s3=S3Config(),
        auth=AuthConfig(),
    )
    quart_app = create_app(services)
    quart_app.extensions["content"] = content
    yield quart_app
    store.close()


async def _call(
    app: Quart, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, sign: bool = True
) -> Any:
    all_headers = dict(headers or {})
    if sign:
        all_headers = raw.signed_headers(
            method, f"http://{HOST}{path}", access_key=AK, secret_key=SK, headers=all_headers, body=body
        )
    all_headers["Host"] = HOST
    all_headers["Content-Length"] = str(len(body))  # the test client does not add it
    client = app.test_client()
    return await client.open(path, method=method, headers=all_headers, data=body)


async def test_bucket_and_object_cycle(app: Quart) -> None:
    assert (await _call(app, "PUT", "/quart-bucket")).status_code == 200
    listing = await _call(app, "GET", "/")
    assert b"<Name>quart-bucket</Name>" in await listing.get_data()
    put = await _call(app, "PUT", "/quart-bucket/a%20key", body=b"hello", headers={"x-amz-meta-color": "blue"})
    assert put.status_code == 200
    assert put.headers["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    got = await _call(app, "GET", "/quart-bucket/a%20key")
    assert await got.get_data() == b"hello"
    assert got.headers["x-amz-meta-color"] == "blue"
    assert got.headers["Content-Length"] == "5"
    head = await _call(app, "HEAD", "/quart-bucket/a%20key")
    assert head.headers["ETag"] == put.headers["ETag"]  # (Content-Length of HEAD: see the live tests)
    listed = await _call(app, "GET", "/quart-bucket?list-type=2")
    assert b"<Key>a key</Key>" in await listed.get_data()
    assert (await _call(app, "DELETE", "/quart-bucket/a%20key")).status_code == 204
    assert (await _call(app, "DELETE", "/quart-bucket")).status_code == 204


async def test_unexpected_exception_is_internal_error(app: Quart, monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(ctx: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setitem(handlers_module.HANDLERS, "ListBuckets", boom)
    response = await _call(app, "GET", "/")
    body = await response.get_data()
    assert response.status_code == 500
    assert ET.fromstring(body).findtext("Code") == "InternalError"
    assert b"secret internal detail" not in body
    assert b"Traceback" not in body
    assert response.headers["x-amz-request-id"]


async def test_backend_unavailable_is_503_with_retry_after(app: Quart) -> None:
    await _call(app, "PUT", "/down-bucket")
    app.extensions["content"].down = True
    response = await _call(app, "PUT", "/down-bucket/k", body=b"x")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert ET.fromstring(await response.get_data()).findtext("Code") == "ServiceUnavailable"


async def test_head_errors_have_no_body(app: Quart) -> None:
    response = await _call(app, "HEAD", "/missing-bucket/k")
    assert response.status_code == 404
    assert await response.get_data() == b""


async def test_anonymous_denied(app: Quart) -> None:
    response = await _call(app, "GET", "/", sign=False)
    assert response.status_code == 403
    assert ET.fromstring(await response.get_data()).findtext("Code") == "AccessDenied"
