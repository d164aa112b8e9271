"""Streaming request-body verification: x-amz-content-sha256, aws-chunked decoding, chunk and trailer signatures,
Content-MD5 and x-amz-checksum-*; every failure is raised before the stream signals its end."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import AsyncIterator, Mapping

from appliance.api.s3.sigv4 import (
    EMPTY_SHA256,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    UNSIGNED_PAYLOAD,
    AuthContext,
    sign_string,
)
from appliance.checksums import ALGORITHMS, Checksum, new_checksum
from appliance.errors import (
    BadDigest,
    EntityTooLarge,
    IncompleteBody,
    InvalidArgument,
    InvalidDigest,
    InvalidRequest,
    MissingContentLength,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)

__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_LINE",
    "MAX_TRAILER_SECTION",
    "VerifiedBody",
    "parse_checksum_algorithm",
    "parse_checksum_headers",
]

MAX_LINE = 4096  # one chunk-size line or trailer line
MAX_TRAILER_SECTION = 16 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024

_DIGEST_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
_CHUNKED_MODES = frozenset({STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER})
_SIGNED_MODES = frozenset({STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER})
_TRAILER_MODES = frozenset({STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER})


def _malformed(detail: str) -> InvalidRequest:
    return InvalidRequest(f"The aws-chunked request body is malformed: {detail}.")


class _Reader:
    """A pull buffer over the source: bounded line reads and zero-copy data reads, counting raw bytes."""

    __slots__ = ("_buf", "_pos", "_source", "content_length", "raw")

    def __init__(self, source: AsyncIterator[bytes], content_length: int | None) -> None:
        self._source = source
        self._buf = b""
        self._pos = 0
        self.raw = 0
        self.content_length = content_length

    async def _fill(self) -> bool:
        """Append the next source piece to the unread bytes; False when the source has ended."""
        try:
            piece = await self._source.__anext__()
        except StopAsyncIteration:
            if self.content_length is not None and self.raw < self.content_length:
                raise IncompleteBody() from None
            return False
        self.raw += len(piece)
        if self.content_length is not None and self.raw > self.content_length:
            raise IncompleteBody("The request body is longer than its Content-Length.")
        self._buf = self._buf[self._pos :] + piece if self._pos < len(self._buf) else bytes(piece)
        self._pos = 0
        return True

    async def line(self, what: str) -> bytes | None:
        """The next CRLF-terminated line without its CRLF; None if the source ends cleanly before it."""
        scan = self._pos
        while True:
            end = self._buf.find(b"\r\n", scan, self._pos + MAX_LINE + 2)
            if end >= 0:
                line = self._buf[self._pos : end]
                self._pos = end + 2
                return line
            pending = len(self._buf) - self._pos
            if pending > MAX_LINE + 1:
                raise _malformed(f"{what} is longer than {MAX_LINE} bytes")
            if not await self._fill():
                if pending == 0:
                    return None
                raise IncompleteBody(f"The request body ended inside a {what}.")
            scan = max(pending - 1, 0)  # the CR may already be buffered

    async def read(self, limit: int) -> bytes:
        """Between 1 and `limit` bytes of data; IncompleteBody if the source ends first."""
        while self._pos >= len(self._buf):
            if not await self._fill():
                raise IncompleteBody("The request body ended inside a chunk.")
        if self._pos == 0 and limit >= len(self._buf):
            out, self._buf = self._buf, b""
            return out
        end = min(self._pos + limit, len(self._buf))
        out = self._buf[self._pos : end]
        self._pos = end
        return out

    async def expect_more(self) -> bool:
        """Whether unread bytes remain, pulling from the source if the buffer is empty."""
        while self._pos >= len(self._buf):
            if not await self._fill():
                return False
        return True

    async def expect_end(self) -> None:
        """Drain the source, which must hold nothing more."""
        if await self.expect_more():
            raise _malformed("data follows the final chunk")


def _b64_digest(value: str, size: int) -> bytes | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def _parse_chunk_header(line: bytes, signed: bool) -> tuple[int, bytes]:
    size_text, _, extension = line.partition(b";")
    if not _CHUNK_SIZE.fullmatch(size_text):
        raise _malformed("a chunk size is not hexadecimal")
    size = int(size_text, 16)
    if size > MAX_CHUNK_SIZE:
        raise _malformed(f"a chunk is larger than {MAX_CHUNK_SIZE} bytes")
    if not signed:
        return size, b""
    name, _, signature = extension.partition(b"=")
    if name != b"chunk-signature" or not _SIGNATURE.fullmatch(signature):
        raise _malformed("a chunk has no valid chunk-signature")
    return size, signature


_UNSUPPORTED_ALGORITHM = (
    "Checksum algorithm provided is unsupported. Please try again with any of the valid types: "
    "[" + ", ".join(alg.upper() for alg in ALGORITHMS) + "]"
)
# x-amz-checksum-* headers that name no algorithm.
_CHECKSUM_OPTIONS = frozenset({"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"})


def parse_checksum_algorithm(value: str) -> str:
    """A checksum algorithm header value (x-amz-sdk-checksum-algorithm, x-amz-checksum-algorithm) as a lower-case
    name from ALGORITHMS; InvalidRequest with S3's message for any other."""
    alg = value.strip().lower()
    if alg not in ALGORITHMS:
        raise InvalidRequest(_UNSUPPORTED_ALGORITHM)
    return alg


