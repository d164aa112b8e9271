"""Several processes append to one audit directory at once (with size rotation); one of them is killed with SIGKILL
mid-burst. The files must verify, every record of the survivors must be there once, and the killed process's
records must be a gap-free prefix of what it meant to write (at most its in-flight record lost)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

from appliance.service.audit import AuditRecord
from appliance.service.audit_log import AuditLog, AuditSettings, records, verify_dir

BURST = 300
WRITERS = 3


def _writer(directory: str, name: str, count: int, started: multiprocessing.synchronize.Event) -> None:
    log = AuditLog(AuditSettings(directory=Path(directory), max_file_bytes=32 * 1024, rotate_seconds=0))
    started.set()
    for i in range(count):
        log.append(
            AuditRecord(time=time.time(), api="s3", action="PutObject", status=200, resource=f"{name}/{i}", bytes=i)
        )
    log.close()


def test_concurrent_writers_and_a_killed_one(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    directory = tmp_path / "audit"
    victim_started = ctx.Event()
    victim = ctx.Process(target=_writer, args=(str(directory), "victim", 1_000_000, victim_started))
    victim.start()
    assert victim_started.wait(60)
    survivors = []
    events = [ctx.Event() for _ in range(WRITERS)]  # kept alive until the children have them
    for n, started in enumerate(events):
        proc = ctx.Process(target=_writer, args=(str(directory), f"w{n}", BURST, started))
        proc.start()
        survivors.append(proc)
    assert all(event.wait(60) for event in events)
    # Kill the victim while everyone writes: once it has written something and the others are under way.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        written = sum(1 for _ in records(directory))
        if written > BURST:
            break
        time.sleep(0.01)
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(30)
    assert victim.exitcode == -signal.SIGKILL
    for proc in survivors:
        proc.join(120)
        assert proc.exitcode == 0

    count, broken = verify_dir(directory)
    assert broken is None, broken.describe()
    seen: dict[str, list[int]] = defaultdict(list)
    for _name, _line, data in records(directory):
        writer, index = data["resource"].split("/")
        seen[writer].append(int(index))
    for n in range(WRITERS):
        assert seen[f"w{n}"] == list(range(BURST))  # all there, once each, in each writer's order
    victim_records = seen["victim"]
    assert victim_records == list(range(len(victim_records))) and victim_records
    assert count == WRITERS * BURST + len(victim_records)
    assert len(list(directory.glob("audit-*.jsonl"))) > 1  # rotation happened under contention
