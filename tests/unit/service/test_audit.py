"""The audit chain and its files: records chain, rotation by size and time keeps the chain across files, retention
is told apart from deletion, and verify finds truncation, edits, deleted, swapped and inserted lines."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from appliance.service.audit import Auditor, AuditRecord, canonical, verify_lines
from appliance.service.audit_log import AuditLog, AuditSettings, audit_files, records, verify_dir
from appliance.service.journal import JournalSink, encode_fields, under_systemd


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def rec(i: int, **kw: object) -> AuditRecord:
    fields: dict[str, object] = {
        "time": 1_800_000_000.0 + i,
        "api": "s3",
        "action": "PutObject",
        "status": 200,
        "user": "root",
        "access_key": "AK",
        "resource": f"b/k{i}",
        "bytes": i,
    }
    fields.update(kw)
    return AuditRecord(**fields)  # type: ignore[arg-type]


def write(tmp_path: Path, count: int, **settings: object) -> tuple[Path, Clock]:
    directory = tmp_path / "audit"
    clock = Clock()
    log = AuditLog(AuditSettings(directory=directory, **settings), clock=clock)  # type: ignore[arg-type]
    try:
        for i in range(count):
            log.append(rec(i))
            clock.now += 1
    finally:
        log.close()
    return directory, clock


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_chain_and_read_back(tmp_path: Path) -> None:
    directory, _ = write(tmp_path, 5)
    assert verify_dir(directory) == (5, None)
    got = [data for _name, _line, data in records(directory)]
    assert [d["resource"] for d in got] == [f"b/k{i}" for i in range(5)]
    assert got[0]["principal"] == {"user": "root", "access_key": "AK"}
    assert AuditRecord.from_fields(got[3]) == rec(3)
    (name,) = audit_files(directory)
    first, second = lines(directory / name)[:2]
    assert json.loads(first)["type"] == "genesis" and json.loads(first)["prev"] == "0" * 64
    assert json.loads(second)["seq"] == 1


def test_rotation_by_size_and_time_continues_the_chain(tmp_path: Path) -> None:
    directory, _ = write(tmp_path, 30, max_file_bytes=4096, rotate_seconds=0)
    assert len(audit_files(directory)) > 2
    assert verify_dir(directory) == (30, None)
    timed, _ = write(tmp_path / "t", 7, rotate_seconds=2.5)  # one record a second: new files at t=3 and t=6
    assert len(audit_files(timed)) == 3
    assert verify_dir(timed) == (7, None)


def test_retention_drops_the_oldest_and_verify_accepts_it(tmp_path: Path) -> None:
    directory, _ = write(tmp_path, 12, rotate_seconds=1.5, retention=3)
    names = audit_files(directory)
    assert len(names) == 3 and not names[0].startswith("audit-00000001")
    count, broken = verify_dir(directory)
    assert broken is None and 0 < count < 12


def test_a_removed_rotated_file_is_found(tmp_path: Path) -> None:
    directory, _ = write(tmp_path, 9, rotate_seconds=2.5)
    names = audit_files(directory)
    (directory / names[1]).unlink()
    _count, broken = verify_dir(directory)
    assert broken is not None and broken.file == names[2] and broken.line == 1
    # The oldest file, removed by hand (not by retention), is found too.
    directory2, _ = write(tmp_path / "x", 9, rotate_seconds=2.5)
    (directory2 / audit_files(directory2)[0]).unlink()
    assert verify_dir(directory2)[1] is not None


@pytest.mark.parametrize("damage", ["truncate", "edit", "delete", "swap", "insert", "reformat"])
def test_verify_finds_the_first_broken_line(tmp_path: Path, damage: str) -> None:
    directory, _ = write(tmp_path, 6)
    (name,) = audit_files(directory)
    path = directory / name
    content = lines(path)
    if damage == "truncate":
        path.write_bytes(b"".join(content)[:-20])
        expected = 7
    elif damage == "edit":
        data = json.loads(content[3])
        data["principal"]["user"] = "mallory"
        content[3] = canonical(data) + b"\n"
        path.write_bytes(b"".join(content))
        expected = 5  # the edited line itself still links back; the next one no longer does
    elif damage == "delete":
        del content[3]
        path.write_bytes(b"".join(content))
        expected = 4
    elif damage == "swap":
        content[2], content[3] = content[3], content[2]
        path.write_bytes(b"".join(content))
        expected = 3
    elif damage == "insert":
        content.insert(4, content[4])  # a replayed copy right after its original
        path.write_bytes(b"".join(content))
        expected = 6
    else:
        content[2] = json.dumps(json.loads(content[2]), indent=None).encode() + b"\n"
        path.write_bytes(b"".join(content))
        expected = 3
    _count, broken = verify_dir(directory)
    assert broken is not None and (broken.file, broken.line) == (name, expected), broken


def test_an_edit_that_recomputes_its_own_seq_still_breaks_the_next_link(tmp_path: Path) -> None:
    directory, _ = write(tmp_path, 3)
    (name,) = audit_files(directory)
    content = lines(directory / name)
    chain, broken = verify_lines(name, content)
    assert broken is None and chain is not None and chain.records == 3
    data = json.loads(content[1])
    data["status"] = 403
    content[1] = canonical(data) + b"\n"
    _chain, broken = verify_lines(name, content)
    assert broken is not None and broken.line == 3


def test_record_invariants_and_auditor() -> None:
    with pytest.raises(ValueError):
        AuditRecord(time=0, api="ftp", action="x", status=200)
    with pytest.raises(ValueError):
        AuditRecord(time=0, api="s3", action="x", status=42)
    written: list[AuditRecord] = []
    auditor = Auditor(written.append, clock=lambda: 5.0)
    auditor.record(api="admin", action="admin:x", status=401, source_ip="127.0.0.1")
    assert written == [AuditRecord(time=5.0, api="admin", action="admin:x", status=401, source_ip="127.0.0.1")]

    def broken(_record: AuditRecord) -> None:
        raise OSError("disk full")

    failing = Auditor(broken)
    failing.record(api="s3", action="PutObject", status=200)  # logged and counted, never raised
    assert failing.failures == 1
    assert not Auditor(None).enabled


def test_journal_native_protocol(tmp_path: Path) -> None:
    assert encode_fields({"A": "x", "B": "two\nlines"}) == b"A=x\nB\n" + (9).to_bytes(8, "little") + b"two\nlines\n"
    assert under_systemd({"INVOCATION_ID": "abc"}) and under_systemd({"JOURNAL_STREAM": "8:9"})
    assert not under_systemd({})
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        sink = JournalSink(path)
        directory = tmp_path / "audit"
        log = AuditLog(AuditSettings(directory=directory), sink=sink)
        digest = log.append(rec(1, code="AccessDenied", status=403))
        log.close()
        sink.close()
        datagram = server.recv(65536)
    fields = dict(line.split("=", 1) for line in datagram.decode().splitlines())
    assert fields["SYSLOG_IDENTIFIER"] == "s3ipfs-audit"
    assert fields["S3IPFS_AUDIT_ACTION"] == "PutObject" and fields["S3IPFS_AUDIT_STATUS"] == "403"
    assert fields["S3IPFS_AUDIT_CODE"] == "AccessDenied" and fields["S3IPFS_AUDIT_HASH"] == digest
    assert fields["PRIORITY"] == "5"


def test_long_records_chain_too(tmp_path: Path) -> None:
    log = AuditLog(AuditSettings(directory=tmp_path / "audit"))
    for i in range(3):
        log.append(rec(i, resource="b/" + "k" * 9000))  # longer than the short tail read
    log.close()
    assert verify_dir(tmp_path / "audit") == (3, None)