def parse_checksum_headers(headers: Mapping[str, str], *, trailing: bool) -> tuple[dict[str, str | None], str | None]:
    """The checksum a request declares, checked as S3 checks it: {algorithm: base64 value, or None when it comes in
    the trailer} (at most one entry) and the trailer's algorithm. `trailing`: the body is a STREAMING-…-TRAILER one.
    Raises InvalidRequest with S3's messages: an unknown x-amz-checksum-* name, two checksums, a value that is not
    base64 of the algorithm's length, an unsupported or contradicting x-amz-sdk-checksum-algorithm or trailer."""
    expected: dict[str, str | None] = {}
    for name, value in headers.items():
        if not name.startswith("x-amz-checksum-") or name in _CHECKSUM_OPTIONS:
            continue
        alg = name.removeprefix("x-amz-checksum-")
        if alg not in ALGORITHMS:
            raise InvalidRequest("The algorithm type you specified in x-amz-checksum- header is invalid.")
        expected[alg] = value
    if len(expected) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
    trailer: str | None = None
    declared = headers.get("x-amz-trailer")
    if declared is not None:
        name = declared.strip().lower()
        alg = name.removeprefix("x-amz-checksum-")
        if alg == name or alg not in ALGORITHMS:
            raise InvalidRequest("The value specified in the x-amz-trailer header is not supported")
        if not trailing:
            raise InvalidRequest("x-amz-trailer requires a STREAMING-…-TRAILER x-amz-content-sha256.")
        if expected:
            raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
        trailer = alg
        expected[alg] = None
    sdk = headers.get("x-amz-sdk-checksum-algorithm")
    if sdk is not None:
        alg = parse_checksum_algorithm(sdk)
        if not expected:
            raise InvalidRequest(
                "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer "
                "headers were found."
            )
        if alg not in expected:
            raise InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
    for declared_alg, wanted in expected.items():
        if wanted is not None:
            if _b64_digest(wanted, _DIGEST_SIZES[declared_alg]) is None:
                raise InvalidRequest(f"Value for x-amz-checksum-{declared_alg} header is invalid.")
            expected[declared_alg] = wanted.strip()
    return expected, trailer


