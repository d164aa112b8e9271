"""The aws cli (`aws s3` and `aws s3api`) against the real gateway daemon: v1 (PyPI, in .venv) and v2 (Debian's
awscli package, installed by scripts/setup.sh)."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.system.conftest import BIN, client_env, run

CLIS = {"v1": BIN / "aws", "v2": Path("/usr/bin/aws")}
_current = {"cli": "v1"}


@pytest.fixture(params=sorted(CLIS), autouse=True)
def cli(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs with both major versions of the aws cli."""
    if not CLIS[request.param].exists():
        pytest.fail(f"aws cli {request.param} is missing at {CLIS[request.param]}: run scripts/setup.sh")
    _current["cli"] = request.param
    yield request.param


def _b(name: str) -> str:
    """A bucket name of its own per cli version."""
    return f"{name}-{_current['cli']}"


def _aws(gateway: Gateway, tmp_path: Path, *args: str) -> str:
    env = client_env(gateway, tmp_path / "home")
    return run([str(CLIS[_current["cli"]]), "--endpoint-url", gateway.endpoint, *args], env).stdout


def test_aws_s3_round_trip(gateway: Gateway, tmp_path: Path, s3: Any) -> None:
    assert f"make_bucket: {_b('cli-bucket')}" in _aws(gateway, tmp_path, "s3", "mb", f"s3://{_b('cli-bucket')}")
    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(5 * 1024 * 1024 + 11))
    _aws(gateway, tmp_path, "s3", "cp", str(source), f"s3://{_b('cli-bucket')}/dir/upload.bin")
    listing = _aws(gateway, tmp_path, "s3", "ls", f"s3://{_b('cli-bucket')}/dir/")
    assert "upload.bin" in listing
    assert str(source.stat().st_size) in listing
    target = tmp_path / "download.bin"
    _aws(gateway, tmp_path, "s3", "cp", f"s3://{_b('cli-bucket')}/dir/upload.bin", str(target))
    assert target.read_bytes() == source.read_bytes()
    _aws(gateway, tmp_path, "s3", "rm", f"s3://{_b('cli-bucket')}/dir/upload.bin")
    assert "Contents" not in s3.list_objects_v2(Bucket=_b("cli-bucket"))
    _aws(gateway, tmp_path, "s3", "rb", f"s3://{_b('cli-bucket')}")


