"""Multipart uploads through boto3 on the live gateway: parts become one UnixFS file whose root links the parts."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from appliance.ipfsconn.kubo import KuboClient
from appliance.service.multipart import MultipartService
from tests.integration.s3.conftest import Raw, s3_code
from tests.support.s3server import ThreadedGateway

MiB = 1024 * 1024


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _cat(api_url: str, cid: str) -> bytes:
    async def read() -> bytes:
        async with KuboClient(api_url) as client:
            return b"".join([piece async for piece in client.cat(cid)])

    return asyncio.run(read())


def _upload_parts(
    s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any
) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number in reversed(range(1, len(parts) + 1)):  # out of order on purpose
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=parts[number - 1])[
            "ETag"
        ]
        done.append({"PartNumber": number, "ETag": etag})
    return upload_id, sorted(done, key=lambda p: p["PartNumber"])


def test_complete_links_parts_into_one_file(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 7), os.urandom(1234)]
    upload_id, done = _upload_parts(
        s3, bucket, "big/object.bin", parts, ContentType="application/x-test", Metadata={"origin": "multipart"}
    )
    listed = s3.list_parts(Bucket=bucket, Key="big/object.bin", UploadId=upload_id)
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [len(p) for p in parts]
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key="big/object.bin", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    expected_etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert result["ETag"] == f'"{expected_etag}"'
    whole = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key="big/object.bin")
    assert got["Body"].read() == whole
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"]["origin"] == "multipart"
    assert got["ETag"] == f'"{expected_etag}"'
    ranged = s3.get_object(Bucket=bucket, Key="big/object.bin", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")
    assert ranged["Body"].read() == whole[5 * MiB - 10 : 5 * MiB + 10]
    # The object is one UnixFS file: any IPFS node can cat its root CID.
    root = got["Metadata"]["cid"]
    assert _cat(gateway.api_url, root) == whole
    # The upload is gone, and its parts' own references are released (the root pin keeps their blocks).
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert gateway.store.get_upload(upload_id) is None


def test_replaced_part_wins(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"first")
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"second")["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"


def test_complete_errors_change_nothing(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    parts = [os.urandom(100), os.urandom(200)]
    upload_id, done = _upload_parts(s3, bucket, "e", parts)
    cases = [
        ([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}, done[1]], "InvalidPart"),
        ([done[1], done[0]], "InvalidPartOrder"),
        ([done[0], done[0]], "InvalidPartOrder"),
        ([done[0], {"PartNumber": 7, "ETag": done[1]["ETag"]}], "InvalidPart"),
        (done, "EntityTooSmall"),  # part 1 is below 5 MiB and is not the last
    ]
    for requested, code in cases:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="e", UploadId=upload_id, MultipartUpload={"Parts": requested}
            )
        assert _code(exc) == code
    assert gateway.store.get_upload(upload_id) is not None
    assert len(s3.list_parts(Bucket=bucket, Key="e", UploadId=upload_id)["Parts"]) == 2
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="e")
    # The last part alone may be small.
    s3.complete_multipart_upload(Bucket=bucket, Key="e", UploadId=upload_id, MultipartUpload={"Parts": done[:1]})
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == parts[0]


def test_no_such_upload(s3: Any, bucket: str) -> None:
    calls = [
        lambda: s3.upload_part(Bucket=bucket, Key="k", UploadId="nope", PartNumber=1, Body=b"x"),
        lambda: s3.list_parts(Bucket=bucket, Key="k", UploadId="nope"),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId="nope"),
        lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key="k", UploadId="nope", MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]}
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "NoSuchUpload"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    with pytest.raises(ClientError) as exc:  # the right id under another key
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert _code(exc) == "NoSuchUpload"


@pytest.mark.parametrize("number", ["0", "10001", "-1", "one", ""])
def test_bad_part_numbers(raw_s3: Raw, s3: Any, bucket: str, number: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    response = raw_s3("PUT", f"/{bucket}/k", query=[("partNumber", number), ("uploadId", upload_id)], body=b"x")
    assert response.status_code == 400
    assert s3_code(response) == "InvalidArgument"


def test_abort_releases_parts(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    data = os.urandom(4000)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload_id, PartNumber=1, Body=data)
    cid = gateway.store.list_parts(upload_id)[0].cid
    assert gateway.store.cid_refcount(cid) == 1
    assert gateway.store.objects_by_cid(cid) == []  # a part is not an object
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    assert gateway.store.cid_refcount(cid) == 0
    assert gateway.store.get_upload(upload_id) is None
    with pytest.raises(ClientError):
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload_id)


def test_abandoned_uploads_are_aborted(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="abandoned")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="abandoned", UploadId=upload_id, PartNumber=1, Body=b"left behind")

    async def sweep() -> int:
        async with KuboClient(gateway.api_url) as kubo:
            return await MultipartService(gateway.store, kubo, unpin_grace=0).abort_abandoned(-1.0)

    assert asyncio.run(sweep()) >= 1
    assert gateway.store.get_upload(upload_id) is None


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"<CompleteMultipartUpload>",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<Other/>",
    ],
)
def test_malformed_complete(raw_s3: Raw, s3: Any, bucket: str, gateway: ThreadedGateway, bad: bytes) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    response = raw_s3("POST", f"/{bucket}/m", query=[("uploadId", upload_id)], body=bad)
    assert response.status_code == 400
    assert s3_code(response) == "MalformedXML"
    assert gateway.store.get_upload(upload_id) is not None


def test_list_multipart_uploads(s3: Any, bucket: str) -> None:
    ids = {}
    for key in ("a/1", "a/2", "b/1", "c"):
        ids[key] = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["Key"] for u in listed["Uploads"]] == ["a/1", "a/2", "b/1", "c"]
    grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in grouped["Uploads"]] == ["c"]
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["a/", "b/"]
    keys: list[str] = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1}):
        keys += [u["Key"] for u in page.get("Uploads", [])]
    assert keys == ["a/1", "a/2", "b/1", "c"]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")["Uploads"]] == ["a/1", "a/2"]


def test_upload_file_uses_multipart(s3: Any, bucket: str, tmp_path: Any) -> None:
    source = tmp_path / "twenty.bin"
    source.write_bytes(os.urandom(20 * MiB + 5))
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    s3.upload_file(str(source), bucket, "twenty.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="twenty.bin")
    assert head["ETag"].endswith('-5"')
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "twenty.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        ("CRC32", "FULL_OBJECT"),
        ("CRC32C", "FULL_OBJECT"),
        ("CRC64NVME", "FULL_OBJECT"),
        ("SHA256", "COMPOSITE"),
        ("CRC32", "COMPOSITE"),
    ],
)
def test_multipart_checksums(s3: Any, bucket: str, algorithm: str, kind: str) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(777)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="sum", ChecksumAlgorithm=algorithm, ChecksumType=kind)[
        "UploadId"
    ]
    done = []
    for number, data in enumerate(parts, start=1):
        reply = s3.upload_part(
            Bucket=bucket, Key="sum", UploadId=upload_id, PartNumber=number, Body=data, ChecksumAlgorithm=algorithm
        )
        done.append(
            {"PartNumber": number, "ETag": reply["ETag"], f"Checksum{algorithm}": reply[f"Checksum{algorithm}"]}
        )
    result = s3.complete_multipart_upload(Bucket=bucket, Key="sum", UploadId=upload_id, MultipartUpload={"Parts": done})
    value = result[f"Checksum{algorithm}"]
    assert result["ChecksumType"] == kind
    assert value.endswith("-2") == (kind == "COMPOSITE")
    # boto3 validates a FULL_OBJECT checksum against the body it reads: this GET fails if the combination is wrong.
    got = s3.get_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)
    assert got[f"Checksum{algorithm}"] == value


def test_full_object_checksum_mismatch_at_complete(raw_s3: Raw, s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key="fo", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    reply = s3.upload_part(
        Bucket=bucket, Key="fo", UploadId=upload_id, PartNumber=1, Body=b"data", ChecksumAlgorithm="CRC32"
    )
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{reply['ETag']}</ETag></Part>"
        "</CompleteMultipartUpload>"
    ).encode()
    response = raw_s3(
        "POST",
        f"/{bucket}/fo",
        query=[("uploadId", upload_id)],
        body=body,
        headers={"x-amz-checksum-crc32": "AAAAAA=="},
    )
    assert response.status_code == 400
    assert s3_code(response) == "BadDigest"
    assert gateway.store.get_upload(upload_id) is not None
