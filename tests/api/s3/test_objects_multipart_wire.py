"""Objects and multipart on the raw wire through Quart's test client (content in memory): hostile partNumber, Complete
XML, checksum and condition inputs get their S3 code, never a 500, and leave metadata and references unchanged; a
conditional write that loses a race is a 409."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, S3Config
from appliance.model import AddedContent
from appliance.service.buckets import BucketService
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.api.s3.test_app_quart import AK, SK, MemoryContent, _call

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class ComposingContent(MemoryContent):
    """MemoryContent that can also link parts (by concatenation) and hold an add until released."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def add(self, chunks: AsyncIterator[bytes], *, pin: bool = True) -> AddedContent:
        gate, self.gate = self.gate, None  # holds the next add only
        if gate is not None:
            self.entered.set()
            await gate.wait()
        return await super().add(chunks, pin=pin)

    async def compose(self, parts: Sequence[tuple[str, int]], *, pin: bool = True) -> str:
        data = b"".join(self.blobs[cid] for cid, _ in parts)
        cid = "bafk" + hashlib.sha256(data).hexdigest()[:20]
        self.blobs[cid] = data
        return cid


@pytest.fixture
def wire(tmp_path: Path) -> Any:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = ComposingContent()
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),
        multipart=MultipartService(store, content, unpin_grace=0, min_part_size=1),
        buckets=BucketService(store, default_region="us-east-1"),
        identity=Identity([Credentials(AK, SK)]),
        s3=S3Config(max_xml_body_bytes=4096),
        auth=AuthConfig(),
    )
    app = create_app(services)
    app.extensions["content"] = content
    app.extensions["store"] = store
    yield app
    store.close()


def _code(body: bytes) -> str:
    return ET.fromstring(body).findtext("Code") or ""


async def _multipart(app: Quart, key: str, parts: list[bytes]) -> tuple[str, list[str]]:
    created = await _call(app, "POST", f"/wire-bucket/{key}?uploads")
    upload_id = ET.fromstring(await created.get_data()).findtext(f"{NS}UploadId") or ""
    etags = []
    for number, data in enumerate(parts, start=1):
        reply = await _call(app, "PUT", f"/wire-bucket/{key}?partNumber={number}&uploadId={upload_id}", body=data)
        etags.append(reply.headers["ETag"])
    return upload_id, etags


def _complete_xml(etags: list[str], extra: str = "") -> bytes:
    parts = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag>{extra}</Part>" for n, e in enumerate(etags, start=1)
    )
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


