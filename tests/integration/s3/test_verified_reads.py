"""Verified reads against a live gateway whose IPFS node lies (tests/support/faulty_node.py in front of a real node):
every read path gives the right bytes or an error, never wrong or short bytes; damage is recorded."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from appliance.ipfsconn.devnode import LocalNode
from appliance.model import Cid
from tests.support import raw
from tests.support.faulty_node import FaultyProxy, faulty_proxy
from tests.support.s3server import ThreadedGateway, running_gateway

CHUNK = 256 * 1024
BUCKET = "verified"


@pytest.fixture(scope="module")
def proxy(s3_node: LocalNode) -> Iterator[FaultyProxy]:
    with faulty_proxy(s3_node.api_url) as made:
        yield made


@contextlib.contextmanager
def _lying_gateway(tmp: Path, proxy: FaultyProxy, cache_bytes: int) -> Iterator[ThreadedGateway]:
    with running_gateway(
        tmp, proxy.api_url, chunk_size=CHUNK, cache_bytes=cache_bytes, min_part_size=64 * 1024, ipfs_timeout=10.0
    ) as gw:
        gw.client().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield gw


@pytest.fixture(scope="module")
def lying(tmp_path_factory: pytest.TempPathFactory, proxy: FaultyProxy) -> Iterator[ThreadedGateway]:
    """A gateway on the faulty node: 256 KiB chunks (several leaves per small object), no L1 cache, 64 KiB
    minimum part size."""
    with _lying_gateway(tmp_path_factory.mktemp("lying"), proxy, 0) as gw:
        yield gw


@pytest.fixture(scope="module")
def lying_cached(tmp_path_factory: pytest.TempPathFactory, proxy: FaultyProxy) -> Iterator[ThreadedGateway]:
    """The same with a 4 MiB L1 cache (items up to 1 MiB)."""
    with _lying_gateway(tmp_path_factory.mktemp("lying-cached"), proxy, 4 * 1024 * 1024) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _no_faults(proxy: FaultyProxy) -> Iterator[None]:
    proxy.faults.clear()
    yield
    proxy.faults.clear()


@pytest.fixture(scope="module")
def s3c(lying: ThreadedGateway) -> Any:
    return lying.client()


def put(s3c: Any, key: str, size: int) -> tuple[bytes, str]:
    """PUT random bytes; (the bytes, the CIDs of the object's leaves in order)."""
    data = os.urandom(size)
    cid = s3c.put_object(Bucket=BUCKET, Key=key, Body=data)["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-cid"]
    return data, _leaves(cid, data)


def _leaves(root: str, data: bytes) -> list[str]:
    """The leaf CIDs of a file added with our settings, computed from its bytes (and checked against its root)."""
    leaves = [Cid.of_block(data[i : i + CHUNK], 0x55).text for i in range(0, len(data), CHUNK)]
    if len(leaves) == 1:
        assert root == leaves[0]
    return leaves


def get_raw(gw: ThreadedGateway, key: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    """A signed GET on the raw wire: (status, the bytes that arrived, how the body ended)."""
    url = f"{gw.endpoint}/{BUCKET}/{key}"
    signed = raw.signed_headers("GET", url, access_key=gw.access_key, secret_key=gw.secret_key, headers=headers)
    got = bytearray()
    with httpx.Client(timeout=30) as client, client.stream("GET", url, headers=signed) as response:
        try:
            for piece in response.iter_raw():
                got += piece
        except httpx.HTTPError as exc:
            return response.status_code, bytes(got), f"cut: {type(exc).__name__}"
        return response.status_code, bytes(got), "complete"


def test_a_clean_read_passes(lying: ThreadedGateway, s3c: Any) -> None:
    data, _ = put(s3c, "clean", 3 * CHUNK + 5)
    assert s3c.get_object(Bucket=BUCKET, Key="clean")["Body"].read() == data
    assert s3c.get_object(Bucket=BUCKET, Key="clean", Range="bytes=5-300000")["Body"].read() == data[5:300001]


def test_a_corrupted_leaf_mid_object_cuts_the_response(lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy) -> None:
    data, leaves = put(s3c, "mid", 4 * CHUNK)
    proxy.faults.corrupt_blocks.add(leaves[2])
    status, got, ending = get_raw(lying, "mid")
    assert status == 200 and ending.startswith("cut")
    assert got == data[: len(got)] and len(got) <= 2 * CHUNK  # right bytes, and none of the bad leaf or after
    reports = {r.block: r for r in lying.store.damage_reports()}
    assert leaves[2] in reports and reports[leaves[2]].reason == "hash mismatch"
    with pytest.raises(Exception):  # boto3 sees a cut-off body too
        s3c.get_object(Bucket=BUCKET, Key="mid")["Body"].read()


def test_a_corrupted_first_block_is_an_error_before_any_byte(
    lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy
) -> None:
    small = os.urandom(1000)  # one raw leaf: read with block/get
    s3c.put_object(Bucket=BUCKET, Key="small", Body=small)
    proxy.faults.corrupt_blocks.add(Cid.of_block(small, 0x55).text)
    status, body, _ = get_raw(lying, "small")
    assert status == 500 and b"<Code>InternalError</Code>" in body and small not in body
    _, leaves = put(s3c, "first", 2 * CHUNK)
    proxy.faults.corrupt_blocks.add(leaves[0])
    status, body, _ = get_raw(lying, "first")
    assert status == 500 and b"InternalError" in body


@pytest.mark.parametrize(("cut", "extra"), [(1, b""), (CHUNK, b""), (0, b"tail")])
def test_a_short_or_long_cat_never_gives_a_clean_body(
    lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy, cut: int, extra: bytes
) -> None:
    data, _ = put(s3c, f"cat-{cut}-{len(extra)}", 3 * CHUNK)
    proxy.faults.cat_cut, proxy.faults.cat_extra = cut, extra
    status, got, ending = get_raw(lying, f"cat-{cut}-{len(extra)}")
    assert status == 200 and ending.startswith("cut") and len(got) < len(data)
    assert got == data[: len(got)]


def test_a_short_block_is_refused(lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy) -> None:
    s3c.put_object(Bucket=BUCKET, Key="short-block", Body=b"x" * 5000)
    proxy.faults.block_cut = 1
    status, body, _ = get_raw(lying, "short-block")
    assert status == 500 and b"x" * 100 not in body


def test_ranged_reads_touch_only_their_blocks(lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy) -> None:
    data, leaves = put(s3c, "ranged", 4 * CHUNK)
    proxy.faults.corrupt_blocks.add(leaves[3])
    got = s3c.get_object(Bucket=BUCKET, Key="ranged", Range=f"bytes=10-{2 * CHUNK + 9}")["Body"].read()
    assert got == data[10 : 2 * CHUNK + 10]
    status, got_raw, ending = get_raw(lying, "ranged", {"Range": f"bytes={CHUNK}-"})
    assert status == 206 and ending.startswith("cut") and got_raw == data[CHUNK : CHUNK + len(got_raw)]
    assert len(got_raw) <= 2 * CHUNK


def test_upload_part_copy_of_a_bad_range_stores_nothing(lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy) -> None:
    data, leaves = put(s3c, "copy-src", 4 * CHUNK)
    upload = s3c.create_multipart_upload(Bucket=BUCKET, Key="copy-dst")["UploadId"]
    source = {"Bucket": BUCKET, "Key": "copy-src"}

    def copy_part() -> Any:
        return s3c.upload_part_copy(
            Bucket=BUCKET,
            Key="copy-dst",
            UploadId=upload,
            PartNumber=1,
            CopySource=source,
            CopySourceRange=f"bytes=0-{2 * CHUNK}",
        )

    proxy.faults.corrupt_blocks.add(leaves[1])
    with pytest.raises(ClientError) as info:
        copy_part()
    assert info.value.response["Error"]["Code"] == "InternalError"
    assert s3c.list_parts(Bucket=BUCKET, Key="copy-dst", UploadId=upload).get("Parts", []) == []
    proxy.faults.clear()
    done = copy_part()
    parts = [{"PartNumber": 1, "ETag": done["CopyPartResult"]["ETag"]}]
    s3c.complete_multipart_upload(Bucket=BUCKET, Key="copy-dst", UploadId=upload, MultipartUpload={"Parts": parts})
    assert s3c.get_object(Bucket=BUCKET, Key="copy-dst")["Body"].read() == data[: 2 * CHUNK + 1]


def test_complete_over_a_corrupted_part_root_fails_and_keeps_the_upload(
    lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy
) -> None:
    upload = s3c.create_multipart_upload(Bucket=BUCKET, Key="composed")["UploadId"]
    first, second = os.urandom(2 * CHUNK + 7), os.urandom(CHUNK // 2)
    etags = []
    for number, body in ((1, first), (2, second)):
        reply = s3c.upload_part(Bucket=BUCKET, Key="composed", UploadId=upload, PartNumber=number, Body=body)
        etags.append(reply["ETag"])
    part_root = _part_root(lying, upload)
    proxy.faults.corrupt_blocks.add(part_root)
    parts = [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]
    with pytest.raises(ClientError) as info:
        s3c.complete_multipart_upload(Bucket=BUCKET, Key="composed", UploadId=upload, MultipartUpload={"Parts": parts})
    assert info.value.response["Error"]["Code"] == "InternalError"
    with pytest.raises(ClientError):
        s3c.head_object(Bucket=BUCKET, Key="composed")
    proxy.faults.clear()
    s3c.complete_multipart_upload(Bucket=BUCKET, Key="composed", UploadId=upload, MultipartUpload={"Parts": parts})
    assert s3c.get_object(Bucket=BUCKET, Key="composed")["Body"].read() == first + second


def _part_root(gw: ThreadedGateway, upload: str) -> str:
    """The CID of part 1 of `upload` (a dag-pb root: the part spans several leaves)."""
    (part,) = [p for p in gw.store.list_parts(upload) if p.part_number == 1]
    assert not Cid.parse(part.cid).is_raw
    return part.cid


def test_the_cache_never_keeps_bytes_that_failed(lying_cached: ThreadedGateway, proxy: FaultyProxy) -> None:
    lying, s3c = lying_cached, lying_cached.client()
    data, leaves = put(s3c, "cached", 3 * CHUNK)  # 768 KiB: fits the L1 cache's 1 MiB item limit
    lying_key = "cached-read"
    s3c.copy_object(Bucket=BUCKET, Key=lying_key, CopySource={"Bucket": BUCKET, "Key": "cached"})
    proxy.faults.corrupt_blocks.add(leaves[1])
    status, _, ending = get_raw(lying, lying_key, {"Range": f"bytes=1-{3 * CHUNK - 2}"})
    assert status == 206 and ending.startswith("cut")
    proxy.faults.clear()
    got = s3c.get_object(Bucket=BUCKET, Key=lying_key, Range=f"bytes=1-{3 * CHUNK - 2}")["Body"].read()
    assert got == data[1 : 3 * CHUNK - 1]
    proxy.faults.corrupt_blocks.add(leaves[1])  # now the verified bytes are cached: served from memory
    proxy.faults.calls.clear()
    again = s3c.get_object(Bucket=BUCKET, Key=lying_key, Range=f"bytes=1-{3 * CHUNK - 2}")["Body"].read()
    assert again == got and "cat" not in proxy.faults.calls


def test_copy_object_moves_no_bytes(lying: ThreadedGateway, s3c: Any, proxy: FaultyProxy) -> None:
    """CopyObject is a metadata operation on the same CID: it reads nothing from the node, so a lying node cannot
    feed it wrong bytes; reading the copy is verified like any read."""
    data, leaves = put(s3c, "copy-me", 2 * CHUNK)
    proxy.faults.corrupt_blocks.add(leaves[0])
    proxy.faults.calls.clear()
    s3c.copy_object(Bucket=BUCKET, Key="copied", CopySource={"Bucket": BUCKET, "Key": "copy-me"})
    assert not {"cat", "block/get"} & set(proxy.faults.calls)
    status, _, _ = get_raw(lying, "copied")
    assert status == 500
    proxy.faults.clear()
    assert (
        hashlib.md5(s3c.get_object(Bucket=BUCKET, Key="copied")["Body"].read()).digest() == hashlib.md5(data).digest()
    )
