"""Processes the bench starts (IPFS node, baseline app, gateway) and stops again, even on failure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from appliance.ipfsconn.devnode import LocalNode

__all__ = [
    "ROOT",
    "BenchSetupError",
    "Credentials",
    "Gateway",
    "Service",
    "free_port",
    "ipfs_node",
    "start_baseline",
    "start_gateway",
]

ROOT = Path(__file__).resolve().parents[1]
_STOP_GRACE = 30.0


class BenchSetupError(RuntimeError):
    """A process the bench needs did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def ipfs_node(tmp: Path, timeout: float = 120.0) -> Iterator[LocalNode]:
    """A fresh loopback-only IPFS node in tmp/ipfs, stopped on exit."""
    node = LocalNode.init(tmp / "ipfs", api_port=free_port(), swarm_port=free_port())
    try:
        node.start(timeout=timeout)
        yield node
    finally:
        node.stop()


@dataclass
class Service:
    """A subprocess in its own session; `stop` SIGTERMs it, then SIGKILLs its process group after a grace."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = _STOP_GRACE) -> int | None:
        """SIGTERM, wait `grace` s, then SIGKILL the group; the exit code (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        except BaseException:  # interrupted while waiting: leave nothing behind
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the process group this bench created for it (start_new_session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def _spawn(name: str, cmd: list[str], log: Path) -> Service:
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return Service(name, proc, log)


def _wait_ok(service: Service, url: str, timeout: float, token_file: Path | None = None) -> None:
    """Poll `url` until 200; with `token_file`, as the daemon's local root token (the admin API needs one)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError):
            headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"} if token_file else {}
            if httpx.get(url, timeout=2.0, headers=headers).status_code == 200:
                return
        if service.proc.poll() is not None:
            raise BenchSetupError(
                f"{service.name} exited ({service.proc.returncode}) before {url} answered 200; log:\n{service.tail()}"
            )
        if time.monotonic() >= deadline:
            raise BenchSetupError(
                f"{service.name}: {url} did not answer 200 within {timeout:.0f} s; log:\n{service.tail()}"
            )
        time.sleep(0.1)


@contextlib.contextmanager
def start_baseline(tmp: Path, workers: int = 2, timeout: float = 60.0) -> Iterator[str]:
    """The bare Quart+hypercorn app (bench/baseline_app.py); yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "hypercorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    service = _spawn("baseline app", [*cmd, "bench.baseline_app:app"], tmp / "baseline.log")
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ok(service, f"{base}/ready", timeout)
        yield base
    finally:
        service.stop()


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class Gateway:
    s3_url: str
    admin_url: str
    credentials: Credentials
    service: Service


@contextlib.contextmanager
def start_gateway(
    tmp: Path, api_url: str, workers: int = 2, timeout: float = 90.0, *, cache: bool = True, ratelimit: bool = False
) -> Iterator[Gateway]:
    """`python -m appliance.cli serve --config CFG` on node `api_url`; yields it once /ready answers 200.
    `cache=False` turns the memory cache off, so every GET goes to the IPFS node. `ratelimit=True` turns rate
    limiting on with limits no bench reaches (the cost of the check, not of throttling)."""
    tmp = tmp / ("gateway" if cache else "gateway-uncached") if not ratelimit else tmp / "gateway-ratelimit"
    tmp.mkdir(parents=True, exist_ok=True)
    state = tmp / "state"
    s3_port, admin_port = free_port(), free_port()
    config = {
        "state_dir": str(state),
        "s3": {"host": "127.0.0.1", "port": s3_port, "workers": workers},
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "ipfs": {"api_url": api_url},
        "cache": {"memory_bytes": 64 * 1024 * 1024 if cache else 0},
    }
    if ratelimit:
        never = {"per_key_rps": 1e9, "per_key_burst": 10**9, "per_ip_rps": 1e9, "per_ip_burst": 10**9}
        config["ratelimit"] = {"enabled": True, **never}
    cfg = tmp / "gateway.yaml"
    cfg.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
    cmd = [sys.executable, "-m", "appliance.cli", "serve", "--config", str(cfg)]
    service = _spawn("gateway", cmd, tmp / "gateway.log")
    try:
        admin = f"http://127.0.0.1:{admin_port}"
        _wait_ok(service, f"{admin}/ready", timeout, state / "keys" / "admin.token")
        keys_file = state / "keys" / "root.json"
        try:
            keys = json.loads(keys_file.read_text())
            creds = Credentials(str(keys["access_key"]), str(keys["secret_key"]))
        except (OSError, ValueError, KeyError) as exc:
            raise BenchSetupError(f"gateway is ready but {keys_file} is unusable: {exc!r}") from exc
        yield Gateway(f"http://127.0.0.1:{s3_port}", admin, creds, service)
    finally:
        code = service.stop()
        if code not in (0, -signal.SIGTERM):
            print(f"note: gateway exit code {code} after SIGTERM; log tail:\n{service.tail(1500)}", file=sys.stderr)
