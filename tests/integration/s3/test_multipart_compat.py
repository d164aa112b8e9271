"""Multipart behaviours real clients rely on, through boto3 and on the raw wire against a live gateway: a retried
Complete (also across a restart), COMPOSITE checksums, ListParts and GetObjectAttributes paging, partNumber reads.

The gateway here accepts parts of any size (min_part_size=1) so multi-part objects stay small."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from appliance.checksums import new_checksum
from appliance.ipfsconn.devnode import LocalNode
from appliance.ipfsconn.kubo import KuboClient
from appliance.service.multipart import MultipartService
from tests.integration.s3.conftest import s3_code
from tests.support import raw
from tests.support.s3server import ThreadedGateway, running_gateway

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_names = iter(range(1_000_000))


@pytest.fixture(scope="module")
def mp_gw(tmp_path_factory: pytest.TempPathFactory, s3_node: LocalNode) -> Iterator[ThreadedGateway]:
    with running_gateway(tmp_path_factory.mktemp("mpgw"), s3_node.api_url, min_part_size=1) as gw:
        yield gw


@pytest.fixture(scope="module")
def mp(mp_gw: ThreadedGateway) -> Any:
    return mp_gw.client()


@pytest.fixture
def bkt(mp: Any) -> str:
    name = f"mp-{next(_names)}-bucket"
    mp.create_bucket(Bucket=name)
    return name


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _send(gw: ThreadedGateway, method: str, path: str, **kwargs: Any) -> Any:
    return raw.send(gw.endpoint, method, path, access_key=gw.access_key, secret_key=gw.secret_key, **kwargs)


def _upload(
    s3: Any, bucket: str, key: str, parts: list[bytes], numbers: list[int] | None = None, **create: Any
) -> tuple[str, list[dict[str, Any]]]:
    algorithm = create.get("ChecksumAlgorithm")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for number, data in zip(numbers or range(1, len(parts) + 1), parts, strict=True):
        extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        reply = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra)
        entry = {"PartNumber": number, "ETag": reply["ETag"]}
        if algorithm:
            entry[f"Checksum{algorithm}"] = reply[f"Checksum{algorithm}"]
        done.append(entry)
    return upload_id, done


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != "ResponseMetadata"}


# A retried CompleteMultipartUpload


@pytest.mark.parametrize("versioned", [False, True])
def test_retried_complete_gets_the_first_answer(mp: Any, bkt: str, versioned: bool) -> None:
    if versioned:
        mp.put_bucket_versioning(Bucket=bkt, VersioningConfiguration={"Status": "Enabled"})
    upload_id, done = _upload(mp, bkt, "dir/re try", [b"a" * 100, b"b" * 50], ChecksumAlgorithm="SHA256")
    first = mp.complete_multipart_upload(
        Bucket=bkt, Key="dir/re try", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    again = mp.complete_multipart_upload(
        Bucket=bkt, Key="dir/re try", UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert _result(again) == _result(first)
    assert first["ChecksumSHA256"].endswith("-2") and first["ChecksumType"] == "COMPOSITE"
    assert first["Location"].endswith(f"/{bkt}/dir/re%20try")
    assert ("VersionId" in first) == versioned
    # The upload itself is gone: the other upload actions still say so.
    with pytest.raises(ClientError) as exc:
        mp.list_parts(Bucket=bkt, Key="dir/re try", UploadId=upload_id)
    assert _code(exc) == "NoSuchUpload"
    with pytest.raises(ClientError) as exc:
        mp.abort_multipart_upload(Bucket=bkt, Key="dir/re try", UploadId=upload_id)
    assert _code(exc) == "NoSuchUpload"
    # The object was committed once: a retry makes no new version.
    if versioned:
        assert len(mp.list_object_versions(Bucket=bkt)["Versions"]) == 1


def test_retry_that_differs_is_no_such_upload(mp: Any, bkt: str) -> None:
    upload_id, done = _upload(mp, bkt, "k", [b"1" * 10, b"2" * 10])
    mp.complete_multipart_upload(Bucket=bkt, Key="k", UploadId=upload_id, MultipartUpload={"Parts": done})
    for key, parts in (("k", done[:1]), ("k", [done[0], {**done[1], "ETag": '"' + "0" * 32 + '"'}]), ("other", done)):
        with pytest.raises(ClientError) as exc:
            mp.complete_multipart_upload(Bucket=bkt, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        assert _code(exc) == "NoSuchUpload"


def test_retried_complete_on_the_wire(mp_gw: ThreadedGateway, mp: Any, bkt: str) -> None:
    upload_id, done = _upload(mp, bkt, "wire", [b"x" * 10, b"y" * 3])
    body = (
        "<CompleteMultipartUpload>"
        + "".join(f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>" for p in done)
        + "</CompleteMultipartUpload>"
    ).encode()
    replies = [_send(mp_gw, "POST", f"/{bkt}/wire", query=[("uploadId", upload_id)], body=body) for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200]
    assert replies[0].content == replies[1].content
    for name in ("x-amz-meta-cid", "x-ipfs-cid"):
        assert (
            replies[0].headers[name]
            == replies[1].headers[name]
            == mp.head_object(Bucket=bkt, Key="wire")["Metadata"]["cid"]
        )
    assert "x-amz-version-id" not in replies[0].headers
    # Quoted or bare ETags name the same parts.
    bare = body.replace(b'"', b"")
    assert (
        _send(mp_gw, "POST", f"/{bkt}/wire", query=[("uploadId", upload_id)], body=bare).content == replies[0].content
    )


def test_completed_record_survives_a_restart_and_then_expires(tmp_path: Path, s3_node: LocalNode) -> None:
    with running_gateway(tmp_path, s3_node.api_url, min_part_size=1) as gw:
        s3: Any = gw.client()
        s3.create_bucket(Bucket="restart-bucket")
        upload_id, done = _upload(s3, "restart-bucket", "k", [b"p" * 20, b"q" * 2])
        first = s3.complete_multipart_upload(
            Bucket="restart-bucket", Key="k", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    with running_gateway(tmp_path, s3_node.api_url, min_part_size=1) as gw:
        s3 = gw.client()
        again = s3.complete_multipart_upload(
            Bucket="restart-bucket", Key="k", UploadId=upload_id, MultipartUpload={"Parts": done}
        )
        # The same answer; Location names this gateway's address (it follows the request's Host).
        assert {**_result(again), "Location": ""} == {**_result(first), "Location": ""}
        assert again["Location"].endswith("/restart-bucket/k")

        async def sweep(retention: float) -> int:
            async with KuboClient(gw.api_url) as kubo:
                service = MultipartService(gw.store, kubo, unpin_grace=0, completed_retention=retention)
                return await service.abort_abandoned(86400.0)

        asyncio.run(sweep(3600.0))
        assert gw.store.get_completed_upload(upload_id) is not None  # younger than the retention
        asyncio.run(sweep(0.0))
        assert gw.store.get_completed_upload(upload_id) is None
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket="restart-bucket", Key="k", UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        assert _code(exc) == "NoSuchUpload"
        assert s3.get_object(Bucket="restart-bucket", Key="k")["Body"].read() == b"p" * 20 + b"q" * 2


# COMPOSITE checksums


def _digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "SHA256":
        return hashlib.sha256(data).digest()
    if algorithm == "SHA1":
        return hashlib.sha1(data).digest()
    if algorithm == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    checksum = new_checksum("crc32c")
    checksum.update(data)
    return base64.b64decode(checksum.b64digest())


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32", "CRC32C"])
def test_composite_checksums(mp_gw: ThreadedGateway, mp: Any, bkt: str, algorithm: str) -> None:
    parts = [b"first part " * 30, b"second", b"third!"]
    upload_id, done = _upload(mp, bkt, "c", parts, ChecksumAlgorithm=algorithm)
    part_digests = [_digest(algorithm, p) for p in parts]
    for entry, digest in zip(done, part_digests, strict=True):
        assert base64.b64decode(entry[f"Checksum{algorithm}"]) == digest
    whole = base64.b64encode(_digest(algorithm, b"".join(part_digests))).decode()
    field = f"Checksum{algorithm}"
    listed = mp.list_parts(Bucket=bkt, Key="c", UploadId=upload_id)
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == (algorithm, "COMPOSITE")
    # A part checksum that is not the uploaded part's: InvalidPart, nothing changes.
    wrong = [dict(done[0]), *done[1:]]
    wrong[0][field] = done[1][field]
    with pytest.raises(ClientError) as exc:
        mp.complete_multipart_upload(Bucket=bkt, Key="c", UploadId=upload_id, MultipartUpload={"Parts": wrong})
    assert _code(exc) == "InvalidPart"
    # A whole-object checksum that is not the checksum of the part checksums: BadDigest, nothing changes.
    with pytest.raises(ClientError) as exc:
        mp.complete_multipart_upload(
            Bucket=bkt, Key="c", UploadId=upload_id, MultipartUpload={"Parts": done}, **{field: done[0][field]}
        )
    assert _code(exc) == "BadDigest"
    assert mp_gw.store.get_upload(upload_id) is not None
    with pytest.raises(ClientError):
        mp.head_object(Bucket=bkt, Key="c")
    # The right one, with or without its "-N".
    result = mp.complete_multipart_upload(
        Bucket=bkt, Key="c", UploadId=upload_id, MultipartUpload={"Parts": done}, **{field: whole}
    )
    assert result[field] == f"{whole}-3"
    assert result["ChecksumType"] == "COMPOSITE"
    upload_id2, done2 = _upload(mp, bkt, "c2", parts, ChecksumAlgorithm=algorithm)
    result2 = mp.complete_multipart_upload(
        Bucket=bkt, Key="c2", UploadId=upload_id2, MultipartUpload={"Parts": done2}, **{field: f"{whole}-3"}
    )
    assert result2[field] == f"{whole}-3"
    attrs = mp.get_object_attributes(Bucket=bkt, Key="c", ObjectAttributes=["Checksum", "ObjectParts"])
    assert attrs["Checksum"][field] == f"{whole}-3" and attrs["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert [p[field] for p in attrs["ObjectParts"]["Parts"]] == [e[field] for e in done]


def test_mp_object_size_header(mp_gw: ThreadedGateway, mp: Any, bkt: str) -> None:
    upload_id, done = _upload(mp, bkt, "sized", [b"12345", b"678"])
    with pytest.raises(ClientError) as exc:
        mp.complete_multipart_upload(
            Bucket=bkt, Key="sized", UploadId=upload_id, MultipartUpload={"Parts": done}, MpuObjectSize=9
        )
    assert _code(exc) == "InvalidRequest"
    body = (
        "<CompleteMultipartUpload>"
        + "".join(f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>" for p in done)
        + "</CompleteMultipartUpload>"
    ).encode()
    for bad in ("-1", "eight", "9" * 30):
        reply = _send(
            mp_gw,
            "POST",
            f"/{bkt}/sized",
            query=[("uploadId", upload_id)],
            body=body,
            headers={"x-amz-mp-object-size": bad},
        )
        assert (reply.status_code, s3_code(reply)) == (400, "InvalidArgument")
    mp.complete_multipart_upload(
        Bucket=bkt, Key="sized", UploadId=upload_id, MultipartUpload={"Parts": done}, MpuObjectSize=8
    )


# Paging


def test_list_parts_pages_through_25_parts(mp: Any, bkt: str, mp_gw: ThreadedGateway) -> None:
    upload_id, _ = _upload(mp, bkt, "many", [bytes([n]) * n for n in range(1, 26)])
    pages = []
    marker = 0
    while True:
        page = mp.list_parts(Bucket=bkt, Key="many", UploadId=upload_id, MaxParts=10, PartNumberMarker=marker)
        pages.append(page)
        if not page["IsTruncated"]:
            break
        marker = page["NextPartNumberMarker"]
    assert [[p["PartNumber"] for p in page["Parts"]] for page in pages] == [
        list(range(1, 11)),
        list(range(11, 21)),
        list(range(21, 26)),
    ]
    assert [page["NextPartNumberMarker"] for page in pages] == [10, 20, 25]
    assert [page["PartNumberMarker"] for page in pages] == [0, 10, 20]
    assert [page["MaxParts"] for page in pages] == [10, 10, 10]
    listed = []
    for page in mp.get_paginator("list_parts").paginate(
        Bucket=bkt, Key="many", UploadId=upload_id, PaginationConfig={"PageSize": 10}
    ):
        listed += [(p["PartNumber"], p["Size"]) for p in page["Parts"]]
    assert listed == [(n, n) for n in range(1, 26)]
    for name, value in (
        ("max-parts", "ten"),
        ("max-parts", "-1"),
        ("part-number-marker", "x"),
        ("max-parts", "9" * 40),
    ):
        reply = _send(mp_gw, "GET", f"/{bkt}/many", query=[("uploadId", upload_id), (name, value)])
        assert (reply.status_code, s3_code(reply)) == (400, "InvalidArgument")
    capped = _send(mp_gw, "GET", f"/{bkt}/many", query=[("uploadId", upload_id), ("max-parts", "5000")])
    assert ET.fromstring(capped.content).findtext(f"{NS}MaxParts") == "1000"


def test_object_attributes_parts_page(mp_gw: ThreadedGateway, mp: Any, bkt: str) -> None:
    parts = [bytes([n]) * (n + 3) for n in range(1, 26)]
    upload_id, done = _upload(mp, bkt, "attrs", parts, ChecksumAlgorithm="CRC32")
    mp.complete_multipart_upload(Bucket=bkt, Key="attrs", UploadId=upload_id, MultipartUpload={"Parts": done})
    seen = []
    marker = 0
    while True:
        reply = mp.get_object_attributes(
            Bucket=bkt, Key="attrs", ObjectAttributes=["ObjectParts"], MaxParts=10, PartNumberMarker=marker
        )["ObjectParts"]
        assert reply["TotalPartsCount"] == 25 and reply["MaxParts"] == 10 and reply["PartNumberMarker"] == marker
        seen += [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in reply["Parts"]]
        if not reply["IsTruncated"]:
            break
        marker = reply["NextPartNumberMarker"]
    assert seen == [(e["PartNumber"], len(p), e["ChecksumCRC32"]) for e, p in zip(done, parts, strict=True)]
    # S3 ignores a max-parts or marker that is not a number.
    for headers in ({"x-amz-max-parts": "many"}, {"x-amz-part-number-marker": "-3"}, {"x-amz-max-parts": "9" * 40}):
        reply = _send(
            mp_gw,
            "GET",
            f"/{bkt}/attrs",
            query=[("attributes", "")],
            headers={"x-amz-object-attributes": "ObjectParts", **headers},
        )
        assert reply.status_code == 200
        assert ET.fromstring(reply.content).findtext(f"{NS}ObjectParts/{NS}PartsCount") == "25"
    # A plain object has no ObjectParts.
    mp.put_object(Bucket=bkt, Key="plain", Body=b"x")
    assert "ObjectParts" not in mp.get_object_attributes(Bucket=bkt, Key="plain", ObjectAttributes=["ObjectParts"])


# partNumber on GET and HEAD


def test_part_number_reads(mp: Any, bkt: str) -> None:
    parts = [b"A" * 7, b"B" * 11, b"C" * 5]
    upload_id, done = _upload(mp, bkt, "p", parts, ChecksumAlgorithm="SHA256")
    mp.complete_multipart_upload(Bucket=bkt, Key="p", UploadId=upload_id, MultipartUpload={"Parts": done})
    first = 0
    for number, data in enumerate(parts, start=1):
        got = mp.get_object(Bucket=bkt, Key="p", PartNumber=number, ChecksumMode="ENABLED")
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["Body"].read() == data
        assert got["ContentRange"] == f"bytes {first}-{first + len(data) - 1}/23"
        assert got["ContentLength"] == len(data) and got["PartsCount"] == 3
        assert got["ChecksumSHA256"] == done[number - 1]["ChecksumSHA256"]  # boto3 checked it against the part
        head = mp.head_object(Bucket=bkt, Key="p", PartNumber=number)
        assert head["ContentLength"] == len(data) and head["PartsCount"] == 3
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
        first += len(data)
    plain = mp.get_object(Bucket=bkt, Key="p")
    assert plain["ResponseMetadata"]["HTTPStatusCode"] == 200 and "PartsCount" not in plain
    for call in (mp.get_object, mp.head_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bkt, Key="p", PartNumber=4)
        assert _status(exc) == 416
    with pytest.raises(ClientError) as exc:
        mp.get_object(Bucket=bkt, Key="p", PartNumber=4)
    assert _code(exc) == "InvalidPartNumber"
    with pytest.raises(ClientError) as exc:
        mp.get_object(Bucket=bkt, Key="p", PartNumber=1, Range="bytes=0-1")
    assert (_status(exc), _code(exc)) == (400, "InvalidRequest")


def test_part_number_of_a_plain_object(mp: Any, bkt: str) -> None:
    put = mp.put_object(Bucket=bkt, Key="plain", Body=b"0123456789", ChecksumAlgorithm="SHA256")
    assert put["ChecksumType"] == "FULL_OBJECT"
    got = mp.get_object(Bucket=bkt, Key="plain", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == b"0123456789" and got["ContentRange"] == "bytes 0-9/10"
    assert "PartsCount" not in got
    with pytest.raises(ClientError) as exc:
        mp.get_object(Bucket=bkt, Key="plain", PartNumber=2)
    assert (_status(exc), _code(exc)) == (416, "InvalidPartNumber")


def test_part_numbers_with_gaps(mp: Any, bkt: str) -> None:
    upload_id, done = _upload(mp, bkt, "gaps", [b"two", b"five!"], numbers=[2, 5])
    mp.complete_multipart_upload(Bucket=bkt, Key="gaps", UploadId=upload_id, MultipartUpload={"Parts": done})
    assert mp.get_object(Bucket=bkt, Key="gaps", PartNumber=2)["Body"].read() == b"two"
    assert mp.get_object(Bucket=bkt, Key="gaps", PartNumber=5)["Body"].read() == b"five!"
    for number in (1, 3):
        with pytest.raises(ClientError) as exc:
            mp.get_object(Bucket=bkt, Key="gaps", PartNumber=number)
        assert _code(exc) == "InvalidPartNumber"
    attrs = mp.get_object_attributes(Bucket=bkt, Key="gaps", ObjectAttributes=["ObjectParts"])["ObjectParts"]
    assert [p["PartNumber"] for p in attrs["Parts"]] == [2, 5]
    # A copy keeps the numbering.
    mp.copy_object(Bucket=bkt, Key="gaps-copy", CopySource={"Bucket": bkt, "Key": "gaps"})
    assert mp.get_object(Bucket=bkt, Key="gaps-copy", PartNumber=5)["Body"].read() == b"five!"


@pytest.mark.parametrize("number", ["0", "-1", "10001", "1.0", "one", "", "99999999999999999999", "\uff11"])
def test_bad_part_number_on_get_and_head(mp_gw: ThreadedGateway, mp: Any, bkt: str, number: str) -> None:
    mp.put_object(Bucket=bkt, Key="k", Body=b"data")
    for method in ("GET", "HEAD"):
        reply = _send(mp_gw, method, f"/{bkt}/k", query=[("partNumber", number)])
        assert reply.status_code == 400
        if method == "GET":
            assert s3_code(reply) == "InvalidArgument"
