"""Malformed, oversized, truncated and hostile requests: the right S3 error (never a 500), and nothing changed."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.config import S3Config
from appliance.ipfsconn.devnode import LocalNode
from tests.integration.s3.conftest import Raw, s3_code
from tests.support import raw
from tests.support.s3server import ThreadedGateway, running_gateway


def _state(gw: ThreadedGateway, bucket: str) -> tuple[Any, ...]:
    page = gw.store.list_objects(bucket, max_keys=1000)
    return tuple((o.key, o.cid, o.etag) for o in page.objects), gw.store.unpin_queue_depth(), gw.store.list_buckets()


@pytest.fixture
def seeded(s3: Any, bucket: str) -> str:
    s3.put_object(Bucket=bucket, Key="keep", Body=b"precious")
    return bucket


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


HOSTILE_DELETE = [
    b"",
    b"<Delete>",
    b"not xml at all",
    b"<Delete><Object><Key>keep</Key></Object>",  # truncated
    b"<Delete></Delete>",  # no objects
    b"<Delete><Object></Object></Delete>",  # object without key
    b"<Delete><Quiet>maybe</Quiet><Object><Key>keep</Key></Object></Delete>",
    b"<Delete><Object><Key>keep</Key><Extra/></Object></Delete>",
    b"<Wrong><Object><Key>keep</Key></Object></Wrong>",
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    b"<Delete><Object><Key>&lol2;</Key></Object></Delete>",  # entity expansion
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<Delete><Object><Key>&xxe;</Key></Object></Delete>",  # external entity
    b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>",  # over 1000 keys
    b"<Delete><Object><Key><b>keep</b></Key></Object></Delete>",
]


@pytest.mark.parametrize("body", HOSTILE_DELETE, ids=range(len(HOSTILE_DELETE)))
def test_hostile_delete_objects(raw_s3: Raw, gateway: ThreadedGateway, seeded: str, body: bytes) -> None:
    before = _state(gateway, seeded)
    response = raw_s3("POST", f"/{seeded}", query=[("delete", "")], body=body, headers={"Content-MD5": _md5(body)})
    assert response.status_code == 400
    assert s3_code(response) == "MalformedXML"
    assert _state(gateway, seeded) == before


def test_delete_objects_needs_an_integrity_header(raw_s3: Raw, gateway: ThreadedGateway, seeded: str) -> None:
    before = _state(gateway, seeded)
    body = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    response = raw_s3("POST", f"/{seeded}", query=[("delete", "")], body=body)
    assert response.status_code == 400
    assert s3_code(response) == "InvalidRequest"
    wrong = raw_s3("POST", f"/{seeded}", query=[("delete", "")], body=body, headers={"Content-MD5": _md5(b"x")})
    assert s3_code(wrong) == "BadDigest"
    assert _state(gateway, seeded) == before


def test_delete_objects_quiet_and_verbose(raw_s3: Raw, s3: Any, bucket: str) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    verbose = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "missing"}]})
    assert sorted(d["Key"] for d in verbose["Deleted"]) == ["a", "missing"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert "Errors" not in quiet
    odd = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c", "VersionId": "v123"}, {"Key": "k" * 1100}]})
    codes = sorted(e["Code"] for e in odd["Errors"])
    assert codes == ["InvalidArgument", "KeyTooLongError"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "status", "code"),
    [
        ("GET", "/%FF%FE/x", [], {}, 400, "InvalidURI"),
        ("PATCH", "/{b}/keep", [], {}, 405, "MethodNotAllowed"),
        ("PUT", "/{b}/keep", [("tagging", "")], {}, 400, "MalformedXML"),
        ("PUT", "/{b}/keep", [("acl", "")], {}, 400, "MalformedACLError"),
        ("PUT", "/{b}/keep", [("retention", "")], {}, 501, "NotImplemented"),
        ("GET", "/{b}", [("policy", "")], {}, 404, "NoSuchBucketPolicy"),
        ("GET", "/{b}", [("lifecycle", "")], {}, 501, "NotImplemented"),
        ("GET", "/{b}/keep", [("versionId", "garbage")], {}, 400, "InvalidArgument"),
        ("GET", "/{b}/keep", [("versionId", "0000000000000000deadbeef")], {}, 404, "NoSuchVersion"),
        ("PUT", "/{b}/copy", [], {"x-amz-copy-source": "/{b}/missing"}, 404, "NoSuchKey"),
        ("PUT", "/{b}/copy", [], {"x-amz-copy-source": "nobucketslash"}, 400, "InvalidArgument"),
        (
            "PUT",
            "/{b}/copy",
            [],
            {"x-amz-copy-source": "/{b}/keep", "x-amz-metadata-directive": "MOVE"},
            400,
            "InvalidArgument",
        ),
        ("PUT", "/{b}/" + "k" * 1025, [], {}, 400, "KeyTooLongError"),
        ("PUT", "/{b}/keep", [], {"x-amz-checksum-crc32": "not base64"}, 400, "InvalidRequest"),
        (
            "PUT",
            "/{b}/keep",
            [],
            {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
            400,
            "InvalidRequest",
        ),
        ("PUT", "/{b}/keep", [], {"x-amz-sdk-checksum-algorithm": "MD4"}, 400, "InvalidRequest"),
        ("PUT", "/{b}/keep", [], {"Content-MD5": "AAAA"}, 400, "InvalidDigest"),
        ("PUT", "/{b}/keep", [], {"x-amz-trailer": "x-amz-checksum-crc32"}, 400, "InvalidRequest"),
        ("GET", "/{b}", [("max-keys", "-5")], {}, 400, "InvalidArgument"),
        ("GET", "/no-such-bucket-x/keep", [], {}, 404, "NoSuchBucket"),
        ("DELETE", "/", [], {}, 405, "MethodNotAllowed"),
    ],
)
def test_bad_requests(
    raw_s3: Raw,
    gateway: ThreadedGateway,
    seeded: str,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    before = _state(gateway, seeded)
    headers = {k: v.replace("{b}", seeded) for k, v in headers.items()}
    response = raw_s3(method, path.replace("{b}", seeded), query=query, headers=headers, body=b"new body")
    assert response.status_code == status, response.text
    assert s3_code(response) == code
    assert b"Traceback" not in response.content
    assert response.headers["x-amz-request-id"]
    assert _state(gateway, seeded) == before


def test_malformed_aws_chunked_body(gateway: ThreadedGateway, seeded: str) -> None:
    before = _state(gateway, seeded)
    for body in (b"zz;chunk-signature=00\r\n", b"5\r\nabc", b"3\r\nabcXX0\r\n\r\n", b"\xff" * 100):
        headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "3"}
        signed = raw.signed_headers(
            "PUT",
            f"{gateway.endpoint}/{seeded}/keep",
            access_key=gateway.access_key,
            secret_key=gateway.secret_key,
            headers=headers,
            payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        )
        response = raw.send(
            gateway.endpoint,
            "PUT",
            f"/{seeded}/keep",
            access_key="",
            secret_key="",
            headers=signed,
            body=body,
            sign=False,
        )
        assert response.status_code == 400, body
        assert s3_code(response) in ("InvalidRequest", "IncompleteBody")
    assert _state(gateway, seeded) == before


def test_oversized_header_section(raw_s3: Raw, gateway: ThreadedGateway, seeded: str) -> None:
    before = _state(gateway, seeded)
    response = raw_s3("PUT", f"/{seeded}/keep", headers={"x-amz-meta-big": "v" * 20000}, body=b"x")
    assert response.status_code in (400, 431)
    assert _state(gateway, seeded) == before


def _send_raw(port: int, data: bytes, *, then_wait: float = 0.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if then_wait:
            time.sleep(then_wait)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while piece := sock.recv(65536):
            chunks.append(piece)
        return b"".join(chunks)


def test_truncated_body_stores_nothing(gateway: ThreadedGateway, seeded: str) -> None:
    before = _state(gateway, seeded)
    path = f"/{seeded}/keep"
    body = b"x" * 100_000
    headers = raw.signed_headers(
        "PUT",
        gateway.endpoint + path,
        access_key=gateway.access_key,
        secret_key=gateway.secret_key,
        payload_hash="UNSIGNED-PAYLOAD",
    )
    head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    head += f"Content-Length: {len(body)}\r\n\r\n"
    _send_raw(gateway.port, head.encode() + body[:40_000])  # the client goes away after 40 %
    time.sleep(0.5)
    assert _state(gateway, seeded) == before
    assert gateway.store.get_object(seeded, "keep").etag == hashlib.md5(b"precious").hexdigest()  # type: ignore[union-attr]


def test_garbage_on_the_socket(gateway: ThreadedGateway, seeded: str) -> None:
    before = _state(gateway, seeded)
    for junk in (
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ):
        reply = _send_raw(gateway.port, junk)
        assert not reply.startswith(b"HTTP/1.1 500")
    assert _state(gateway, seeded) == before


# ---- limits that need their own gateway ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_gateway(tmp_path_factory: pytest.TempPathFactory, s3_node: LocalNode) -> Iterator[ThreadedGateway]:
    limits = S3Config(max_single_put_bytes=1000, body_read_timeout=1.0, max_xml_body_bytes=1024)
    with running_gateway(tmp_path_factory.mktemp("strict"), s3_node.api_url, s3=limits) as gw:
        gw.client().create_bucket(Bucket="strict")
        yield gw


def test_entity_too_large(strict_gateway: ThreadedGateway) -> None:
    s3 = strict_gateway.client()
    for size in (1001, 5000):
        response = raw.send(
            strict_gateway.endpoint,
            "PUT",
            "/strict/big",
            access_key=strict_gateway.access_key,
            secret_key=strict_gateway.secret_key,
            body=b"x" * size,
        )
        assert response.status_code == 400
        assert s3_code(response) == "EntityTooLarge"
    assert "Contents" not in s3.list_objects_v2(Bucket="strict")
    s3.put_object(Bucket="strict", Key="ok", Body=b"x" * 1000)


def test_oversized_xml_body(strict_gateway: ThreadedGateway) -> None:
    body = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 100 + b"</Delete>"
    response = raw.send(
        strict_gateway.endpoint,
        "POST",
        "/strict",
        access_key=strict_gateway.access_key,
        secret_key=strict_gateway.secret_key,
        query=[("delete", "")],
        body=body,
        headers={"Content-MD5": _md5(body)},
    )
    assert response.status_code == 400
    assert s3_code(response) == "EntityTooLarge"


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body), however the server splits it into segments."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _response_length(data):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _response_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value.strip())
    return len(head) + 4


def test_stalled_body_times_out(strict_gateway: ThreadedGateway) -> None:
    path = "/strict/slow"
    headers = raw.signed_headers(
        "PUT",
        strict_gateway.endpoint + path,
        access_key=strict_gateway.access_key,
        secret_key=strict_gateway.secret_key,
        payload_hash="UNSIGNED-PAYLOAD",
    )
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{strict_gateway.port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "Content-Length: 500\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", strict_gateway.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"x" * 100)  # then nothing: the client stalls
        reply = _read_response(sock)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"<Code>RequestTimeout</Code>" in reply
    assert "Contents" not in strict_gateway.client().list_objects_v2(Bucket="strict", Prefix="slow")


def test_missing_content_length(strict_gateway: ThreadedGateway) -> None:
    path = "/strict/nolength"
    headers = raw.signed_headers(
        "PUT",
        strict_gateway.endpoint + path,
        access_key=strict_gateway.access_key,
        secret_key=strict_gateway.secret_key,
        payload_hash="UNSIGNED-PAYLOAD",
    )
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{strict_gateway.port}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "Transfer-Encoding: chunked\r\n\r\n"
    )
    reply = _send_raw(strict_gateway.port, head.encode() + b"3\r\nabc\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411")
    assert b"<Code>MissingContentLength</Code>" in reply