class VerifiedBody:
    """Async iterator of the decoded object bytes, verified while streaming.

    Header problems raise from the constructor. A failed check raises the domain error from the iterator
    BEFORE it signals end-of-stream, so a consumer streaming into IPFS sees the error, not a clean end. Chunk
    data is released before its chunk signature is checked (at the chunk's end). After full iteration: `size`
    (decoded bytes), `md5_hex`, and `checksums` (algorithm -> base64 for every declared, verified checksum).
    """

    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        auth: AuthContext,
        headers: Mapping[str, str],
        content_length: int | None,
        max_size: int,
    ) -> None:
        self.size = 0
        self.md5_hex = ""
        self.checksums: dict[str, str] = {}
        self._source = source
        self._auth = auth
        self._content_length = content_length
        self._max_size = max_size
        self._mode = auth.content_sha256
        if (
            self._mode not in _CHUNKED_MODES
            and self._mode != UNSIGNED_PAYLOAD
            and not _SHA256_HEX.fullmatch(self._mode)
        ):
            raise InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a sha256 value.")
        self._md5_expected = self._parse_md5(headers)
        self._expected, self._trailer = self._parse_checksums(headers)
        self._running: dict[str, Checksum] = {alg: new_checksum(alg) for alg in self._expected}
        self._decoded_length: int | None = None
        if self._mode in _CHUNKED_MODES:
            text = headers.get("x-amz-decoded-content-length")
            if text is None:
                raise MissingContentLength("You must provide the x-amz-decoded-content-length header.")
            text = text.strip()
            if not text.isascii() or not text.isdigit() or len(text) > 19:
                raise InvalidArgument("x-amz-decoded-content-length must be a non-negative integer.")
            declared: int | None = int(text)
            self._decoded_length = declared
        else:
            declared = content_length
        if declared is not None and declared > max_size:
            raise EntityTooLarge()
        self._started = False

    @staticmethod
    def _parse_md5(headers: Mapping[str, str]) -> bytes | None:
        value = headers.get("content-md5")
        if value is None:
            return None
        digest = _b64_digest(value, 16)
        if digest is None:
            raise InvalidDigest("The Content-MD5 you specified is not valid.")
        return digest

    def _parse_checksums(self, headers: Mapping[str, str]) -> tuple[dict[str, str | None], str | None]:
        """Algorithm -> expected base64 (None: arrives in the trailer), and the trailer alg."""
        expected, trailer = parse_checksum_headers(headers, trailing=self._mode in _TRAILER_MODES)
        return dict(expected), trailer

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a VerifiedBody can be iterated only once")
        self._started = True
        return self._run()

    def _count(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._max_size:
            raise EntityTooLarge()
        if self._decoded_length is not None and self.size > self._decoded_length:
            # Fail as soon as the declared length is exceeded; IncompleteBody (400) is the error S3 gives a body
            # that does not match its declared length, and it keeps the short and long cases under one code.
            raise IncompleteBody("The decoded body is longer than x-amz-decoded-content-length.")

    async def _run(self) -> AsyncIterator[bytes]:
        md5 = hashlib.md5(usedforsecurity=False)
        running = tuple(self._running.values())
        trailers: dict[str, str] = {}
        body = self._chunked(trailers) if self._decoded_length is not None else self._plain()
        async for piece in body:
            md5.update(piece)
            for checksum in running:
                checksum.update(piece)
            yield piece
        if self._md5_expected is not None and not hmac.compare_digest(md5.digest(), self._md5_expected):
            raise BadDigest("The Content-MD5 you specified did not match what we received.")
        results = {alg: checksum.b64digest() for alg, checksum in self._running.items()}
        for alg, value in self._expected.items():
            wanted = trailers.get(alg) if alg == self._trailer else value
            if wanted is not None and wanted != results[alg]:
                raise BadDigest(f"The {alg.upper()} you specified did not match the calculated checksum.")
        self.md5_hex = md5.hexdigest()
        self.checksums = results

    async def _plain(self) -> AsyncIterator[bytes]:
        reader = _Reader(self._source, self._content_length)
        sha = hashlib.sha256() if self._mode != UNSIGNED_PAYLOAD else None
        while await reader.expect_more():
            piece = await reader.read(1 << 62)
            self._count(piece)
            if sha is not None:
                sha.update(piece)
            yield piece
        if sha is not None and sha.hexdigest() != self._mode.lower():
            raise XAmzContentSHA256Mismatch()

    async def _chunked(self, trailers: dict[str, str]) -> AsyncIterator[bytes]:
        auth = self._auth
        reader = _Reader(self._source, self._content_length)
        signed = self._mode in _SIGNED_MODES
        previous = auth.seed_signature
        prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{auth.amz_date}\n{auth.scope}\n"
        while True:
            line = await reader.line("chunk header")
            if line is None:
                raise IncompleteBody("The request body ended before its final chunk.")
            size, signature = _parse_chunk_header(line, signed)
            chunk_hash = hashlib.sha256()
            remaining = size
            while remaining:
                piece = await reader.read(remaining)
                remaining -= len(piece)
                self._count(piece)
                if signed:
                    chunk_hash.update(piece)
                yield piece
            if signed:
                string = f"{prefix}{previous}\n{EMPTY_SHA256}\n{chunk_hash.hexdigest()}"
                if not hmac.compare_digest(sign_string(auth.signing_key, string).encode("ascii"), signature):
                    raise SignatureDoesNotMatch("The chunk signature does not match.")
                previous = signature.decode("ascii")
            if size == 0:
                break
            if await reader.line("chunk data terminator") != b"":
                raise _malformed("chunk data is not followed by CRLF")
        if self.size != self._decoded_length:
            raise IncompleteBody("The decoded body is shorter than x-amz-decoded-content-length.")
        trailers.update(await self._read_trailers(reader, previous))
        await reader.expect_end()

    async def _read_trailers(self, reader: _Reader, previous: str) -> dict[str, str]:
        lines: list[tuple[str, str]] = []
        signature: str | None = None
        total = 0
        while True:
            line = await reader.line("trailer line")
            if line is None:
                break  # tolerated: the source ended without the blank line closing the trailer section
            if not line:
                if not lines and signature is None and self._mode in _TRAILER_MODES and await reader.expect_more():
                    continue  # tolerated: a CRLF between the final chunk and the trailer section
                break
            total += len(line) + 2
            if total > MAX_TRAILER_SECTION:
                raise _malformed(f"the trailer section is longer than {MAX_TRAILER_SECTION} bytes")
            name, sep, value = line.partition(b":")
            if not sep or not line.isascii():
                raise _malformed("a trailer line is not 'name:value'")
            key, text = name.decode("ascii").strip().lower(), value.decode("ascii").strip()
            if signature is not None:
                raise _malformed("a trailer follows x-amz-trailer-signature")
            if key == "x-amz-trailer-signature":
                signature = text
            else:
                lines.append((key, text))
        if self._mode == STREAMING_PAYLOAD_TRAILER:
            if signature is None or not _SIGNATURE.fullmatch(signature.encode("ascii")):
                raise _malformed("the trailer section has no valid x-amz-trailer-signature")
            canonical = "".join(f"{k}:{v}\n" for k, v in lines).encode("ascii")
            string = (
                f"AWS4-HMAC-SHA256-TRAILER\n{self._auth.amz_date}\n{self._auth.scope}\n{previous}\n"
                f"{hashlib.sha256(canonical).hexdigest()}"
            )
            expected = sign_string(self._auth.signing_key, string)
            if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
                raise SignatureDoesNotMatch("The trailer signature does not match.")
        elif signature is not None:
            raise _malformed("x-amz-trailer-signature in an unsigned body")
        found: dict[str, str] = {}
        trailer = self._trailer
        for key, text in lines:
            if trailer is None or key != f"x-amz-checksum-{trailer}" or trailer in found:
                raise InvalidRequest(f"The trailer {key[:64]!r} was not declared in x-amz-trailer.")
            if _b64_digest(text, _DIGEST_SIZES[trailer]) is None:
                raise InvalidRequest(f"Value for {key} trailing header is invalid.")
            found[trailer] = text
        if trailer is not None and trailer not in found:
            raise InvalidRequest(f"The declared trailer x-amz-checksum-{trailer} was not received.")
        return found