async def test_part_number_reads_and_errors(wire: Quart) -> None:
    await _call(wire, "PUT", "/wire-bucket")
    upload_id, etags = await _multipart(wire, "mp", [b"abc", b"defgh"])
    done = await _call(wire, "POST", f"/wire-bucket/mp?uploadId={upload_id}", body=_complete_xml(etags))
    assert done.status_code == 200
    part = await _call(wire, "GET", "/wire-bucket/mp?partNumber=2")
    assert part.status_code == 206 and await part.get_data() == b"defgh"
    assert part.headers["Content-Range"] == "bytes 3-7/8" and part.headers["x-amz-mp-parts-count"] == "2"
    assert part.headers["Content-Length"] == "5"
    head = await _call(wire, "HEAD", "/wire-bucket/mp?partNumber=1")
    assert head.status_code == 206 and head.headers["Content-Range"] == "bytes 0-2/8"
    whole = await _call(wire, "GET", "/wire-bucket/mp")
    assert whole.status_code == 200 and "x-amz-mp-parts-count" not in whole.headers
    cases = [
        ("partNumber=3", 416, "InvalidPartNumber"),
        ("partNumber=0", 400, "InvalidArgument"),
        ("partNumber=" + "9" * 500, 400, "InvalidArgument"),
        ("partNumber=%00", 400, "InvalidArgument"),
        ("partNumber=1&versionId=bogus", 400, "InvalidArgument"),
    ]
    for query, status, code in cases:
        reply = await _call(wire, "GET", f"/wire-bucket/mp?{query}")
        assert (reply.status_code, _code(await reply.get_data())) == (status, code), query
    ranged = await _call(wire, "GET", "/wire-bucket/mp?partNumber=1", headers={"Range": "bytes=0-0"})
    assert (ranged.status_code, _code(await ranged.get_data())) == (400, "InvalidRequest")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ("<ChecksumSHA256><x/></ChecksumSHA256>", "MalformedXML"),
        ("<ChecksumSHA256></ChecksumSHA256>", "MalformedXML"),
        ("<ChecksumCRC32>" + "A" * 200 + "</ChecksumCRC32>", "MalformedXML"),
        ("<ChecksumCRC32>AAAAAA==</ChecksumCRC32>", "InvalidPart"),
        ("<ChecksumSHA1>not base64 at all</ChecksumSHA1>", "InvalidPart"),
        ("<ChecksumFOO>x</ChecksumFOO>", None),  # unknown checksum elements are not checked
        ("<Color>red</Color>", "MalformedXML"),
    ],
)
async def test_hostile_part_checksums_in_complete(wire: Quart, extra: str, code: str | None) -> None:
    await _call(wire, "PUT", "/wire-bucket")
    upload_id, etags = await _multipart(wire, "mp", [b"abc", b"defgh"])
    store: LmdbMetadataStore = wire.extensions["store"]
    parts_before = store.list_parts(upload_id)
    reply = await _call(wire, "POST", f"/wire-bucket/mp?uploadId={upload_id}", body=_complete_xml(etags, extra))
    if code is None:
        assert reply.status_code == 200
        return
    assert (reply.status_code, _code(await reply.get_data())) == (400, code)
    assert store.get_object("wire-bucket", "mp") is None
    assert store.list_parts(upload_id) == parts_before
    assert [store.cid_refcount(p.cid) for p in parts_before] == [1, 1]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"<CompleteMultipartUpload>" + b"<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>" * 200, 400, None),
        (b"<CompleteMultipartUpload><Part><PartNumber>100000</PartNumber><ETag>e</ETag></Part>", 400, "MalformedXML"),
        (
            b"<CompleteMultipartUpload><Part><PartNumber>99999</PartNumber><ETag>e</ETag></Part>"
            b"</CompleteMultipartUpload>",
            400,
            "InvalidPart",
        ),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><CompleteMultipartUpload/>', 400, "MalformedXML"),
        (b"\xff\xfe<", 400, "MalformedXML"),
    ],
)
async def test_hostile_complete_documents(wire: Quart, body: bytes, status: int, code: str | None) -> None:
    await _call(wire, "PUT", "/wire-bucket")
    upload_id, _ = await _multipart(wire, "mp", [b"abc"])
    reply = await _call(wire, "POST", f"/wire-bucket/mp?uploadId={upload_id}", body=body)
    assert reply.status_code == status
    if code is not None:
        assert _code(await reply.get_data()) == code
    store: LmdbMetadataStore = wire.extensions["store"]
    assert store.get_upload(upload_id) is not None and store.get_object("wire-bucket", "mp") is None


async def test_conditional_put_that_loses_a_race_is_409(wire: Quart) -> None:
    await _call(wire, "PUT", "/wire-bucket")
    content: ComposingContent = wire.extensions["content"]
    store: LmdbMetadataStore = wire.extensions["store"]
    gate = content.gate = asyncio.Event()
    slow = asyncio.create_task(_call(wire, "PUT", "/wire-bucket/k", body=b"slow", headers={"If-None-Match": "*"}))
    await content.entered.wait()  # the slow PUT passed its first check; its body is being added
    fast = await _call(wire, "PUT", "/wire-bucket/k", body=b"fast")
    assert fast.status_code == 200
    gate.set()
    reply = await slow
    assert (reply.status_code, _code(await reply.get_data())) == (409, "ConditionalRequestConflict")
    meta = store.get_object("wire-bucket", "k")
    assert meta is not None and content.blobs[meta.cid] == b"fast"
    slow_cid = next(cid for cid, data in content.blobs.items() if data == b"slow")
    assert store.cid_refcount(slow_cid) == 0
    assert slow_cid in store.claim_due_unpins(1e12, 100)  # its release was queued


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    part=st.text(max_size=30),
    if_match=st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)),
    marker=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
async def test_fuzzed_object_inputs_never_500(wire: Quart, part: str, if_match: str | None, marker: str) -> None:
    await _call(wire, "PUT", "/wire-bucket")
    await _call(wire, "PUT", "/wire-bucket/k", body=b"data")
    from urllib.parse import quote

    reply = await _call(wire, "GET", f"/wire-bucket/k?partNumber={quote(part, safe='')}")
    assert reply.status_code in (206, 400, 416)
    headers = {} if if_match is None else {"If-Match": if_match}
    reply = await _call(wire, "PUT", "/wire-bucket/k", body=b"data", headers=headers)
    assert reply.status_code in (200, 412)
    reply = await _call(
        wire,
        "GET",
        "/wire-bucket/k?attributes",
        headers={"x-amz-object-attributes": "ObjectParts,ETag", "x-amz-part-number-marker": marker},
    )
    assert reply.status_code == 200
