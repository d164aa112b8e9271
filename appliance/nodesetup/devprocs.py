"""Development only: start and stop the daemons this machine has, with pid files under <state_dir>/run.

Kubo (`ipfs daemon` on node.kubo_repo) when its binary exists, else the project's js-ipfs node (devnode.LocalNode) in
the same repo folder; IPFS-Cluster (`ipfs-cluster-service daemon` on node.cluster_dir) when its binary and service.json
exist. Production runs them under systemd (s3ipfs-ipfs.service, s3ipfs-cluster.service) instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from appliance.config import AppConfig
from appliance.ipfsconn.devnode import DevNodeError, LocalNode
from appliance.nodesetup.status import CLUSTER_BINARY, KUBO_BINARY, find_binary

__all__ = ["DevProcessError", "DevProcesses", "Outcome"]

_MARKER = "s3ipfs-node-impl"  # devnode's marker: which implementation made the repo
_STOP_GRACE = 30.0


class DevProcessError(RuntimeError):
    """A daemon could not be started or stopped; the message says which and why."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one daemon: `name` (ipfs/cluster), `state` (started, running, stopped, skipped, …)."""

    name: str
    state: str
    detail: str = ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevProcesses:
    """Start/stop of the local daemons for `config`; idempotent both ways."""

    def __init__(self, config: AppConfig, *, start_timeout: float = 60.0) -> None:
        self._config = config
        self._timeout = start_timeout
        self.run_dir = Path(config.state_dir) / "run"

    # ---- pid files --------------------------------------------------------------------------------

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def running_pid(self, name: str) -> int | None:
        """The pid recorded for `name` if that process is alive and still looks like the daemon we started."""
        try:
            pid_text, _, marker = self.pid_file(name).read_text().partition("\n")
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        marker = marker.strip()
        cmdline = _cmdline(pid)
        if marker and cmdline and marker not in cmdline:
            return None  # the pid was reused by another program
        return pid

    def _record(self, name: str, pid: int, marker: str) -> None:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.pid_file(name).with_suffix(".pid.new")
        temporary.write_text(f"{pid}\n{marker}\n")
        os.replace(temporary, self.pid_file(name))

    # ---- ipfs ---------------------------------------------------------------------------------------

    def _repo_impl(self, repo: Path) -> str:
        """`kubo`, `js-ipfs` or `` (no repo yet)."""
        if not (repo / "config").exists():
            return ""
        with contextlib.suppress(OSError):
            return (repo / _MARKER).read_text().strip() or "kubo"
        return "kubo"  # written by `s3ipfs node init` (or by Kubo itself)

    def _api_answers(self, url: str) -> bool:
        try:
            return httpx.post(f"{url}/api/v0/version", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, ready: Callable[[], bool], proc: subprocess.Popen[bytes], name: str) -> None:
        deadline = time.monotonic() + self._timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                self.pid_file(name).unlink(missing_ok=True)
                tail = self.log_file(name).read_text(errors="replace")[-2000:]
                raise DevProcessError(f"{name} did not start (see {self.log_file(name)}):\n{tail}")
            time.sleep(0.1)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self._record(name, proc.pid, Path(cmd[0]).name)
        return proc

    def start_ipfs(self) -> Outcome:
        repo = self._config.kubo_repo_path
        url = self._config.ipfs.api_url
        pid = self.running_pid("ipfs")
        if pid is not None:
            return Outcome("ipfs", "running", f"pid {pid}, API {url}")
        kubo = find_binary(self._config.node.kubo_binary, KUBO_BINARY)
        impl = self._repo_impl(repo)
        if impl == "js-ipfs" or (kubo is None and impl == ""):
            return self._start_jsipfs(repo, url)
        if kubo is None:
            raise DevProcessError(
                f"{repo} is a Kubo repo but no Kubo binary was found (node.kubo_binary or `ipfs` on PATH): "
                "install it with `s3ipfs node install --from …`"
            )
        if impl == "":
            raise DevProcessError(f"{repo} has no Kubo config: run `s3ipfs node init` first")
        env = {**os.environ, "IPFS_PATH": str(repo)}
        proc = self._spawn("ipfs", [kubo, "daemon", "--migrate"], env)
        self._wait(lambda: self._api_answers(url), proc, "ipfs")
        return Outcome("ipfs", "started", f"Kubo pid {proc.pid}, API {url}")

    def _start_jsipfs(self, repo: Path, url: str) -> Outcome:
        node = LocalNode(repo)
        try:
            if not (repo / "config").exists():
                parts = urlsplit(url)
                if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
                    raise DevProcessError(f"ipfs.api_url {url} must be http://127.0.0.1:<port> for the js-ipfs node")
                node = LocalNode.init(repo, parts.port, _free_port(4001 if parts.port != 4001 else 4002))
            if node.api_url.rstrip("/") != url.rstrip("/").replace("localhost", "127.0.0.1"):
                raise DevProcessError(f"the js-ipfs node in {repo} listens on {node.api_url}, not ipfs.api_url {url}")
            pid = node.start(self._timeout)
        except DevNodeError as exc:
            raise DevProcessError(f"js-ipfs node: {exc}") from exc
        self._record("ipfs", pid, "ipfs")  # js-ipfs sets its process title to `ipfs`
        return Outcome("ipfs", "started", f"js-ipfs development node pid {pid}, API {node.api_url}")

    # ---- cluster ------------------------------------------------------------------------------------

    def start_cluster(self) -> Outcome:
        pid = self.running_pid("cluster")
        if pid is not None:
            return Outcome("cluster", "running", f"pid {pid}")
        binary = find_binary(self._config.node.cluster_binary, CLUSTER_BINARY)
        folder = self._config.cluster_dir_path
        if binary is None:
            return Outcome("cluster", "skipped", f"no {CLUSTER_BINARY} (node.cluster_binary or PATH)")
        if not (folder / "service.json").exists():
            return Outcome("cluster", "skipped", f"{folder}/service.json is missing: run `s3ipfs node init`")
        env = {**os.environ, "IPFS_CLUSTER_PATH": str(folder)}
        proc = self._spawn("cluster", [binary, "--config", str(folder), "daemon"], env)
        self._wait(lambda: self._cluster_ready(proc), proc, "cluster")
        return Outcome("cluster", "started", f"pid {proc.pid}")

    def _cluster_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        endpoints = self._config.cluster.endpoints
        if not endpoints:
            time.sleep(1.0)  # nothing to ask: alive one second after the start is as good as it gets
            return proc.poll() is None
        try:
            return httpx.get(f"{endpoints[0]}/health", timeout=2.0).status_code < 500
        except httpx.HTTPError:
            return False

    # ---- both ---------------------------------------------------------------------------------------

    def start(self) -> list[Outcome]:
        """Start the IPFS node, then the cluster peer (it needs the node)."""
        return [self.start_ipfs(), self.start_cluster()]

    def stop_one(self, name: str) -> Outcome:
        pid = self.running_pid(name)
        if pid is None:
            self.pid_file(name).unlink(missing_ok=True)
            return Outcome(name, "stopped", "was not running")
        if name == "ipfs" and self._repo_impl(self._config.kubo_repo_path) == "js-ipfs":
            LocalNode(self._config.kubo_repo_path).stop()  # it knows js-ipfs's lock and grace period
            self.pid_file(name).unlink(missing_ok=True)
            return Outcome(name, "stopped", f"js-ipfs pid {pid}")
        # SIGINT: what the systemd units use; both daemons shut down cleanly on it (js-ipfs too).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + _STOP_GRACE
        while _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        killed = _alive(pid)
        if killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file(name).unlink(missing_ok=True)
        return Outcome(name, "stopped", f"pid {pid}" + (" (killed after 30 s)" if killed else ""))

    def stop(self) -> list[Outcome]:
        """Stop the cluster peer, then the IPFS node."""
        return [self.stop_one("cluster"), self.stop_one("ipfs")]
