"""VerifiedBody: payload hashes, aws-chunked decoding, chunk/trailer signatures, Content-MD5 and checksums."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpchecksum import (
    AwsChunkedWrapper,
    CrtCrc32cChecksum,
    CrtCrc32Checksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.api.s3 import payload
from appliance.api.s3.payload import VerifiedBody
from appliance.api.s3.sigv4 import EMPTY_SHA256, AuthContext, authenticate, derive_signing_key
from appliance.errors import (
    BadDigest,
    EntityTooLarge,
    IncompleteBody,
    InvalidArgument,
    InvalidDigest,
    InvalidRequest,
    MissingContentLength,
    RequestError,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

# AWS S3 API reference examples: sigv4-streaming and sigv4-streaming-trailers.
DOC_KEY = derive_signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1")
DOC_DATE = "20130524T000000Z"
DOC_SCOPE = "20130524/us-east-1/s3/aws4_request"
DOC_DATA = b"a" * 66560
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_SIGS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_SIGS = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
DOC_TRAILER = (
    b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
)


def doc_body(sigs: Sequence[str], trailer: bytes = b"") -> bytes:
    return (
        f"10000;chunk-signature={sigs[0]}\r\n".encode()
        + b"a" * 65536
        + f"\r\n400;chunk-signature={sigs[1]}\r\n".encode()
        + b"a" * 1024
        + f"\r\n0;chunk-signature={sigs[2]}\r\n".encode()
        + trailer
        + b"\r\n"
    )


def ctx(mode: str, seed: str = DOC_SEED) -> AuthContext:
    return AuthContext("AK", "us-east-1", DOC_DATE, DOC_SCOPE, DOC_KEY, seed, mode, False)


async def pieces(raw: bytes, sizes: Sequence[int] = (65536,)) -> AsyncIterator[bytes]:
    """The raw body in pieces of the given sizes (cycled), as an HTTP server would deliver it."""
    i = n = 0
    while i < len(raw):
        size = max(1, sizes[n % len(sizes)])
        yield raw[i : i + size]
        i += size
        n += 1


def make(
    raw: bytes,
    mode: str,
    headers: dict[str, str] | None = None,
    *,
    sizes: Sequence[int] = (65536,),
    seed: str = DOC_SEED,
    content_length: int | None = -1,
    max_size: int = 1 << 30,
) -> VerifiedBody:
    return VerifiedBody(
        pieces(raw, sizes),
        auth=ctx(mode, seed),
        headers=headers or {},
        content_length=len(raw) if content_length == -1 else content_length,
        max_size=max_size,
    )


async def drain(body: VerifiedBody, seen: list[bytes] | None = None) -> bytes:
    out = seen if seen is not None else []
    async for piece in body:
        assert isinstance(piece, bytes)
        out.append(piece)
    return b"".join(out)


def signed_chunked(
    data: bytes,
    sizes: Sequence[int],
    *,
    seed: str = DOC_SEED,
    trailers: Sequence[tuple[str, str]] | None = None,
    corrupt_chunk: int | None = None,
) -> bytes:
    """An independent aws-chunked signer for tests (the documented algorithm, written out again)."""

    def sign(text: str) -> str:
        return hmac.new(DOC_KEY, text.encode(), hashlib.sha256).hexdigest()

    out, prev, i, n = [], seed, 0, 0
    while True:
        chunk = data[i : i + sizes[n % len(sizes)]] if i < len(data) else b""
        sts = f"AWS4-HMAC-SHA256-PAYLOAD\n{DOC_DATE}\n{DOC_SCOPE}\n{prev}\n{EMPTY_SHA256}\n"
        prev = sign(sts + hashlib.sha256(chunk).hexdigest())
        shown = ("f" if prev[0] != "f" else "e") + prev[1:] if n == corrupt_chunk else prev
        out.append(f"{len(chunk):x};chunk-signature={shown}\r\n".encode() + chunk)
        if not chunk:
            break
        out.append(b"\r\n")
        i += len(chunk)
        n += 1
    if trailers is None:
        out.append(b"\r\n")
    else:
        canon = "".join(f"{k}:{v}\n" for k, v in trailers).encode()
        sig = sign(f"AWS4-HMAC-SHA256-TRAILER\n{DOC_DATE}\n{DOC_SCOPE}\n{prev}\n{hashlib.sha256(canon).hexdigest()}")
        out.append("".join(f"{k}:{v}\r\n" for k, v in trailers).encode())
        out.append(f"x-amz-trailer-signature:{sig}\r\n\r\n".encode())
    return b"".join(out)


def unsigned_chunked(data: bytes, alg: str | None, chunk_size: int = 8192) -> bytes:
    classes = {
        "crc32": CrtCrc32Checksum,
        "crc32c": CrtCrc32cChecksum,
        "crc64nvme": CrtCrc64NvmeChecksum,
        "sha1": Sha1Checksum,
        "sha256": Sha256Checksum,
    }
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=classes[alg] if alg else None,
        checksum_name=f"x-amz-checksum-{alg}",
        chunk_size=chunk_size,
    )
    return wrapper.read()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


# --------------------------------------------------------------------------- AWS documented bodies


@pytest.mark.parametrize("sizes", [(1,), (7, 13), (84, 2), (65536,), (1 << 20,), (3, 65621, 5)])
async def test_aws_streaming_example(sizes: Sequence[int]) -> None:
    raw = doc_body(DOC_SIGS)
    assert len(raw) == 66824  # the documented Content-Length
    body = make(raw, SIGNED, {"x-amz-decoded-content-length": "66560"}, sizes=sizes)
    assert await drain(body) == DOC_DATA
    assert body.size == 66560
    assert body.md5_hex == hashlib.md5(DOC_DATA).hexdigest()
    assert body.checksums == {}


async def test_aws_streaming_trailer_example() -> None:
    raw = doc_body(DOC_TRAILER_SIGS, DOC_TRAILER)
    headers = {"x-amz-decoded-content-length": "66560", "x-amz-trailer": "x-amz-checksum-crc32c"}
    body = make(raw, SIGNED_TRAILER, headers, seed=DOC_TRAILER_SEED, sizes=(1000,))
    assert await drain(body) == DOC_DATA
    assert body.checksums == {"crc32c": "sOO8/Q=="}


async def test_wrong_chunk_signature_after_streaming_the_chunk() -> None:
    sigs = (DOC_SIGS[0], "1" * 64, DOC_SIGS[2])
    body = make(doc_body(sigs), SIGNED, {"x-amz-decoded-content-length": "66560"})
    seen: list[bytes] = []
    with pytest.raises(SignatureDoesNotMatch):
        await drain(body, seen)
    assert b"".join(seen) == DOC_DATA  # the data was released; the error came before the end of the stream


async def test_wrong_final_chunk_signature() -> None:
    body = make(doc_body((*DOC_SIGS[:2], "2" * 64)), SIGNED, {"x-amz-decoded-content-length": "66560"})
    with pytest.raises(SignatureDoesNotMatch):
        await drain(body)


async def test_chunk_signature_chain_uses_seed() -> None:
    body = make(doc_body(DOC_SIGS), SIGNED, {"x-amz-decoded-content-length": "66560"}, seed=DOC_TRAILER_SEED)
    with pytest.raises(SignatureDoesNotMatch):
        await drain(body)


async def test_wrong_trailer_signature() -> None:
    trailer = DOC_TRAILER.replace(b"d81f82fc", b"d81f82fd")
    headers = {"x-amz-decoded-content-length": "66560", "x-amz-trailer": "x-amz-checksum-crc32c"}
    body = make(doc_body(DOC_TRAILER_SIGS, trailer), SIGNED_TRAILER, headers, seed=DOC_TRAILER_SEED)
    with pytest.raises(SignatureDoesNotMatch):
        await drain(body)


async def test_bad_signed_trailer_checksum_is_bad_digest() -> None:
    data = b"xyz" * 5000
    raw = signed_chunked(data, [4096], trailers=[("x-amz-checksum-crc32c", "AAAAAA==")])
    headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32c"}
    with pytest.raises(BadDigest, match="CRC32C"):
        await drain(make(raw, SIGNED_TRAILER, headers))


# --------------------------------------------------------------------------- botocore bodies


@pytest.mark.parametrize("alg", ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"])
async def test_botocore_unsigned_trailer(alg: str) -> None:
    data = bytes(range(256)) * 300
    raw = unsigned_chunked(data, alg)
    headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": f"x-amz-checksum-{alg}"}
    body = make(raw, UNSIGNED_TRAILER, headers, sizes=(1000, 3))
    assert await drain(body) == data
    expected = raw.rsplit(b"\r\n", 3)[-3].split(b":")[1].decode()
    assert body.checksums == {alg: expected}


async def test_botocore_unsigned_trailer_corrupted_checksum() -> None:
    data = b"hello" * 1000
    raw = unsigned_chunked(data, "crc32").replace(b"hello", b"jello", 1)
    headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"}
    with pytest.raises(BadDigest, match="CRC32"):
        await drain(make(raw, UNSIGNED_TRAILER, headers))


async def test_botocore_signed_request_end_to_end() -> None:
    """botocore signs a STREAMING-UNSIGNED-PAYLOAD-TRAILER PUT; authenticate and VerifiedBody accept it."""
    data = b"0123456789" * 20000
    raw = unsigned_chunked(data, "crc64nvme", chunk_size=65536)
    request = AWSRequest(
        method="PUT",
        url="http://127.0.0.1:9000/bucket/a%20b%2Bc",
        headers={
            "Content-Encoding": "aws-chunked",
            "X-Amz-Trailer": "x-amz-checksum-crc64nvme",
            "X-Amz-Decoded-Content-Length": str(len(data)),
            "X-Amz-Sdk-Checksum-Algorithm": "CRC64NVME",
        },
        data=raw,
    )
    request.context["checksum"] = {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc64nvme"}}
    S3SigV4Auth(Credentials("AK", "SECRET"), "s3", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()} | {"host": "127.0.0.1:9000"}
    auth = authenticate(
        method="PUT",
        path="/bucket/a b+c",
        query=[],
        headers=headers,
        lookup_secret=lambda ak: "SECRET" if ak == "AK" else None,
        now=datetime.now(UTC),
    )
    assert auth.content_sha256 == UNSIGNED_TRAILER
    body = VerifiedBody(pieces(raw, (4096,)), auth=auth, headers=headers, content_length=len(raw), max_size=1 << 30)
    assert await drain(body) == data
    assert set(body.checksums) == {"crc64nvme"}


# --------------------------------------------------------------------------- single-chunk payloads


async def test_sha256_payload() -> None:
    data = b"some object bytes" * 1000
    body = make(data, hashlib.sha256(data).hexdigest(), sizes=(777,))
    assert await drain(body) == data
    assert body.size == len(data)
    assert body.md5_hex == hashlib.md5(data).hexdigest()


async def test_sha256_payload_mismatch_raises_before_end() -> None:
    data = b"some object bytes"
    body = make(data, hashlib.sha256(b"other").hexdigest())
    seen: list[bytes] = []
    with pytest.raises(XAmzContentSHA256Mismatch):
        await drain(body, seen)
    assert b"".join(seen) == data


async def test_unsigned_payload_without_content_length() -> None:
    body = make(b"abc", "UNSIGNED-PAYLOAD", content_length=None)
    assert await drain(body) == b"abc"


async def test_empty_body() -> None:
    body = make(b"", EMPTY_SHA256)
    assert await drain(body) == b""
    assert body.md5_hex == hashlib.md5(b"").hexdigest()


async def test_plain_body_shorter_than_content_length() -> None:
    with pytest.raises(IncompleteBody):
        await drain(make(b"abc", "UNSIGNED-PAYLOAD", content_length=10))


async def test_plain_body_longer_than_content_length() -> None:
    with pytest.raises(IncompleteBody):
        await drain(make(b"abcdef", "UNSIGNED-PAYLOAD", content_length=3))


def test_declared_size_over_max_is_rejected_up_front() -> None:
    with pytest.raises(EntityTooLarge):
        make(b"abc", "UNSIGNED-PAYLOAD", max_size=2)
    with pytest.raises(EntityTooLarge):
        make(b"", SIGNED, {"x-amz-decoded-content-length": "11"}, max_size=10)


async def test_streamed_size_over_max() -> None:
    with pytest.raises(EntityTooLarge):
        await drain(make(b"abcdef", "UNSIGNED-PAYLOAD", content_length=None, max_size=5))


@pytest.mark.parametrize("value", ["UNSIGNED", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "abc", "0" * 63])
def test_unknown_content_sha256(value: str) -> None:
    with pytest.raises(InvalidArgument):
        make(b"", value)


def test_iterate_once() -> None:
    body = make(b"", "UNSIGNED-PAYLOAD")
    body.__aiter__()
    with pytest.raises(RuntimeError):
        body.__aiter__()


# --------------------------------------------------------------------------- Content-MD5 and checksums


async def test_content_md5() -> None:
    data = b"md5 me"
    good = b64(hashlib.md5(data).digest())
    assert await drain(make(data, "UNSIGNED-PAYLOAD", {"content-md5": good})) == data
    with pytest.raises(BadDigest, match="Content-MD5"):
        await drain(make(data, "UNSIGNED-PAYLOAD", {"content-md5": b64(hashlib.md5(b"x").digest())}))


@pytest.mark.parametrize("value", ["", "not base64!", b64(b"short"), b64(b"x" * 17), "AAAA" * 5 + "A"])
def test_malformed_content_md5(value: str) -> None:
    with pytest.raises(InvalidDigest):
        make(b"", "UNSIGNED-PAYLOAD", {"content-md5": value})


@pytest.mark.parametrize(
    ("alg", "digest"),
    [
        ("crc32", lambda d: __import__("zlib").crc32(d).to_bytes(4, "big")),
        ("sha1", lambda d: hashlib.sha1(d).digest()),
        ("sha256", lambda d: hashlib.sha256(d).digest()),
    ],
)
async def test_checksum_header(alg: str, digest: object) -> None:
    data = b"checksummed" * 99
    value = b64(digest(data))  # type: ignore[operator]
    body = make(data, "UNSIGNED-PAYLOAD", {f"x-amz-checksum-{alg}": value})
    assert await drain(body) == data
    assert body.checksums == {alg: value}
    wrong = b64(digest(b"other"))  # type: ignore[operator]
    with pytest.raises(BadDigest, match=alg.upper()):
        await drain(make(data, "UNSIGNED-PAYLOAD", {f"x-amz-checksum-{alg}": wrong}))


async def test_checksum_header_with_signed_chunks() -> None:
    data = b"q" * 10000
    raw = signed_chunked(data, [3000])
    crc = b64(__import__("zlib").crc32(data).to_bytes(4, "big"))
    headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-checksum-crc32": crc}
    body = make(raw, SIGNED, headers, sizes=(333,))
    assert await drain(body) == data
    assert body.checksums == {"crc32": crc}


def test_malformed_checksum_header() -> None:
    with pytest.raises(InvalidRequest):
        make(b"", "UNSIGNED-PAYLOAD", {"x-amz-checksum-crc32": "AAAAAAAA"})
    with pytest.raises(InvalidRequest):
        make(b"", "UNSIGNED-PAYLOAD", {"x-amz-checksum-sha256": "!!"})


def test_multiple_checksum_headers() -> None:
    with pytest.raises(InvalidRequest, match="single"):
        make(b"", "UNSIGNED-PAYLOAD", {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-crc32c": "AAAAAA=="})


def test_sdk_checksum_algorithm_alone_is_refused_as_s3_does() -> None:
    with pytest.raises(InvalidRequest, match="no corresponding x-amz-checksum-"):
        make(b"abc", "UNSIGNED-PAYLOAD", {"x-amz-sdk-checksum-algorithm": "CRC32C"})


async def test_sdk_checksum_algorithm_with_its_header_is_verified() -> None:
    body = make(b"", "UNSIGNED-PAYLOAD", {"x-amz-sdk-checksum-algorithm": "crc32", "x-amz-checksum-crc32": "AAAAAA=="})
    await drain(body)
    assert body.checksums == {"crc32": "AAAAAA=="}


def test_sdk_checksum_algorithm_errors() -> None:
    with pytest.raises(InvalidRequest, match=r"unsupported.*\[CRC32, CRC32C, CRC64NVME, SHA1, SHA256\]"):
        make(b"", "UNSIGNED-PAYLOAD", {"x-amz-sdk-checksum-algorithm": "MD5", "x-amz-checksum-crc32": "AAAAAA=="})
    with pytest.raises(InvalidRequest, match="Value for x-amz-sdk-checksum-algorithm header is invalid"):
        make(b"", "UNSIGNED-PAYLOAD", {"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": "AAAAAA=="})


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-amz-checksum-md4": "AAAAAA=="}, "algorithm type you specified in x-amz-checksum- header is invalid"),
        ({"x-amz-checksum-crc32": "AAAA"}, "Value for x-amz-checksum-crc32 header is invalid"),  # 3 bytes
        ({"x-amz-checksum-crc32": "AAAAAA=", "x-amz-sdk-checksum-algorithm": "CRC32"}, "crc32 header is invalid"),
        ({"x-amz-checksum-sha256": "AAAAAA=="}, "Value for x-amz-checksum-sha256 header is invalid"),  # short
        ({"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "A" * 27 + "="}, "Multiple checksum Types"),
        ({"x-amz-trailer": "x-amz-checksum-md5"}, "x-amz-trailer header is not supported"),
        ({"x-amz-trailer": "content-md5"}, "x-amz-trailer header is not supported"),
    ],
)
def test_invalid_checksum_headers_are_invalid_request(headers: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make(b"", "UNSIGNED-PAYLOAD", headers)


def test_checksum_options_are_not_algorithms() -> None:
    make(b"", "UNSIGNED-PAYLOAD", {"x-amz-checksum-mode": "ENABLED", "x-amz-checksum-type": "FULL_OBJECT"})


async def test_checksum_mismatch_is_bad_digest() -> None:
    body = make(b"abc", "UNSIGNED-PAYLOAD", {"x-amz-checksum-crc32c": "AAAAAA=="})
    with pytest.raises(BadDigest, match="The CRC32C you specified did not match the calculated checksum"):
        await drain(body)


# --------------------------------------------------------------------------- chunked framing and lengths

DATA = bytes(range(256)) * 40


def signed(raw: bytes, length: int = len(DATA), **headers: str) -> VerifiedBody:
    return make(raw, SIGNED, {"x-amz-decoded-content-length": str(length), **headers}, sizes=(1000,))


async def test_signed_chunks_of_varied_sizes() -> None:
    raw = signed_chunked(DATA, [1, 100, 8192, 3])
    body = signed(raw)
    assert await drain(body) == DATA


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda r: r.replace(b"2000;", b"20x0;", 1), InvalidRequest),
        (lambda r: r.replace(b"2000;", b";", 1), InvalidRequest),
        (lambda r: r.replace(b"2000;", b"0x2000;", 1), InvalidRequest),
        (lambda r: r.replace(b";chunk-signature=", b";chunk-signatures=", 1), InvalidRequest),
        (lambda r: r.replace(b";chunk-signature=", b"\r\n", 1), InvalidRequest),
        (lambda r: r[:8300] + r[8302:], InvalidRequest),  # the CRLF after the first chunk's data is gone
        (lambda r: r[:100], IncompleteBody),
        (lambda r: r[:-2], None),  # only the blank line after the final chunk is missing: tolerated
        (lambda r: r[:-10], IncompleteBody),
        (lambda r: r + b"extra", InvalidRequest),
        (lambda r: r + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n", InvalidRequest),
        (lambda r: b"0" * 5000 + r, InvalidRequest),  # size line longer than 4 KiB
    ],
)
async def test_framing_errors(mutate: object, error: type[Exception] | None) -> None:
    raw = mutate(signed_chunked(DATA, [0x2000]))  # type: ignore[operator]
    body = make(raw, SIGNED, {"x-amz-decoded-content-length": str(len(DATA))}, sizes=(1000,))
    if error is None:
        assert await drain(body) == DATA
    else:
        with pytest.raises(error):
            await drain(body)


async def test_chunk_larger_than_limit() -> None:
    raw = f"{payload.MAX_CHUNK_SIZE + 1:x};chunk-signature={'0' * 64}\r\n".encode()
    with pytest.raises(InvalidRequest, match="larger"):
        await drain(signed(raw, payload.MAX_CHUNK_SIZE + 1))


async def test_trailer_section_too_large() -> None:
    lines = b"".join(b"x-amz-meta-%d:%s\r\n" % (i, b"b" * 4000) for i in range(5))
    raw = b"3\r\nabc\r\n0\r\n" + lines + b"\r\n"
    with pytest.raises(InvalidRequest, match="trailer"):
        await drain(make(raw, UNSIGNED_TRAILER, {"x-amz-decoded-content-length": "3"}))


async def test_trailer_line_too_long() -> None:
    raw = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:" + b"A" * 5000 + b"\r\n\r\n"
    headers = {"x-amz-decoded-content-length": "3", "x-amz-trailer": "x-amz-checksum-crc32"}
    with pytest.raises(InvalidRequest):
        await drain(make(raw, UNSIGNED_TRAILER, headers))


async def test_decoded_length_missing() -> None:
    with pytest.raises(MissingContentLength):
        make(b"0\r\n\r\n", UNSIGNED_TRAILER)


def test_decoded_length_malformed() -> None:
    with pytest.raises(InvalidArgument):
        make(b"0\r\n\r\n", UNSIGNED_TRAILER, {"x-amz-decoded-content-length": "-1"})


async def test_decoded_length_short_and_long() -> None:
    with pytest.raises(IncompleteBody, match="shorter"):
        await drain(signed(signed_chunked(DATA, [4096]), len(DATA) + 1))
    seen: list[bytes] = []
    with pytest.raises(IncompleteBody, match="longer"):
        await drain(signed(signed_chunked(DATA, [4096]), len(DATA) - 1), seen)
    assert len(b"".join(seen)) < len(DATA)


async def test_chunked_raw_shorter_than_content_length() -> None:
    raw = signed_chunked(DATA, [4096])
    body = make(raw, SIGNED, {"x-amz-decoded-content-length": str(len(DATA))}, content_length=len(raw) + 1)
    with pytest.raises(IncompleteBody):
        await drain(body)


async def test_unsigned_chunked_accepts_missing_trailer_when_none_declared() -> None:
    raw = unsigned_chunked(DATA, None)
    body = make(raw, UNSIGNED_TRAILER, {"x-amz-decoded-content-length": str(len(DATA))})
    assert await drain(body) == DATA


async def test_tolerates_blank_line_before_trailers() -> None:
    raw = b"3\r\nabc\r\n0\r\n\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"
    headers = {"x-amz-decoded-content-length": "3", "x-amz-trailer": "x-amz-checksum-crc32"}
    body = make(raw, UNSIGNED_TRAILER, headers)
    assert await drain(body) == b"abc"
    assert body.checksums == {"crc32": "NSRBwg=="}


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b"3\r\nabc\r\n0\r\n\r\n", {"x-amz-trailer": "x-amz-checksum-crc32"}),  # declared, never sent
        (b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32c:sOO8/Q==\r\n\r\n", {"x-amz-trailer": "x-amz-checksum-crc32"}),
        (b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n", {}),  # undeclared
        (b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:!!\r\n\r\n", {"x-amz-trailer": "x-amz-checksum-crc32"}),
        (b"3\r\nabc\r\n0\r\nno colon\r\n\r\n", {"x-amz-trailer": "x-amz-checksum-crc32"}),
        (b"3\r\nabc\r\n0\r\nx-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n", {}),  # signature when unsigned
    ],
)
async def test_trailer_errors(raw: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        await drain(make(raw, UNSIGNED_TRAILER, {"x-amz-decoded-content-length": "3", **headers}))


async def test_signed_trailer_requires_trailer_signature() -> None:
    raw = signed_chunked(DATA, [4096], trailers=[])
    raw = raw[: raw.index(b"x-amz-trailer-signature")] + b"\r\n"
    with pytest.raises(InvalidRequest, match="x-amz-trailer-signature"):
        await drain(make(raw, SIGNED_TRAILER, {"x-amz-decoded-content-length": str(len(DATA))}))


def test_trailer_header_validation() -> None:
    with pytest.raises(InvalidRequest):
        make(b"", SIGNED, {"x-amz-decoded-content-length": "0", "x-amz-trailer": "x-amz-checksum-crc32"})
    with pytest.raises(InvalidRequest):
        make(b"", UNSIGNED_TRAILER, {"x-amz-decoded-content-length": "0", "x-amz-trailer": "x-amz-meta-foo"})
    with pytest.raises(InvalidRequest):
        make(b"", UNSIGNED_TRAILER, {"x-amz-decoded-content-length": "0", "x-amz-trailer": "x-amz-checksum-md5"})


# --------------------------------------------------------------------------- properties


def run(body: VerifiedBody) -> bytes:
    return asyncio.run(drain(body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=5000),
    chunk_sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=4),
    splits=st.lists(st.integers(1, 2000), min_size=1, max_size=6),
    trailer=st.booleans(),
)
def test_property_any_split_gives_identical_output(
    data: bytes, chunk_sizes: list[int], splits: list[int], trailer: bool
) -> None:
    crc = b64(__import__("zlib").crc32(data).to_bytes(4, "big"))
    if trailer:
        raw = signed_chunked(data, chunk_sizes, trailers=[("x-amz-checksum-crc32", crc)])
        headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"}
        body = make(raw, SIGNED_TRAILER, headers, sizes=splits)
    else:
        raw = signed_chunked(data, chunk_sizes)
        body = make(raw, SIGNED, {"x-amz-decoded-content-length": str(len(data))}, sizes=splits)
    assert run(body) == data
    assert body.size == len(data)
    if trailer:
        assert body.checksums == {"crc32": crc}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(min_size=1, max_size=3000),
    chunk=st.integers(1, 1500),
    position=st.integers(0, 10**6),
    action=st.sampled_from(["flip", "truncate", "insert", "delete"]),
    byte=st.integers(0, 255),
    mode=st.sampled_from([SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER]),
    splits=st.lists(st.integers(1, 700), min_size=1, max_size=3),
)
def test_property_corruption_only_raises_request_errors(
    data: bytes, chunk: int, position: int, action: str, byte: int, mode: str, splits: list[int]
) -> None:
    crc = b64(__import__("zlib").crc32(data).to_bytes(4, "big"))
    headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"}
    if mode == UNSIGNED_TRAILER:
        raw = bytearray(unsigned_chunked(data, "crc32", chunk))
    elif mode == SIGNED_TRAILER:
        raw = bytearray(signed_chunked(data, [chunk], trailers=[("x-amz-checksum-crc32", crc)]))
    else:
        raw = bytearray(signed_chunked(data, [chunk]))
        headers = {"x-amz-decoded-content-length": str(len(data)), "x-amz-checksum-crc32": crc}
    i = position % len(raw)
    if action == "flip":
        raw[i] ^= byte or 1
    elif action == "truncate":
        del raw[i:]
    elif action == "insert":
        raw.insert(i, byte)
    else:
        del raw[i]
    body = make(bytes(raw), mode, headers, sizes=splits, content_length=None)
    try:
        out = run(body)
    except RequestError:
        return
    # A corruption that goes unnoticed must not have changed the object (e.g. a hex digit's case).
    assert out == data


def test_public_api() -> None:
    assert "VerifiedBody" in payload.__all__


async def test_trailer_after_trailer_signature() -> None:
    raw = signed_chunked(b"abc", [3], trailers=[])[:-2] + b"x-amz-meta-late:1\r\n\r\n"
    with pytest.raises(InvalidRequest, match="follows"):
        await drain(make(raw, SIGNED_TRAILER, {"x-amz-decoded-content-length": "3"}))


@pytest.mark.parametrize("mode", [SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER])
async def test_empty_chunked_body_is_incomplete(mode: str) -> None:
    with pytest.raises(IncompleteBody):
        await drain(make(b"", mode, {"x-amz-decoded-content-length": "0"}))


def test_checksum_both_header_and_trailer() -> None:
    headers = {
        "x-amz-decoded-content-length": "3",
        "x-amz-trailer": "x-amz-checksum-crc32",
        "x-amz-checksum-crc32": "NSRBwg==",
    }
    with pytest.raises(InvalidRequest):
        make(b"", UNSIGNED_TRAILER, headers)


_CHECKSUM_HEADER_NAMES = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-md5",
    "x-amz-checksum-",
    "x-amz-checksum-type",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-trailer",
]


@given(
    headers=st.dictionaries(st.sampled_from(_CHECKSUM_HEADER_NAMES), st.text(max_size=60), max_size=4),
    trailing=st.booleans(),
)
def test_any_checksum_headers_parse_or_are_invalid_request(headers: dict[str, str], trailing: bool) -> None:
    from appliance.api.s3.payload import parse_checksum_headers

    try:
        expected, trailer = parse_checksum_headers(headers, trailing=trailing)
    except InvalidRequest:
        return
    assert len(expected) <= 1
    assert trailer is None or expected == {trailer: None}
