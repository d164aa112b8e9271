"""`ClusterPeer`: runs the test peer as a subprocess that tests start, stop, restart and inject faults into."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.support.nodes import free_ports

__all__ = ["ClusterPeer", "ClusterPeerError"]

_ROOT = Path(__file__).resolve().parents[3]


class ClusterPeerError(RuntimeError):
    """The test peer did not start or answer."""


class ClusterPeer:
    """One test peer process over `nodes` (Kubo RPC URLs); its pinset lives in `state` and survives restarts.

    with ClusterPeer(nodes, tmp_path / "cluster.json", basic_auth=("admin", "pw")) as peer:
        ClusterClient([peer.url], basic_auth=("admin", "pw"))
        peer.set_faults(down=["peer1"])
    """

    def __init__(
        self,
        nodes: Sequence[str],
        state: Path,
        *,
        port: int | None = None,
        basic_auth: tuple[str, str] | None = None,
        capacity: int | None = None,
        tags: Mapping[int, Mapping[str, str]] | None = None,
        replication: tuple[int, int] = (-1, -1),
        allocate_by: str = "tag:group,freespace",
        pin_timeout: float = 120.0,
        repinning: bool = True,
        log: Path | None = None,
    ) -> None:
        if not nodes:
            raise ValueError("a cluster peer needs at least one node")
        self.nodes = list(nodes)
        self.state = Path(state)
        self.port = port if port is not None else free_ports(1)[0]
        self.basic_auth = basic_auth
        self.log = log or self.state.with_suffix(".log")
        self._args = [
            "--port",
            str(self.port),
            "--state",
            str(self.state),
            "--replication-min",
            str(replication[0]),
            "--replication-max",
            str(replication[1]),
            "--allocate-by",
            allocate_by,
            "--pin-timeout",
            str(pin_timeout),
        ]
        for node in self.nodes:
            self._args += ["--node", node]
        if basic_auth is not None:
            self._args += ["--basic-auth", f"{basic_auth[0]}:{basic_auth[1]}"]
        if capacity is not None:
            self._args += ["--capacity", str(capacity)]
        for index, peer_tags in (tags or {}).items():
            for name, value in peer_tags.items():
                self._args += ["--tag", f"{index}:{name}={value}"]
        if not repinning:
            self._args.append("--disable-repinning")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def answers(self) -> bool:
        """GET /health (not subject to auth) gives 204."""
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0, trust_env=False).status_code == 204
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until it answers."""
        if self.pid is not None:
            return
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.cluster_peer", *self._args],
                cwd=_ROOT,
                env={**os.environ, "PYTHONPATH": str(_ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self._proc is None or self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise ClusterPeerError(f"the cluster test peer on port {self.port} did not start; log:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 5 s; a stopped peer is fine."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL at once (a crash)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)

    # ---- faults -----------------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Merge faults (see faults.py for the keys); returns the fault state."""
        reply = httpx.post(f"{self.url}/_test/faults", json=faults, timeout=5.0, trust_env=False)
        if reply.status_code != 200:
            raise ClusterPeerError(f"faults refused: {reply.text[:300]}")
        data: dict[str, Any] = reply.json()
        return data

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/_test/faults", timeout=5.0, trust_env=False).raise_for_status()

    def __enter__(self) -> ClusterPeer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
