"""A streaming multipart/form-data parser for browser POST uploads; pure, no I/O besides the given byte stream.

The text fields come first and are held (bounded); the `file` field is the last one S3 reads and is handed out
as a stream, never buffered. Fields after `file` are ignored, as S3 does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from appliance.api.s3.post_policy import (
    IncorrectNumberOfFilesInPostRequest,
    MalformedPOSTRequest,
    MaxPostPreDataLengthExceeded,
)

__all__ = [
    "FilePart",
    "FormReader",
    "MAX_FIELDS",
    "MAX_FIELD_BYTES",
    "MAX_FIELDS_TOTAL_BYTES",
    "parse_boundary",
    "parse_header_params",
]

MAX_FIELD_BYTES = 20 * 1024
MAX_FIELDS_TOTAL_BYTES = 1024 * 1024
MAX_FIELDS = 1000
MAX_HEADER_LINE = 8 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_PREAMBLE = 64 * 1024
MAX_BOUNDARY = 200  # RFC 2046 allows 70; be lenient but bounded
MAX_EPILOGUE_DRAIN = 1024 * 1024  # what we read (and drop) after the file to let the client finish sending


def parse_header_params(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="a"; filename="b.txt"` → ("form-data", {"name": "a", "filename": "b.txt"}).
    Parameter names are lower-cased; quoted strings honour backslash escapes."""
    i, n = 0, len(value)
    j = value.find(";")
    main = (value if j < 0 else value[:j]).strip().lower()
    params: dict[str, str] = {}
    if j < 0:
        return main, params
    i = j + 1
    while i < n:
        while i < n and value[i] in " \t;":
            i += 1
        if i >= n:
            break
        eq = i
        while eq < n and value[eq] not in "=;":
            eq += 1
        name = value[i:eq].strip().lower()
        if eq >= n or value[eq] == ";":
            if name:
                params.setdefault(name, "")
            i = eq + 1
            continue
        i = eq + 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            i += 1
            out = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(value[i])
                i += 1
            if i >= n:
                raise MalformedPOSTRequest()  # unterminated quoted string
            i += 1
            val = "".join(out)
        else:
            end = value.find(";", i)
            end = n if end < 0 else end
            val = value[i:end].strip()
            i = end
        if name:
            params.setdefault(name, val)
    return main, params


