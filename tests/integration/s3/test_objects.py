"""PutObject, GetObject, HeadObject, DeleteObject through boto3 against the live gateway on a real IPFS node."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.s3.conftest import Raw, s3_code
from tests.support.s3server import ThreadedGateway
from tests.support.unixfs_cid import cid_of_bytes

MiB = 1024 * 1024


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.mark.parametrize("size", [0, 1, 1000, MiB - 1, MiB, MiB + 1, 3 * MiB + 17])
def test_round_trip_etag_and_cid(s3: Any, bucket: str, size: int) -> None:
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    cid = put["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
    # The CID an independent UnixFS implementation computes for the same bytes and parameters.
    assert cid == cid_of_bytes(data, chunk_size=MiB)
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["Metadata"]["cid"] == cid
    head = s3.head_object(Bucket=bucket, Key=f"obj-{size}")
    assert head["ContentLength"] == size
    assert head["ETag"] == put["ETag"]
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-ipfs-pin-status"] == "pinned"


def test_identical_content_is_stored_once(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    data = b"same bytes " * 100
    cid = s3.put_object(Bucket=bucket, Key="one", Body=data)["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
    s3.put_object(Bucket=bucket, Key="two", Body=data)
    assert sorted(gateway.store.objects_by_cid(cid)) == [(bucket, "one"), (bucket, "two")]
    assert gateway.store.cid_refcount(cid) == 2
    s3.delete_object(Bucket=bucket, Key="one")
    assert gateway.store.cid_refcount(cid) == 1
    assert s3.get_object(Bucket=bucket, Key="two")["Body"].read() == data


def test_overwrite_replaces_content_and_releases_old_cid(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first version")
    old_cid = first["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"second version")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second version"
    assert gateway.store.cid_refcount(old_cid) == 0


def test_metadata_and_content_headers(s3: Any, bucket: str) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    s3.put_object(
        Bucket=bucket,
        Key="doc.txt",
        Body=b"text",
        ContentType="text/plain; charset=utf-8",
        ContentDisposition='attachment; filename="doc.txt"',
        ContentEncoding="identity",
        ContentLanguage="en",
        CacheControl="max-age=60",
        Expires=expires,
        Metadata={"Owner": "alice", "note": "a b+c"},
    )
    got = s3.get_object(Bucket=bucket, Key="doc.txt")
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["ContentDisposition"] == 'attachment; filename="doc.txt"'
    assert got["ContentEncoding"] == "identity"
    assert got["ContentLanguage"] == "en"
    assert got["CacheControl"] == "max-age=60"
    assert got["Expires"] == expires
    assert got["Metadata"]["owner"] == "alice"
    assert got["Metadata"]["note"] == "a b+c"
    assert got["AcceptRanges"] == "bytes"


def test_default_content_type(s3: Any, bucket: str, raw_s3: Raw) -> None:
    raw_s3("PUT", f"/{bucket}/untyped", body=b"x")
    assert s3.head_object(Bucket=bucket, Key="untyped")["ContentType"] == "binary/octet-stream"


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/json",
        ResponseContentDisposition="inline",
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="de",
        ResponseContentEncoding="gzip",
        ResponseExpires=datetime(2031, 1, 1, tzinfo=UTC),
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == "inline"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLanguage"] == "de"
    assert got["ContentEncoding"] == "gzip"
    assert got["Expires"] == datetime(2031, 1, 1, tzinfo=UTC)


def test_content_md5_checked(s3: Any, bucket: str) -> None:
    good = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=b"payload", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"changed", ContentMD5=bad)
    assert _code(exc) == "BadDigest"
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == b"payload"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"changed", ContentMD5="not-base64!")
    assert _code(exc) == "InvalidDigest"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"])
def test_checksums_stored_and_returned(s3: Any, bucket: str, algorithm: str) -> None:
    data = os.urandom(5000)
    put = s3.put_object(Bucket=bucket, Key="sum", Body=data, ChecksumAlgorithm=algorithm)
    value = put[f"Checksum{algorithm}"]
    got = s3.get_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got[f"Checksum{algorithm}"] == value


def test_wrong_checksum_is_bad_digest(raw_s3: Raw, s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    response = raw_s3("PUT", f"/{bucket}/cs", body=b"data", headers={"x-amz-checksum-sha256": wrong})
    assert response.status_code == 400
    assert s3_code(response) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="cs")


KEYS = [
    "a//b",
    "trailing/",
    "/leading-slash",
    " spaces  inside ",
    "plus+sign",
    "percent%2Fencoded",
    "query?and#hash&amp=x",
    "ключ/日本語/🙂",
    "tab\tand~tilde",
    "k" * 1024,
    "é" * 512,
]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_unusual_keys(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert listed_v1 == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_key_too_long(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert _code(exc) == "KeyTooLongError"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_get_missing_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="absent")
    assert _code(exc) == "NoSuchKey"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="absent")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_missing_key_is_204(s3: Any, bucket: str) -> None:
    response = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_metadata_too_large(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert _code(exc) == "MetadataTooLarge"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_upload_file_download_file(s3: Any, bucket: str, tmp_path: Any) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(2 * MiB + 3))
    s3.upload_file(str(source), bucket, "file.bin")
    target = tmp_path / "dst.bin"
    s3.download_file(bucket, "file.bin", str(target))
    assert target.read_bytes() == source.read_bytes()


def test_presigned_get_and_put(gateway: ThreadedGateway, s3: Any, bucket: str) -> None:
    import httpx

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    assert httpx.put(put_url, content=b"presigned body").status_code == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=300)
    response = httpx.get(get_url)
    assert response.status_code == 200
    assert response.content == b"presigned body"
    gateway.clock_offset[0] = 400.0  # the URL has expired
    expired = httpx.get(get_url)
    assert expired.status_code == 403
    assert b"<Code>AccessDenied</Code>" in expired.content


def test_presigned_sigv4(gateway: ThreadedGateway, bucket: str) -> None:
    import httpx

    s3v4 = gateway.client(signature_version="s3v4")
    put_url = s3v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "v4"}, ExpiresIn=60)
    assert "X-Amz-Signature=" in put_url
    assert httpx.put(put_url, content=b"v4 body").status_code == 200
    get_url = s3v4.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "v4", "ResponseContentType": "text/x-test"}, ExpiresIn=60
    )
    response = httpx.get(get_url)
    assert response.content == b"v4 body"
    assert response.headers["content-type"] == "text/x-test"
    gateway.clock_offset[0] = 120.0
    assert httpx.get(get_url).status_code == 403
    tampered = get_url.replace("text%2Fx-test", "text%2Fevil")
    gateway.clock_offset[0] = 0.0
    assert httpx.get(tampered).status_code == 403


def test_sigv2_header_auth(gateway: ThreadedGateway, bucket: str) -> None:
    s3v2 = gateway.client(signature_version="s3")
    s3v2.put_object(Bucket=bucket, Key="v2 key+", Body=b"signed with v2", Metadata={"a": "b"})
    got = s3v2.get_object(Bucket=bucket, Key="v2 key+")
    assert got["Body"].read() == b"signed with v2"
    assert [o["Key"] for o in s3v2.list_objects(Bucket=bucket)["Contents"]] == ["v2 key+"]


def test_get_object_attributes(s3: Any, bucket: str, raw_s3: Raw) -> None:
    put = s3.put_object(Bucket=bucket, Key="attrs", Body=b"attributes", ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(
        Bucket=bucket, Key="attrs", ObjectAttributes=["ETag", "Checksum", "ObjectSize", "StorageClass", "ObjectParts"]
    )
    assert attrs["ETag"] == put["ETag"].strip('"')
    assert attrs["ObjectSize"] == len(b"attributes")
    assert attrs["StorageClass"] == "STANDARD"
    assert attrs["Checksum"]["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert "ObjectParts" not in attrs
    bad = raw_s3("GET", f"/{bucket}/attrs", query=[("attributes", "")], headers={"x-amz-object-attributes": "Bogus"})
    assert bad.status_code == 400
    assert s3_code(bad) == "InvalidArgument"
