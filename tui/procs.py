"""CPU, memory and I/O of the appliance's processes on this host (psutil), for the health dashboard."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil

__all__ = ["ProcessStats", "ProcessWatch"]

_RESCAN_SECONDS = 10.0  # walking every process is the costly part: do it rarely, sample the found ones often
_MARKERS = (("appliance.cli", "serve"), ("s3ipfs", "serve"), ("ipfs", "daemon"), ("ipfs-cluster-service",))


@dataclass(frozen=True, slots=True)
class ProcessStats:
    processes: int
    cpu_percent: float  # summed over the processes; 100 = one core
    rss_bytes: int
    read_bytes: int  # cumulative disk I/O, where the platform reports it
    write_bytes: int
    net_sent: int  # host-wide network counters (per-process ones need root)
    net_recv: int


def _is_ours(cmdline: list[str]) -> bool:
    text = " ".join(cmdline)
    return any(all(marker in text for marker in group) for group in _MARKERS)


class ProcessWatch:
    """Keeps psutil.Process handles between samples so cpu_percent measures the interval since the last one."""

    def __init__(self, *, extra_pids: tuple[int, ...] = ()) -> None:
        self._extra = extra_pids
        self._procs: dict[int, psutil.Process] = {}
        self._scanned = 0.0
        self._lock = threading.Lock()  # samples come from worker threads

    def _rescan(self) -> None:
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if proc.pid in self._extra or _is_ours(cmdline):
                found[proc.pid] = self._procs.get(proc.pid, proc)
                try:
                    for child in proc.children(recursive=True):
                        found[child.pid] = self._procs.get(child.pid, child)
                except psutil.Error:
                    continue
        self._procs = found
        self._scanned = time.monotonic()

    def sample(self) -> ProcessStats:
        with self._lock:
            return self._sample()

    def _sample(self) -> ProcessStats:
        if not self._procs or time.monotonic() - self._scanned > _RESCAN_SECONDS:
            self._rescan()
        cpu = 0.0
        rss = read = write = 0
        alive = 0
        for pid, proc in list(self._procs.items()):
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                    io = proc.io_counters() if hasattr(proc, "io_counters") else None
                    if io is not None:
                        read += io.read_bytes
                        write += io.write_bytes
                alive += 1
            except psutil.Error:
                self._procs.pop(pid, None)  # gone or not ours to read
        net = psutil.net_io_counters()
        return ProcessStats(alive, cpu, rss, read, write, net.bytes_sent if net else 0, net.bytes_recv if net else 0)
