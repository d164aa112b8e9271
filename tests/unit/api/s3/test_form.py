"""The streaming multipart/form-data parser: chunk-split invariance, bounds, hostile bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.api.s3 import form
from appliance.api.s3.form import FilePart, FormReader, parse_boundary, parse_header_params
from appliance.api.s3.post_policy import (
    IncorrectNumberOfFilesInPostRequest,
    MalformedPOSTRequest,
    MaxPostPreDataLengthExceeded,
)
from appliance.errors import RequestError

BOUNDARY = b"----WebKitFormBoundaryx7Q2"


def build(
    fields: Sequence[tuple[str, bytes]],
    file: bytes | None,
    *,
    boundary: bytes = BOUNDARY,
    filename: str = "a.txt",
    after: Sequence[tuple[str, bytes]] = (),
    preamble: bytes = b"",
) -> bytes:
    out = [preamble]
    for name, value in fields:
        out.append(b"--" + boundary + b"\r\n")
        out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(value + b"\r\n")
    if file is not None:
        out.append(b"--" + boundary + b"\r\n")
        out.append(f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode())
        out.append(b"Content-Type: text/plain\r\n\r\n")
        out.append(file + b"\r\n")
    for name, value in after:
        out.append(b"--" + boundary + b"\r\n")
        out.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.append(value + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


async def chunks(pieces: Sequence[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(data[last:p])
        last = p
    out.append(data[last:])
    return out


async def parse(pieces: Sequence[bytes], boundary: bytes = BOUNDARY) -> tuple[list[tuple[str, str]], FilePart, bytes]:
    reader = FormReader(chunks(pieces), boundary)
    fields, part = await reader.read_fields()
    data = b"".join([piece async for piece in reader.file_stream()])
    return fields, part, data


async def test_simple_form() -> None:
    body = build([("key", b"a/${filename}"), ("X-Amz-Meta-Color", b"blue")], b"hello\r\nworld", filename="f.bin")
    fields, part, data = await parse([body])
    assert fields == [("key", "a/${filename}"), ("X-Amz-Meta-Color", "blue")]
    assert part == FilePart("f.bin", "text/plain")
    assert data == b"hello\r\nworld"


async def test_fields_after_file_are_ignored_and_preamble_skipped() -> None:
    body = build([("key", b"k")], b"data", after=[("late", b"x" * 100)], preamble=b"ignored preamble\r\n")
    fields, _, data = await parse([body])
    assert fields == [("key", "k")]
    assert data == b"data"


async def test_empty_file_and_empty_field() -> None:
    fields, part, data = await parse([build([("key", b"")], b"", filename="")])
    assert fields == [("key", "")]
    assert part.filename == ""
    assert data == b""


async def test_file_containing_boundary_like_bytes() -> None:
    tricky = b"--" + BOUNDARY[:-1] + b"\r\n--" + BOUNDARY[:5] + b"\r\n\r\n--"
    _, _, data = await parse([build([], tricky)])
    assert data == tricky


field_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=12).filter(lambda n: n != "file")
field_values = st.binary(max_size=64).filter(lambda v: b"\r\n--" not in v)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    fields=st.lists(st.tuples(field_names, field_values), max_size=5),
    file=st.binary(max_size=300),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
async def test_any_chunk_split_parses_the_same(fields: list[tuple[str, bytes]], file: bytes, cuts: list[int]) -> None:
    if b"\r\n--" + BOUNDARY in b"\r\n" + file:
        return
    body = build(fields, file)
    whole = await parse([body])
    assert whole[0] == [(n, v.decode("utf-8", "surrogateescape")) for n, v in fields]
    assert whole[2] == file
    assert await parse(split(body, cuts)) == whole
    # One byte at a time too.
    assert await parse([body[i : i + 1] for i in range(len(body))]) == whole


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('Multipart/Form-Data; charset=utf-8; boundary="a b;c"', b"a b;c"),
    ],
)
def test_parse_boundary(content_type: str, expected: bytes) -> None:
    assert parse_boundary(content_type) == expected


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "text/plain; boundary=x",
        "multipart/form-data; boundary=é",
        "multipart/form-data; boundary=" + "x" * 300,
        'multipart/form-data; boundary="abc',
    ],
)
def test_no_boundary_is_malformed(content_type: str) -> None:
    with pytest.raises(MalformedPOSTRequest):
        parse_boundary(content_type)


def test_header_params() -> None:
    assert parse_header_params('form-data; name="a\\"b"; filename="c;d.txt"; flag') == (
        "form-data",
        {"name": 'a"b', "filename": "c;d.txt", "flag": ""},
    )


async def test_missing_file() -> None:
    with pytest.raises(IncorrectNumberOfFilesInPostRequest):
        await parse([build([("key", b"k")], None)])


@pytest.mark.parametrize("cut", [1, 10, 40, 80, -30, -10, -3])
async def test_truncated_body(cut: int) -> None:
    body = build([("key", b"k")], b"0123456789" * 3)
    # The file's closing delimiter lies within the last 40 bytes: any cut before it is an error.
    with pytest.raises(MalformedPOSTRequest):
        await parse([body[:cut] if cut > 0 else body[: len(body) + cut - len(BOUNDARY)]])


async def test_truncation_raises_before_the_file_stream_ends() -> None:
    body = build([], b"x" * 1000)[:-200]
    reader = FormReader(chunks([body]), BOUNDARY)
    await reader.read_fields()
    got = []
    with pytest.raises(MalformedPOSTRequest):
        async for piece in reader.file_stream():
            got.append(piece)
    assert sum(map(len, got)) < 1000


async def test_wrong_boundary() -> None:
    with pytest.raises(RequestError):
        await parse([build([("key", b"k")], b"x")], boundary=b"other")


async def test_part_without_name_or_disposition() -> None:
    body = b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nv\r\n--" + BOUNDARY + b"--\r\n"
    with pytest.raises(MalformedPOSTRequest):
        await parse([body])
    body = b"--" + BOUNDARY + b"\r\nContent-Disposition: attachment\r\n\r\nv\r\n--" + BOUNDARY + b"--\r\n"
    with pytest.raises(MalformedPOSTRequest):
        await parse([body])


async def test_header_without_colon() -> None:
    body = b"--" + BOUNDARY + b'\r\nContent-Disposition form-data; name="a"\r\n\r\nv\r\n--' + BOUNDARY + b"--\r\n"
    with pytest.raises(MalformedPOSTRequest):
        await parse([body])


async def test_header_line_too_long() -> None:
    long_header = b"X-Long: " + b"a" * (form.MAX_PART_HEADER_BYTES + 10)
    body = b"--" + BOUNDARY + b"\r\n" + long_header + b"\r\n" + build([("key", b"k")], b"x")
    with pytest.raises(MaxPostPreDataLengthExceeded):
        await parse([body])
    line = b"X-Long: " + b"a" * (form.MAX_HEADER_LINE + 10)
    body = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="a"\r\n' + line + b"\r\n\r\nv\r\n"
    with pytest.raises(MaxPostPreDataLengthExceeded):
        await parse([body + build([], b"x")])


async def test_endless_header_without_terminator_is_bounded() -> None:
    async def endless() -> AsyncIterator[bytes]:
        yield b"--" + BOUNDARY + b"\r\n"
        while True:
            yield b"a" * 4096

    with pytest.raises(MaxPostPreDataLengthExceeded):
        await FormReader(endless(), BOUNDARY).read_fields()


async def test_field_too_large() -> None:
    with pytest.raises(MaxPostPreDataLengthExceeded):
        await parse([build([("big", b"v" * (form.MAX_FIELD_BYTES + 1))], b"x")])
    fields, _, _ = await parse([build([("big", b"v" * form.MAX_FIELD_BYTES)], b"x")])
    assert len(fields[0][1]) == form.MAX_FIELD_BYTES


async def test_too_many_fields_and_total_size() -> None:
    with pytest.raises(MaxPostPreDataLengthExceeded):
        await parse([build([(f"f{i}", b"") for i in range(form.MAX_FIELDS + 1)], b"x")])
    many = [(f"f{i}", b"v" * 20_000) for i in range(60)]
    with pytest.raises(MaxPostPreDataLengthExceeded):
        await parse([build(many, b"x")])


async def test_endless_preamble_is_bounded() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"z" * 4096

    with pytest.raises(MaxPostPreDataLengthExceeded):
        await FormReader(endless(), BOUNDARY).read_fields()


async def test_garbage_after_delimiter() -> None:
    body = b"--" + BOUNDARY + b"junk\r\n" + build([], b"x")
    with pytest.raises(MalformedPOSTRequest):
        await parse([body])


async def test_file_stream_before_fields_is_an_error() -> None:
    reader = FormReader(chunks([build([], b"x")]), BOUNDARY)
    with pytest.raises(MalformedPOSTRequest):
        async for _ in reader.file_stream():
            pass


async def test_large_file_is_streamed_in_pieces() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    body = build([("key", b"k")], payload)
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    reader = FormReader(chunks(pieces), BOUNDARY)
    await reader.read_fields()
    sizes = [len(p) async for p in reader.file_stream()]
    assert sum(sizes) == len(payload)
    assert max(sizes) <= 65536 + 64  # never the whole file at once
