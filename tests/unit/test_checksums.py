"""Checksum algorithms: known check values, agreement with botocore, incremental updates."""

from __future__ import annotations

import base64

import pytest
from botocore.httpchecksum import (
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    Sha1Checksum,
    Sha256Checksum,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import checksums
from appliance.checksums import ALGORITHMS, new_checksum
from appliance.errors import InvalidArgument

BOTOCORE = {
    "crc32": Crc32Checksum,
    "crc32c": CrtCrc32cChecksum,
    "crc64nvme": CrtCrc64NvmeChecksum,
    "sha1": Sha1Checksum,
    "sha256": Sha256Checksum,
}

# The standard "check" values: each algorithm over b"123456789".
CHECK = {
    "crc32": (0xCBF43926).to_bytes(4, "big"),
    "crc32c": (0xE3069283).to_bytes(4, "big"),
    "crc64nvme": (0xAE8B14860A799888).to_bytes(8, "big"),
    "sha1": bytes.fromhex("f7c3bc1d808e04732adf679965ccc34ca7ae3441"),
    "sha256": bytes.fromhex("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"),
}


def test_algorithms() -> None:
    assert ALGORITHMS == ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
    assert set(checksums.__all__) == {
        "ALGORITHMS",
        "FULL_OBJECT_ALGORITHMS",
        "Checksum",
        "composite",
        "crc_combine",
        "full_object",
        "new_checksum",
    }


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_check_values(alg: str) -> None:
    c = new_checksum(alg)
    c.update(b"123456789")
    assert base64.b64decode(c.b64digest()) == CHECK[alg]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_empty_input(alg: str) -> None:
    expected = BOTOCORE[alg]()
    assert new_checksum(alg).b64digest() == expected.b64digest()


def test_aws_documented_crc32c() -> None:
    c = new_checksum("crc32c")
    c.update(b"a" * 66560)
    assert c.b64digest() == "sOO8/Q=="  # the trailer value in the sigv4-streaming-trailers example


@pytest.mark.parametrize("alg", ALGORITHMS)
@given(parts=st.lists(st.binary(max_size=300), max_size=6))
def test_incremental_matches_botocore(alg: str, parts: list[bytes]) -> None:
    ours, theirs = new_checksum(alg), BOTOCORE[alg]()
    for part in parts:
        ours.update(part)
        theirs.update(part)
    assert ours.b64digest() == theirs.b64digest()


@pytest.mark.parametrize("name", ["md5", "CRC32", "", "xxhash64", "crc32\x00"])
def test_unknown_algorithm(name: str) -> None:
    with pytest.raises(InvalidArgument):
        new_checksum(name)


def test_composite_checksum() -> None:
    parts = [b"hello ", b"world"]
    values = []
    for part in parts:
        running = new_checksum("sha256")
        running.update(part)
        values.append(running.b64digest())
    expected = new_checksum("sha256")
    for value in values:
        expected.update(base64.b64decode(value))
    assert checksums.composite("sha256", values) == expected.b64digest() + "-2"


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme"])
@given(parts=st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
def test_full_object_crc_equals_the_crc_of_the_whole(algorithm: str, parts: list[bytes]) -> None:
    values = []
    for part in parts:
        running = new_checksum(algorithm)
        running.update(part)
        values.append((running.b64digest(), len(part)))
    whole = new_checksum(algorithm)
    whole.update(b"".join(parts))
    assert checksums.full_object(algorithm, values) == whole.b64digest()


# The hand-written GF(2) combine the product used before awscrt's (zlib's crc32_combine for any reflected CRC with
# all-ones init and final xor), kept here as an independent reference for the cross-check below.
_REFERENCE_PARAMS = {"crc32": (0xEDB88320, 32), "crc32c": (0x82F63B78, 32), "crc64nvme": (0x9A6C9329AC4BC9B5, 64)}


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, index = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[index]
        vector >>= 1
        index += 1
    return total


def _reference_combine(algorithm: str, first: int, second: int, length: int) -> int:
    poly, width = _REFERENCE_PARAMS[algorithm]
    if length == 0:
        return first
    odd = [poly] + [1 << n for n in range(width - 1)]
    even = [_gf2_times(odd, row) for row in odd]
    odd = [_gf2_times(even, row) for row in even]
    while True:
        even = [_gf2_times(odd, row) for row in odd]
        if length & 1:
            first = _gf2_times(even, first)
        length >>= 1
        if not length:
            break
        odd = [_gf2_times(even, row) for row in even]
        if length & 1:
            first = _gf2_times(odd, first)
        length >>= 1
        if not length:
            break
    return first ^ second


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme"])
@settings(deadline=None, max_examples=50)  # the pure-Python reference is slow on a loaded machine
@given(data=st.data())
def test_crc_combine_agrees_with_the_reference(algorithm: str, data: st.DataObject) -> None:
    width = _REFERENCE_PARAMS[algorithm][1]
    first = data.draw(st.integers(0, 2**width - 1))
    second = data.draw(st.integers(0, 2**width - 1))
    # Up to 5 TiB: S3's largest object, so the largest part a FULL_OBJECT combine can meet.
    length = data.draw(st.integers(0, 5 * 2**40))
    assert checksums.crc_combine(algorithm, first, second, length) == _reference_combine(
        algorithm, first, second, length
    )


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme"])
@pytest.mark.parametrize("split", [0, 1, 4, 8, 9])
def test_crc_combine_of_a_split_check_string_gives_the_check_value(algorithm: str, split: int) -> None:
    head, tail = new_checksum(algorithm), new_checksum(algorithm)
    head.update(b"123456789"[:split])
    tail.update(b"123456789"[split:])
    first, second = (int.from_bytes(base64.b64decode(c.b64digest()), "big") for c in (head, tail))
    combined = checksums.crc_combine(algorithm, first, second, 9 - split)
    assert combined.to_bytes(len(CHECK[algorithm]), "big") == CHECK[algorithm]