def test_aws_s3_sync_tree(gateway: Gateway, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    files = {
        "a.txt": b"alpha",
        "sub/b.bin": os.urandom(70_000),
        "sub/deeper/c with spaces.txt": b"gamma",
        "sub/deeper/d+plus.txt": b"delta",
        "empty.dat": b"",
    }
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    _aws(gateway, tmp_path, "s3", "mb", f"s3://{_b('sync-bucket')}")
    _aws(gateway, tmp_path, "s3", "sync", str(tree), f"s3://{_b('sync-bucket')}/backup")
    back = tmp_path / "back"
    _aws(gateway, tmp_path, "s3", "sync", f"s3://{_b('sync-bucket')}/backup", str(back))
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name
    head = json.loads(
        _aws(gateway, tmp_path, "s3api", "head-object", "--bucket", _b("sync-bucket"), "--key", "backup/a.txt")
    )
    assert head["ContentType"] == "text/plain"  # the cli's guess travels with the object
    # A second sync has nothing to do.
    assert _aws(gateway, tmp_path, "s3", "sync", str(tree), f"s3://{_b('sync-bucket')}/backup").strip() == ""
    (tree / "a.txt").unlink()
    _aws(gateway, tmp_path, "s3", "sync", "--delete", str(tree), f"s3://{_b('sync-bucket')}/backup")
    listed = json.loads(_aws(gateway, tmp_path, "s3api", "list-objects-v2", "--bucket", _b("sync-bucket")))
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(f"backup/{n}" for n in files if n != "a.txt")


def test_aws_s3api(gateway: Gateway, tmp_path: Path) -> None:
    _aws(gateway, tmp_path, "s3api", "create-bucket", "--bucket", _b("api-bucket"))
    body = tmp_path / "body.txt"
    body.write_text("hello from s3api")
    put = json.loads(
        _aws(
            gateway,
            tmp_path,
            "s3api",
            "put-object",
            "--bucket",
            _b("api-bucket"),
            "--key",
            "greeting.txt",
            "--body",
            str(body),
            "--content-type",
            "text/plain",
            "--metadata",
            "purpose=test",
        )
    )
    assert put["ETag"]
    head = json.loads(
        _aws(gateway, tmp_path, "s3api", "head-object", "--bucket", _b("api-bucket"), "--key", "greeting.txt")
    )
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"]["purpose"] == "test"
    assert head["Metadata"]["cid"].startswith("bafk")
    out = tmp_path / "out.txt"
    got = json.loads(
        _aws(
            gateway,
            tmp_path,
            "s3api",
            "get-object",
            "--bucket",
            _b("api-bucket"),
            "--key",
            "greeting.txt",
            "--range",
            "bytes=0-4",
            str(out),
        )
    )
    assert got["ContentRange"] == "bytes 0-4/16"
    assert out.read_text() == "hello"
    location = json.loads(_aws(gateway, tmp_path, "s3api", "get-bucket-location", "--bucket", _b("api-bucket")))
    assert location["LocationConstraint"] is None
    url = _aws(
        gateway, tmp_path, "s3", "presign", f"s3://{_b('api-bucket')}/greeting.txt", "--expires-in", "60"
    ).strip()
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == b"hello from s3api"
    _aws(gateway, tmp_path, "s3api", "delete-object", "--bucket", _b("api-bucket"), "--key", "greeting.txt")
    _aws(gateway, tmp_path, "s3api", "delete-bucket", "--bucket", _b("api-bucket"))


def _md5_file(path: Path) -> str:
    import hashlib

    digest = hashlib.md5()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def test_aws_s3_cp_one_gib_multipart(gateway: Gateway, tmp_path: Path, cli: str) -> None:
    if cli == "v1":
        pytest.skip("the 1 GiB round trip runs once, with aws cli v2")
    from tests.system.test_gateway_behaviour import _worker_rss

    source = tmp_path / "one-gib.bin"
    block = os.urandom(1 << 20)
    with source.open("wb") as fh:
        for i in range(1024):
            fh.write(i.to_bytes(8, "big") + block[8:])  # every MiB distinct
    baseline = _worker_rss(gateway)
    _aws(gateway, tmp_path, "s3", "mb", f"s3://{_b('gib-bucket')}")
    _aws(gateway, tmp_path, "s3", "cp", str(source), f"s3://{_b('gib-bucket')}/one-gib.bin")  # default: 8 MiB parts
    grown = _worker_rss(gateway) - baseline
    head = json.loads(
        _aws(gateway, tmp_path, "s3api", "head-object", "--bucket", _b("gib-bucket"), "--key", "one-gib.bin")
    )
    assert head["ContentLength"] == 1 << 30
    assert head["ETag"].endswith('-128"')
    target = tmp_path / "back.bin"
    _aws(gateway, tmp_path, "s3", "cp", f"s3://{_b('gib-bucket')}/one-gib.bin", str(target))
    assert _md5_file(target) == _md5_file(source)
    assert grown < 200 * 1024 * 1024, f"gateway RSS grew by {grown / 2**20:.0f} MiB for a 1 GiB upload"


def test_aws_s3api_breadth(gateway: Gateway, tmp_path: Path) -> None:
    """Copy, tagging, versioning, low-level multipart and attributes through `aws s3api`."""

    def api(*args: str) -> dict[str, Any]:
        out = _aws(gateway, tmp_path, "s3api", *args)
        return json.loads(out) if out.strip() else {}

    body = tmp_path / "b.txt"
    body.write_text(_b("breadth"))
    api("create-bucket", "--bucket", _b("breadth"))
    api("put-bucket-versioning", "--bucket", _b("breadth"), "--versioning-configuration", "Status=Enabled")
    assert api("get-bucket-versioning", "--bucket", _b("breadth"))["Status"] == "Enabled"
    v1 = api("put-object", "--bucket", _b("breadth"), "--key", "k", "--body", str(body), "--tagging", "a=1")[
        "VersionId"
    ]
    api("put-object", "--bucket", _b("breadth"), "--key", "k", "--body", str(body))
    versions = api("list-object-versions", "--bucket", _b("breadth"))["Versions"]
    assert len(versions) == 2
    assert api("get-object-tagging", "--bucket", _b("breadth"), "--key", "k", "--version-id", v1)["TagSet"] == [
        {"Key": "a", "Value": "1"}
    ]
    api("copy-object", "--bucket", _b("breadth"), "--key", "copy", "--copy-source", f"{_b('breadth')}/k?versionId={v1}")
    attrs = api(
        "get-object-attributes", "--bucket", _b("breadth"), "--key", "copy", "--object-attributes", "ObjectSize"
    )
    assert attrs["ObjectSize"] == len(_b("breadth"))
    upload_id = api("create-multipart-upload", "--bucket", _b("breadth"), "--key", "mp")["UploadId"]
    etag = api(
        "upload-part",
        "--bucket",
        _b("breadth"),
        "--key",
        "mp",
        "--part-number",
        "1",
        "--upload-id",
        upload_id,
        "--body",
        str(body),
    )["ETag"]
    parts = json.dumps({"Parts": [{"PartNumber": 1, "ETag": etag}]})
    api(
        "complete-multipart-upload",
        "--bucket",
        _b("breadth"),
        "--key",
        "mp",
        "--upload-id",
        upload_id,
        "--multipart-upload",
        parts,
    )
    out = tmp_path / "mp.txt"
    api("get-object", "--bucket", _b("breadth"), "--key", "mp", str(out))
    assert out.read_text() == _b("breadth")
    deleted = api("delete-object", "--bucket", _b("breadth"), "--key", "k")
    assert deleted["DeleteMarker"] is True
    # Checksums, CORS, and the listing/abort side of multipart.
    summed = api(
        "put-object",
        "--bucket",
        _b("breadth"),
        "--key",
        "summed",
        "--body",
        str(body),
        "--checksum-algorithm",
        "SHA256",
    )
    assert summed["ChecksumSHA256"]
    cors = json.dumps({"CORSRules": [{"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET"]}]})
    api("put-bucket-cors", "--bucket", _b("breadth"), "--cors-configuration", cors)
    assert api("get-bucket-cors", "--bucket", _b("breadth"))["CORSRules"][0]["AllowedMethods"] == ["GET"]
    pending = api("create-multipart-upload", "--bucket", _b("breadth"), "--key", "pending")["UploadId"]
    listed = api("list-multipart-uploads", "--bucket", _b("breadth"))["Uploads"]
    assert [u["UploadId"] for u in listed] == [pending]
    api("abort-multipart-upload", "--bucket", _b("breadth"), "--key", "pending", "--upload-id", pending)
    assert "Uploads" not in api("list-multipart-uploads", "--bucket", _b("breadth"))
