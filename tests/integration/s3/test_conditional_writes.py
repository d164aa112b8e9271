"""Conditional writes (If-Match, If-None-Match: *) on PutObject and CompleteMultipartUpload, the CID headers, and
version ids only where S3 sends them: boto3 and the raw wire against the live session gateway."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from appliance.model import ObjectMeta
from tests.integration.s3.conftest import Raw, s3_code
from tests.support import raw
from tests.support.s3server import ThreadedGateway


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_put_if_none_match_star(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    before = gateway.store.get_object(bucket, "once")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert (_status(exc), _code(exc)) == (412, "PreconditionFailed")
    assert gateway.store.get_object(bucket, "once") == before
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"


def test_put_if_match(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="cas", Body=b"x", IfMatch='"00000000000000000000000000000000"')
    assert (_status(exc), _code(exc)) == (404, "NoSuchKey")
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    etag2 = s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)["ETag"]
    before = gateway.store.get_object(bucket, "cas")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag)  # stale
    assert (_status(exc), _code(exc)) == (412, "PreconditionFailed")
    assert gateway.store.get_object(bucket, "cas") == before
    s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag2.strip('"'))  # bare ETags match too
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v3"


def test_if_match_on_a_delete_marker_is_no_such_key(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfMatch=etag)
    assert _code(exc) == "NoSuchKey"
    s3.put_object(Bucket=bucket, Key="k", Body=b"v2", IfNoneMatch="*")  # a marker is no object


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"If-None-Match": '"abc"'}, 501, "NotImplemented"),
        ({"If-None-Match": "*, *"}, 501, "NotImplemented"),
        ({"If-None-Match": ""}, 501, "NotImplemented"),
        ({"If-None-Match": "*", "If-Match": "*"}, 501, "NotImplemented"),
        ({"If-Match": "garbage"}, 412, "PreconditionFailed"),
        ({"If-Match": ""}, 412, "PreconditionFailed"),
        ({"If-Match": '"' + "f" * 5000 + '"'}, 412, "PreconditionFailed"),
    ],
)
def test_bad_conditions_on_the_wire(
    raw_s3: Raw, s3: Any, bucket: str, gateway: ThreadedGateway, headers: dict[str, str], status: int, code: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"kept")
    before = gateway.store.get_object(bucket, "k")
    reply = raw_s3("PUT", f"/{bucket}/k", body=b"new body", headers=headers)
    assert (reply.status_code, s3_code(reply)) == (status, code)
    assert gateway.store.get_object(bucket, "k") == before
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"p")["ETag"]
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    )
    reply = raw_s3("POST", f"/{bucket}/k", query=[("uploadId", upload_id)], body=body.encode(), headers=headers)
    assert (reply.status_code, s3_code(reply)) == (status, code)
    assert gateway.store.get_object(bucket, "k") == before
    assert gateway.store.get_upload(upload_id) is not None


def test_complete_conditions(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    # An object appeared at the key while the upload was in progress.
    old_etag = s3.put_object(Bucket=bucket, Key="mp", Body=b"someone else")["ETag"]
    before = gateway.store.get_object(bucket, "mp")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload=parts, IfNoneMatch="*"
        )
    assert (_status(exc), _code(exc)) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload=parts, IfMatch='"' + "0" * 32 + '"'
        )
    assert _code(exc) == "PreconditionFailed"
    assert gateway.store.get_object(bucket, "mp") == before
    assert [p.part_number for p in gateway.store.list_parts(upload_id)] == [1]  # the upload is intact
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload=parts, IfMatch=old_etag
    )
    # A retry of the Complete that succeeded gets its answer, although If-Match no longer holds.
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload=parts, IfMatch=old_etag
    )
    assert again["ETag"] == done["ETag"]
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"part"


def _slow_put(gw: ThreadedGateway, path: str, head: bytes, tail: bytes, go: threading.Event) -> httpx.Response:
    """A conditional PUT whose body stalls after `head` until `go` is set (a concurrent write can win meanwhile)."""
    headers = raw.signed_headers(
        "PUT",
        gw.endpoint + path,
        access_key=gw.access_key,
        secret_key=gw.secret_key,
        headers={"If-None-Match": "*", "Content-Length": str(len(head) + len(tail))},
        payload_hash="UNSIGNED-PAYLOAD",
    )

    def body() -> Iterator[bytes]:
        yield head
        go.wait(30)
        yield tail

    with httpx.Client(timeout=60) as client:
        return client.put(gw.endpoint + path, headers=headers, content=body())


def test_concurrent_write_wins_during_the_upload(s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    go = threading.Event()
    replies: list[httpx.Response] = []
    head, tail = b"slow " * 1000, b"writer"
    queued = gateway.store.unpin_queue_depth()
    worker = threading.Thread(target=lambda: replies.append(_slow_put(gateway, f"/{bucket}/race", head, tail, go)))
    worker.start()
    time.sleep(0.5)  # the slow PUT passed its first check and streams its body
    s3.put_object(Bucket=bucket, Key="race", Body=b"fast writer")
    winner = gateway.store.get_object(bucket, "race")
    go.set()
    worker.join(60)
    assert replies[0].status_code == 409
    assert s3_code(replies[0]) == "ConditionalRequestConflict"
    assert gateway.store.get_object(bucket, "race") == winner
    # The losing body's content was added and pinned; nothing references it, so its release is queued: writing the
    # same bytes again takes that very job back.
    assert gateway.store.unpin_queue_depth() == queued + 1
    s3.put_object(Bucket=bucket, Key="same-bytes", Body=head + tail)
    assert gateway.store.unpin_queue_depth() == queued
    loser: ObjectMeta | None = gateway.store.get_object(bucket, "same-bytes")
    assert loser is not None and loser.cid != winner.cid  # type: ignore[union-attr]
    assert gateway.store.cid_refcount(loser.cid) == 1  # only the row just written


def test_cid_headers_and_no_stored_cid(raw_s3: Raw, s3: Any, bucket: str, gateway: ThreadedGateway) -> None:
    put = raw_s3("PUT", f"/{bucket}/k", body=b"content", headers={"x-amz-meta-cid": "bafyfake", "x-amz-meta-a": "1"})
    assert put.status_code == 200
    cid = put.headers["x-amz-meta-cid"]
    assert cid != "bafyfake" and put.headers["x-ipfs-cid"] == cid
    row = gateway.store.get_object(bucket, "k")
    assert row is not None and row.user_meta == (("a", "1"),)
    for method in ("GET", "HEAD"):
        reply = raw_s3(method, f"/{bucket}/k")
        assert reply.headers["x-amz-meta-cid"] == reply.headers["x-ipfs-cid"] == cid
    assert s3.head_object(Bucket=bucket, Key="k")["Metadata"] == {"a": "1", "cid": cid}
    # A row from before the rule that kept a user `cid`: a COPY does not carry it over, GET shows the real CID.
    gateway.store.put_object(
        ObjectMeta(bucket, "old", cid, 7, row.etag, 1.0, user_meta=(("a", "2"), ("cid", "bafystale"))),
        unpin_grace=0,
        now=1.0,
    )
    assert raw_s3("GET", f"/{bucket}/old").headers["x-amz-meta-cid"] == cid
    copied = raw_s3("PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": f"/{bucket}/old"})
    assert copied.status_code == 200 and copied.headers["x-ipfs-cid"] == cid
    assert gateway.store.get_object(bucket, "copy").user_meta == (("a", "2"),)  # type: ignore[union-attr]
    # Create + Complete: dropped from the upload's metadata too; the answer carries the object's CID.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"cid": "bafyfake", "b": "2"})["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"content")["ETag"]
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    )
    done = raw_s3("POST", f"/{bucket}/mp", query=[("uploadId", upload_id)], body=body.encode())
    assert done.headers["x-amz-meta-cid"] == done.headers["x-ipfs-cid"] == cid
    assert gateway.store.get_object(bucket, "mp").user_meta == (("b", "2"),)  # type: ignore[union-attr]


def test_no_version_id_in_a_bucket_that_never_had_versioning(raw_s3: Raw, s3: Any, bucket: str) -> None:
    replies = [raw_s3("PUT", f"/{bucket}/k", body=b"x"), raw_s3("GET", f"/{bucket}/k"), raw_s3("HEAD", f"/{bucket}/k")]
    replies.append(raw_s3("PUT", f"/{bucket}/c", headers={"x-amz-copy-source": f"/{bucket}/k"}))
    replies.append(
        raw_s3("GET", f"/{bucket}/k", query=[("attributes", "")], headers={"x-amz-object-attributes": "ETag"})
    )
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1, Body=b"p")["ETag"]
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    )
    replies.append(raw_s3("POST", f"/{bucket}/m", query=[("uploadId", upload_id)], body=body.encode()))
    replies += [raw_s3("DELETE", f"/{bucket}/k"), raw_s3("DELETE", f"/{bucket}/never-there")]
    for reply in replies:
        assert reply.status_code in (200, 204)
        assert "x-amz-version-id" not in reply.headers
        assert "x-amz-delete-marker" not in reply.headers
        assert "x-amz-copy-source-version-id" not in reply.headers


def test_delete_marker_headers(raw_s3: Raw, s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = raw_s3("PUT", f"/{bucket}/k", body=b"x").headers["x-amz-version-id"]
    deleted = raw_s3("DELETE", f"/{bucket}/k")
    marker = deleted.headers["x-amz-version-id"]
    assert deleted.status_code == 204 and deleted.headers["x-amz-delete-marker"] == "true"
    for method in ("GET", "HEAD"):
        current = raw_s3(method, f"/{bucket}/k")
        assert current.status_code == 404 and current.headers["x-amz-delete-marker"] == "true"
        by_id = raw_s3(method, f"/{bucket}/k", query=[("versionId", marker)])
        assert by_id.status_code == 405 and by_id.headers["x-amz-delete-marker"] == "true"
        assert by_id.headers["x-amz-version-id"] == marker
    plain = raw_s3("DELETE", f"/{bucket}/k", query=[("versionId", version)])
    assert plain.status_code == 204 and "x-amz-delete-marker" not in plain.headers
    assert plain.headers["x-amz-version-id"] == version
    removed = raw_s3("DELETE", f"/{bucket}/k", query=[("versionId", marker)])
    assert removed.headers["x-amz-delete-marker"] == "true" and removed.headers["x-amz-version-id"] == marker
