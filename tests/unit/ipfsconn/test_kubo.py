"""KuboClient against httpx.MockTransport: requests sent, replies parsed, every error translated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

import appliance.ipfsconn.kubo as kubo
from appliance.errors import BackendError, BackendUnavailable, ContentIntegrityError
from appliance.ipfsconn.kubo import KuboClient, RepoStat, normalise_cid
from tests.support.unixfs_cid import cid_of_bytes

HELLO_B32 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
HELLO_B58 = "zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY"
DIR_B32 = "bafybeidcvkndkchugsph5gtarv7av2zgz7yzglyk4b54xxn4h5n7ecd6uu"
DIR_B58 = "zdj7Wc53v2TAZBswgwP4c2P5V84Zn1wQv9gL4Z4w2kSK4zWip"

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: object) -> KuboClient:
    return KuboClient("http://127.0.0.1:5001", transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


def err(status: int, message: str, code: int = 0) -> httpx.Response:
    return httpx.Response(status, json={"Message": message, "Code": code, "Type": "error"})


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_public_api() -> None:
    assert kubo.__all__ == ["KuboClient", "RepoStat"]


# ---- CIDs ------------------------------------------------------------------------------------------


def test_normalise_cid() -> None:
    assert normalise_cid(HELLO_B58) == HELLO_B32
    assert normalise_cid(DIR_B58) == DIR_B32
    assert normalise_cid(HELLO_B32) == HELLO_B32
    # CIDv0 → CIDv1 dag-pb of the same multihash
    assert normalise_cid("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH").startswith("bafybei")
    for bad in ["", "x123", "zIl0O", "bafy", "QmNotACid"]:
        with pytest.raises(BackendError):
            normalise_cid(bad)


def test_duration() -> None:
    assert kubo._duration(30) == "30s"
    assert kubo._duration(0.5) == "500ms"
    assert kubo._duration(1.0001) == "1001ms"
    assert kubo._duration(86400) == "86400s"


# ---- add -------------------------------------------------------------------------------------------


async def test_add_streams_multipart_and_parses_last_line() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["path"] = request.url.path
        seen["params"] = dict(request.url.params)
        seen["headers"] = request.headers
        seen["body"] = request.read()
        lines = [{"Name": "object", "Bytes": 5}, {"Name": "object", "Hash": HELLO_B58, "Size": "12"}]
        return httpx.Response(200, content=b"\n".join(json.dumps(x).encode() for x in lines) + b"\n")

    async with client(handler, chunk_size=262144) as c:
        added = await c.add(chunks(b"hello ", b"", b"world\n"), pin=False)
    assert added.cid == HELLO_B32
    assert added.size == 12
    assert seen["path"] == "/api/v0/add"
    assert seen["params"] == {
        "cid-version": "1",
        "raw-leaves": "true",
        "chunker": "size-262144",
        "hash": "sha2-256",
        "cid-base": "base32",
        "pin": "false",
        "progress": "false",
        "timeout": "86400s",
    }
    headers = seen["headers"]
    assert isinstance(headers, httpx.Headers)
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    boundary = headers["content-type"].split("boundary=")[1]
    assert headers["content-type"].startswith("multipart/form-data; boundary=")
    assert (
        seen["body"]
        == (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="object"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
            f"hello world\n\r\n--{boundary}--\r\n"
        ).encode()
    )


@pytest.mark.parametrize("size", [12, "12"])
async def test_add_size_is_counted_not_read(size: object) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, json={"Name": "object", "Hash": HELLO_B32, "Size": size})

    async with client(handler) as c:
        added = await c.add(chunks(b"x" * 300_000, b"y" * 5))
    assert added.size == 300_005


async def test_body_large_chunks_pass_through_small_ones_coalesce() -> None:
    big = b"b" * (1 << 20)
    body = kubo._MultipartBody(chunks(*[b"a" * 1000] * 600, big))
    pieces = [piece async for piece in body.stream()]
    # header, 2 coalesced writes of >= 256 KiB, the rest of the small ones, the 1 MiB chunk itself, trailer
    assert [len(p) for p in pieces[1:-1]] == [262144 + 856, 262144 + 856, 600_000 - 2 * 263000, 1 << 20]
    assert pieces[-2] is big
    assert body.size == 600_000 + (1 << 20)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n\n",
        b"not json",
        b'{"Name": "object", "Hash": "ba',  # cut short
        b'{"Name": "object"}',  # no Hash
        b'["Hash"]',
        b'{"Hash": 42}',
        b'{"Hash": "nonsense"}',
        b'{"Name":"object","Bytes":10}\n{"Message":"write failed","Code":0,"Type":"error"}',
    ],
)
async def test_add_malformed_reply_is_backend_error(body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, content=body)

    async with client(handler) as c:
        with pytest.raises(BackendError):
            await c.add(chunks(b"data"))


async def test_add_source_error_propagates_unchanged() -> None:
    boom = ZeroDivisionError("source failed")
    sent: list[bytes] = []

    async def failing() -> AsyncIterator[bytes]:
        yield b"partial"
        raise boom

    def handler(request: httpx.Request) -> httpx.Response:
        sent.extend(request.stream)  # type: ignore[arg-type]
        return httpx.Response(200, json={"Hash": HELLO_B32})

    async with client(handler) as c:
        with pytest.raises(ZeroDivisionError) as info:
            await c.add(failing())
    assert info.value is boom
    assert not any(b"--\r\n" in piece for piece in sent[1:])  # the closing boundary was never produced


async def test_add_source_raising_an_httpx_error_is_not_translated() -> None:
    upstream = httpx.ReadTimeout("the S3 client stalled")

    async def failing() -> AsyncIterator[bytes]:
        yield b"partial"
        raise upstream

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200, json={"Hash": HELLO_B32})

    async with client(handler) as c:
        with pytest.raises(httpx.ReadTimeout) as info:
            await c.add(failing())
    assert info.value is upstream


# ---- cat -------------------------------------------------------------------------------------------


async def test_cat_with_length_streams_and_sends_range() -> None:
    seen: list[httpx.Request] = []
    data = bytes(range(256)) * 4096  # 1 MiB

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=data)

    async with client(handler, timeout=10, verify_reads=False) as c:
        pieces = [p async for p in c.cat(HELLO_B32, offset=7, length=len(data))]
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 256 * 1024
    assert len(seen) == 1
    assert seen[0].url.path == "/api/v0/cat"
    assert dict(seen[0].url.params) == {"arg": HELLO_B32, "offset": "7", "length": str(len(data)), "timeout": "11s"}


async def test_cat_without_length_asks_the_size_first() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v0/files/stat":
            return httpx.Response(200, json={"Type": "file", "Size": "12", "Hash": HELLO_B58})
        return httpx.Response(200, content=b"world\n")

    async with client(handler, verify_reads=False) as c:
        assert b"".join([p async for p in c.cat(HELLO_B32, offset=6)]) == b"world\n"
    assert seen[0].url.params["arg"] == f"/ipfs/{HELLO_B32}"
    assert seen[0].url.params["timeout"] == "30s"
    assert seen[1].url.params["length"] == "6"


async def test_cat_empty_ranges_make_no_cat_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v0/files/stat"
        return httpx.Response(200, json={"Type": "file", "Size": 0})

    async with client(handler) as c:
        assert [p async for p in c.cat(HELLO_B32)] == []
        assert [p async for p in c.cat(HELLO_B32, 5, 0)] == []
        with pytest.raises(ValueError):
            [p async for p in c.cat(HELLO_B32, -1)]


async def test_cat_short_stream_is_backend_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v0/files/stat":
            return httpx.Response(200, json={"Type": "file", "Size": 100})
        return httpx.Response(200, content=b"x" * 60, headers={"Trailer": "X-Stream-Error"})

    async with client(handler, verify_reads=False) as c:
        with pytest.raises(ContentIntegrityError, match="60 of 100"):
            [p async for p in c.cat(HELLO_B32)]
        with pytest.raises(ContentIntegrityError, match="60 of 100"):  # also when the caller gives the length
            [p async for p in c.cat(HELLO_B32, 0, 100)]


async def test_cat_long_stream_is_an_integrity_error() -> None:
    async with client(lambda _: httpx.Response(200, content=b"x" * 101), verify_reads=False) as c:
        with pytest.raises(ContentIntegrityError, match="more than 100"):
            [p async for p in c.cat(HELLO_B32, 0, 100)]


async def test_cat_verifies_blocks_by_default() -> None:
    good = b"hello world\n"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v0/block/get"
        return httpx.Response(200, content=good)

    async with client(handler) as c:
        assert b"".join([p async for p in c.cat(HELLO_B32, 6, 6)]) == b"world\n"

    async with client(lambda _: httpx.Response(200, content=b"hello World\n")) as c:
        with pytest.raises(ContentIntegrityError, match="hash mismatch"):
            [p async for p in c.cat(HELLO_B32, 0, 12)]


async def test_cat_of_a_directory_is_backend_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"Type": "directory", "Size": 0})

    async with client(handler) as c:
        with pytest.raises(BackendError, match="not a file"):
            [p async for p in c.cat(DIR_B32)]


async def test_cat_error_before_first_byte() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return err(500, "Failed to cat file: request timed out")

    async with client(handler) as c:
        with pytest.raises(BackendUnavailable, match="timed out"):
            [p async for p in c.cat(HELLO_B32, 0, 10)]


# ---- error translation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error", "text"),
    [
        (err(500, "Failed to remove pin: boom"), BackendError, "Failed to remove pin: boom"),
        (err(400, "Invalid request query input", 1), BackendError, "Invalid request query input"),
        (err(404, "Not Found", 3), BackendError, "Not Found"),
        (httpx.Response(404, text="404 page not found"), BackendError, "404 page not found"),
        (httpx.Response(400, text="file argument 'path' is required"), BackendError, "file argument"),
        (httpx.Response(403, text="Kubo RPC Access Denied: Please provide"), BackendError, "Access Denied"),
        (httpx.Response(500, content=b""), BackendError, "HTTP 500"),
        (httpx.Response(500, content=b'{"Message": 5}'), BackendError, "Message"),
        (httpx.Response(503, text="busy"), BackendUnavailable, "busy"),
        (httpx.Response(502, content=b""), BackendUnavailable, "HTTP 502"),
        (err(500, "Failed to add pin: request timed out"), BackendUnavailable, "timed out"),
        (err(500, "context deadline exceeded"), BackendUnavailable, "deadline"),
    ],
)
async def test_error_replies(response: httpx.Response, error: type[Exception], text: str) -> None:
    async with client(lambda request: response) as c:
        with pytest.raises(error, match=text) as info:
            await c.pin(HELLO_B32)
    assert type(info.value) is error


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.WriteTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
async def test_transport_errors_are_unavailable(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with client(handler) as c:
        with pytest.raises(BackendUnavailable) as info:
            await c.ping()
        assert info.value.__cause__ is exc
        with pytest.raises(BackendUnavailable):
            await c.add(chunks(b"abc"))
        with pytest.raises(BackendUnavailable):
            [p async for p in c.cat(HELLO_B32, 0, 3)]


async def test_error_mid_stream_is_unavailable() -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"first" * 60_000
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    async with client(lambda request: httpx.Response(200, stream=Broken()), verify_reads=False) as c:
        got: list[bytes] = []
        with pytest.raises(BackendUnavailable):
            async for piece in c.cat(HELLO_B32, 0, 10**6):
                got.append(piece)
    assert b"".join(got) == b"first" * 60_000  # what arrived was passed on, in pieces of <= 256 KiB
    assert [len(p) for p in got] == [256 * 1024, 300_000 - 256 * 1024]


@pytest.mark.parametrize("body", [b"", b"[]", b"{", b'"x"', b"null"])
async def test_malformed_json_is_backend_error(body: bytes) -> None:
    async with client(lambda request: httpx.Response(200, content=body)) as c:
        with pytest.raises(BackendError):
            await c.ping()
        with pytest.raises(BackendError):
            await c.is_pinned(HELLO_B32)
        with pytest.raises(BackendError):
            await c.repo_stat()


async def test_oversized_reply_is_backend_error() -> None:
    async with client(lambda request: httpx.Response(200, content=b" " * (5 << 20))) as c:
        with pytest.raises(BackendError, match="larger than"):
            await c.ping()


# ---- pins, version, repo ---------------------------------------------------------------------------


async def test_pin_unpin_is_pinned() -> None:
    seen: list[httpx.Request] = []
    pinned = {HELLO_B58}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        arg = request.url.params["arg"]
        cmd = request.url.path.removeprefix("/api/v0/")
        if cmd == "pin/ls":
            if normalise_cid(arg) not in {normalise_cid(p) for p in pinned}:
                return err(500, f"path '{arg}' is not pinned")
            return httpx.Response(200, json={"Keys": {HELLO_B58: {"Type": "recursive"}}})
        if cmd == "pin/rm":
            return err(500, f"Failed to remove pin: {arg} is not pinned")
        return httpx.Response(200, json={"Pins": [arg]})

    async with client(handler, timeout=7) as c:
        assert await c.is_pinned(HELLO_B32) is True
        assert await c.is_pinned(DIR_B32) is False
        await c.unpin(DIR_B32)  # not pinned is success
        await c.pin(DIR_B32)
    by_cmd = {r.url.path: dict(r.url.params) for r in seen}
    assert by_cmd["/api/v0/pin/ls"] == {"arg": DIR_B32, "type": "recursive", "timeout": "7s"}
    assert by_cmd["/api/v0/pin/rm"] == {"arg": DIR_B32, "recursive": "true", "timeout": "7s"}
    assert by_cmd["/api/v0/pin/add"] == {"arg": DIR_B32, "recursive": "true", "timeout": "7s"}
    assert all(r.method == "POST" for r in seen)


async def test_is_pinned_only_counts_recursive() -> None:
    reply = {"Keys": {HELLO_B58: {"Type": f"indirect through {DIR_B58}"}}}
    async with client(lambda request: httpx.Response(200, json=reply)) as c:
        assert await c.is_pinned(HELLO_B32) is False


async def test_unpin_other_errors_raise() -> None:
    async with client(lambda request: err(500, "Failed to remove pin: disk on fire")) as c:
        with pytest.raises(BackendError, match="disk on fire"):
            await c.unpin(HELLO_B32)


async def test_ping_and_repo_stat() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "timeout" not in request.url.params
        if request.url.path == "/api/v0/version":
            return httpx.Response(200, json={"Version": "0.18.1", "Commit": ""})
        return httpx.Response(200, json={"NumObjects": "9", "RepoSize": 1054915, "StorageMax": "9007199254740991"})

    async with client(handler) as c:
        assert await c.ping() == "0.18.1"
        assert await c.repo_stat() == RepoStat(repo_size=1054915, storage_max=9007199254740991, num_objects=9)


async def test_repo_stat_non_numeric_is_backend_error() -> None:
    reply = {"NumObjects": "many", "RepoSize": "1", "StorageMax": "1"}
    async with client(lambda request: httpx.Response(200, json=reply)) as c:
        with pytest.raises(BackendError, match="NumObjects"):
            await c.repo_stat()


async def test_auth_header_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"Version": "0.30.0"})

    async with client(handler, auth_header="Bearer sekrit") as c:
        await c.ping()
        assert "sekrit" not in repr(c)
    assert seen[0].headers["authorization"] == "Bearer sekrit"


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        KuboClient("127.0.0.1:5001")
    with pytest.raises(ValueError):
        KuboClient("http://127.0.0.1:5001", chunk_size=0)


def test_reference_cid_helper_agrees_with_the_readme() -> None:
    assert cid_of_bytes(b"hello world\n", 262144) == HELLO_B32
    assert cid_of_bytes(b"", 262144) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
