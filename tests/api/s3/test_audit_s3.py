"""The S3 app writes one audit record per state-changing or denied request (through Quart's test client, signed by
botocore): the fields are right, reads are not recorded, and the secret never appears in the files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from appliance.api.s3.app import create_app
from appliance.api.s3.context import S3Services
from appliance.config import AuthConfig, S3Config
from appliance.service.audit import Auditor
from appliance.service.audit_log import AuditLog, AuditSettings, records, verify_dir
from appliance.service.buckets import BucketService
from appliance.service.identity import Credentials, Identity
from appliance.service.multipart import MultipartService
from appliance.service.objects import ObjectService
from appliance.state.lmdb_store import LmdbMetadataStore
from tests.api.s3.test_app_quart import AK, SK, MemoryContent, _call


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[tuple[Quart, Path]]:
    store = LmdbMetadataStore(tmp_path / "meta", map_size=1 << 26)
    content = MemoryContent()
    log = AuditLog(AuditSettings(directory=tmp_path / "audit"))
    services = S3Services(
        objects=ObjectService(store, content, unpin_grace=0),
        multipart=MultipartService(store, content, unpin_grace=0),
        buckets=BucketService(store, default_region="us-east-1"),
        identity=Identity([Credentials(AK, SK)]),
        s3=S3Config(),
        auth=AuthConfig(),
        auditor=Auditor(log.append),
    )
    yield create_app(services), tmp_path / "audit"
    log.close()
    store.close()


def audit(directory: Path) -> list[dict[str, Any]]:
    assert verify_dir(directory)[1] is None
    return [data for _f, _l, data in records(directory)]


async def test_writes_and_denials_are_recorded(audited: tuple[Quart, Path]) -> None:
    app, directory = audited
    assert (await _call(app, "PUT", "/audited")).status_code == 200
    put = await _call(app, "PUT", "/audited/some/key", body=b"hello audit")
    assert put.status_code == 200
    assert (await _call(app, "GET", "/audited/some/key")).status_code == 200  # a read: not recorded
    assert (await _call(app, "HEAD", "/audited/some/key")).status_code == 200
    tagging = b"<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"
    assert (await _call(app, "PUT", "/audited/some/key?tagging", body=tagging)).status_code == 200
    assert (await _call(app, "GET", "/audited", sign=False)).status_code == 403  # anonymous: denied
    assert (await _call(app, "DELETE", "/audited/some/key")).status_code == 204
    got = audit(directory)
    summary = [(d["action"], d["status"], d["resource"]) for d in got]
    assert summary[:3] == [
        ("CreateBucket", 200, "audited"),
        ("PutObject", 200, "audited/some/key"),
        ("PutObjectTagging", 200, "audited/some/key"),
    ]
    assert summary[3][1:] == (403, "audited") and got[3]["code"] == "AccessDenied"
    assert got[3]["principal"] == {"user": "", "access_key": ""}
    assert summary[-1] == ("DeleteObject", 204, "audited/some/key")
    written = got[1]
    assert written["principal"] == {"user": "root", "access_key": AK}
    assert written["bytes"] == len(b"hello audit") and written["cid"] == put.headers["x-ipfs-cid"]
    assert written["request_id"] == put.headers["x-amz-request-id"]
    assert written["api"] == "s3" and "time" in written and "source_ip" in written
    assert SK not in "".join(p.read_text() for p in directory.glob("audit-*"))


async def test_a_wrong_signature_is_a_denied_record(audited: tuple[Quart, Path]) -> None:
    app, directory = audited
    from tests.support import raw

    headers = raw.signed_headers("GET", "http://127.0.0.1:9000/", access_key=AK, secret_key="not-the-secret")
    headers["Host"] = "127.0.0.1:9000"
    headers["Content-Length"] = "0"
    response = await app.test_client().open("/", method="GET", headers=headers)  # type: ignore[call-arg]
    assert response.status_code == 403
    (record,) = audit(directory)
    assert (record["action"], record["code"], record["principal"]["access_key"]) == (
        "GET",
        "SignatureDoesNotMatch",
        "",
    )