def parse_boundary(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type; MalformedPOSTRequest if it has none."""
    main, params = parse_header_params(content_type)
    boundary = params.get("boundary", "")
    if main != "multipart/form-data" or not boundary or len(boundary) > MAX_BOUNDARY:
        raise MalformedPOSTRequest()
    try:
        raw = boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MalformedPOSTRequest() from None
    if b"\r" in raw or b"\n" in raw:
        raise MalformedPOSTRequest()
    return raw


@dataclass(frozen=True, slots=True)
class FilePart:
    """The `file` part's headers: what the browser said about the file."""

    filename: str
    content_type: str


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class FormReader:
    """Reads one multipart/form-data body: `read_fields()` first, then iterate `file_stream()` once."""

    def __init__(self, source: AsyncIterator[bytes], boundary: bytes) -> None:
        self._source = aiter(source)
        # Every delimiter is CRLF "--" boundary; a leading CRLF lets the first one (which has none) match too.
        self._delimiter = b"\r\n--" + boundary
        self._buf = bytearray(b"\r\n")
        self._eof = False
        self._file_started = False

    async def _fill(self) -> bool:
        """Read one more piece into the buffer; False at the end of the body."""
        if self._eof:
            return False
        while True:
            try:
                piece = await anext(self._source)
            except StopAsyncIteration:
                self._eof = True
                return False
            if piece:
                self._buf += piece
                return True

    async def _find(self, needle: bytes, start: int, limit: int) -> int:
        """Index of `needle` in the buffer at or after `start`, reading as needed; MaxPostPreDataLengthExceeded
        if it is not within `limit` bytes, MalformedPOSTRequest if the body ends first."""
        while True:
            at = self._buf.find(needle, start)
            if at >= 0:
                if at - start > limit:
                    raise MaxPostPreDataLengthExceeded()
                return at
            if len(self._buf) - start > limit + len(needle):
                raise MaxPostPreDataLengthExceeded()
            if not await self._fill():
                raise MalformedPOSTRequest()

    async def _need(self, count: int) -> None:
        while len(self._buf) < count:
            if not await self._fill():
                raise MalformedPOSTRequest()

    async def _after_delimiter(self) -> bool:
        """The buffer starts just after a delimiter: True if a part follows, False for the close delimiter."""
        await self._need(2)
        if self._buf[:2] == b"--":
            return False
        # Transport padding (spaces/tabs) may precede the CRLF.
        at = await self._find(b"\r\n", 0, 256)
        if self._buf[:at].strip(b" \t"):
            raise MalformedPOSTRequest()
        del self._buf[: at + 2]
        return True

    async def _part_headers(self) -> dict[str, str]:
        await self._need(2)
        end = await self._find(b"\r\n\r\n", 0, MAX_PART_HEADER_BYTES) if self._buf[:2] != b"\r\n" else -2
        block = bytes(self._buf[: max(end, 0)])
        del self._buf[: end + 4]
        headers: dict[str, str] = {}
        for line in block.split(b"\r\n") if block else []:
            if len(line) > MAX_HEADER_LINE:
                raise MaxPostPreDataLengthExceeded()
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise MalformedPOSTRequest()
            headers.setdefault(_text(name).lower(), _text(value.strip()))
        return headers

    async def read_fields(self) -> tuple[list[tuple[str, str]], FilePart]:
        """The text fields before `file`, in order (names as sent), and the file part's headers.
        MalformedPOSTRequest for a body that is not well-formed or has no `file` field."""
        at = await self._find(self._delimiter, 0, MAX_PREAMBLE)
        del self._buf[: at + len(self._delimiter)]
        fields: list[tuple[str, str]] = []
        total = 0
        while True:
            if not await self._after_delimiter():
                raise IncorrectNumberOfFilesInPostRequest()
            headers = await self._part_headers()
            disposition, params = parse_header_params(headers.get("content-disposition", ""))
            if disposition != "form-data" or "name" not in params:
                raise MalformedPOSTRequest()
            name = params["name"]
            if name.lower() == "file":
                self._file_started = True
                return fields, FilePart(params.get("filename", ""), headers.get("content-type", ""))
            if len(fields) >= MAX_FIELDS:
                raise MaxPostPreDataLengthExceeded()
            end = await self._find(self._delimiter, 0, MAX_FIELD_BYTES)
            total += end + len(name)
            if total > MAX_FIELDS_TOTAL_BYTES:
                raise MaxPostPreDataLengthExceeded()
            fields.append((name, _text(bytes(self._buf[:end]))))
            del self._buf[: end + len(self._delimiter)]

    async def file_stream(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive. Raises MalformedPOSTRequest before ending if the body stops before
        the delimiter that closes the file; what follows that delimiter is read (bounded) and ignored."""
        if not self._file_started:
            raise MalformedPOSTRequest()
        keep = len(self._delimiter) - 1
        while True:
            at = self._buf.find(self._delimiter)
            if at >= 0:
                if at:
                    yield bytes(self._buf[:at])
                del self._buf[: at + len(self._delimiter)]
                break
            if len(self._buf) > keep:
                cut = len(self._buf) - keep
                piece = bytes(self._buf[:cut])
                del self._buf[:cut]
                yield piece
            if not await self._fill():
                raise MalformedPOSTRequest()
        await self._drain()

    async def _drain(self) -> None:
        """Let the client finish sending the fields after the file (ignored), up to a bound."""
        seen = len(self._buf)
        self._buf.clear()
        while seen <= MAX_EPILOGUE_DRAIN and await self._fill():
            seen += len(self._buf)
            self._buf.clear()
