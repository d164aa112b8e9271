"""A local, loopback-only IPFS node process for development and tests (real Kubo if on PATH, else js-ipfs).

    python -m appliance.ipfsconn.devnode init  REPO [--api-port N] [--swarm-port N]
    python -m appliance.ipfsconn.devnode start REPO [--timeout S]
    python -m appliance.ipfsconn.devnode stop  REPO

The js-ipfs node comes from <repo root>/ipfs-node (scripts/setup.sh installs it with `npm ci`). Every
address is 127.0.0.1; bootstrap, MDNS and routing are off, so the node never reaches beyond the host.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = ["DevNodeError", "LocalNode", "jsipfs_path", "kubo_path", "main"]

_ROOT = Path(__file__).resolve().parents[2]
_STOP_GRACE = 10.0
_MARKER = "s3ipfs-node-impl"  # which implementation made the repo; both daemons ignore unknown files


class DevNodeError(RuntimeError):
    """The local node could not be initialised, started or reached."""


def kubo_path() -> str | None:
    """The real Kubo `ipfs` binary on PATH, if any."""
    return shutil.which("ipfs")


def jsipfs_path() -> Path:
    """The js-ipfs CLI installed by scripts/setup.sh."""
    return _ROOT / "ipfs-node" / "node_modules" / ".bin" / "jsipfs"


def _loopback_config(api_port: int, swarm_port: int) -> dict[str, Any]:
    return {
        "Addresses": {
            "API": f"/ip4/127.0.0.1/tcp/{api_port}",
            "Gateway": "",
            "RPC": "",
            "Swarm": [f"/ip4/127.0.0.1/tcp/{swarm_port}"],
            "Announce": [],
            "NoAnnounce": [],
            "Delegates": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}},
        "Swarm": {"DisableNatPortMap": True},
        "Routing": {"Type": "none"},
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalNode:
    """One node living in `repo`; `init` creates the repo, `start`/`stop` run the daemon."""

    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)
        self._proc: subprocess.Popen[bytes] | None = None

    # ---- repo -------------------------------------------------------------------------------------

    @classmethod
    def init(cls, repo: Path, api_port: int, swarm_port: int) -> LocalNode:
        """Create a repo whose API and swarm listen on 127.0.0.1 only."""
        repo = Path(repo)
        if (repo / "config").exists():
            raise DevNodeError(f"{repo} is already an IPFS repo")
        repo.mkdir(parents=True, exist_ok=True)
        env = cls._env(repo)
        kubo = kubo_path()
        if kubo:
            cls._run([kubo, "init", "--profile", "test"], env)
            cfg = _loopback_config(api_port, swarm_port)
            for key, value in (
                ("Addresses.API", cfg["Addresses"]["API"]),
                ("Addresses.Swarm", cfg["Addresses"]["Swarm"]),
                ("Addresses.Gateway", "/ip4/127.0.0.1/tcp/0"),
                ("Bootstrap", []),
                ("Routing.Type", "none"),
                ("Discovery.MDNS.Enabled", False),
            ):
                cls._run([kubo, "config", "--json", key, json.dumps(value)], env)
        else:
            js = jsipfs_path()
            if not js.exists():
                raise DevNodeError(f"{js} is missing: run `bash scripts/setup.sh` first")
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
                json.dump(_loopback_config(api_port, swarm_port), fh)
            try:
                cls._run([str(js), "init", "--empty-repo", fh.name], env)
            finally:
                os.unlink(fh.name)
        (repo / _MARKER).write_text("kubo\n" if kubo else "js-ipfs\n")
        return cls(repo)

    @staticmethod
    def _env(repo: Path) -> dict[str, str]:
        # NO_UPDATE_NOTIFIER: the js-ipfs CLI otherwise asks the npm registry for updates.
        return {**os.environ, "IPFS_PATH": str(repo), "NO_UPDATE_NOTIFIER": "1"}

    @staticmethod
    def _run(cmd: list[str], env: dict[str, str]) -> None:
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            out = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise DevNodeError(f"{' '.join(cmd[:2])} failed ({done.returncode}): {out}")

    @property
    def is_kubo(self) -> bool:
        """Whether this repo was made by a real Kubo (init leaves a marker; without one, Kubo if on PATH)."""
        try:
            return (self.repo / _MARKER).read_text().strip() == "kubo"
        except OSError:
            return kubo_path() is not None

    @property
    def api_port(self) -> int:
        """The API port from the repo's config."""
        config = json.loads((self.repo / "config").read_text())
        return int(config["Addresses"]["API"].split("/")[4])

    @property
    def api_url(self) -> str:
        """http://127.0.0.1:<api port>"""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid_file(self) -> Path:
        return self.repo / "daemon.pid"

    @property
    def log_file(self) -> Path:
        return self.repo / "daemon.log"

    # ---- daemon -----------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The daemon's pid if it is running."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._proc is not None and self._proc.pid == pid:
            return None  # our own child, already reaped above
        return pid if _pid_alive(pid) else None

    def _answers(self) -> bool:
        try:
            return httpx.post(f"{self.api_url}/api/v0/id", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 60.0) -> int:
        """Start the daemon and wait until POST /api/v0/id answers; return its pid."""
        if not (self.repo / "config").exists():
            raise DevNodeError(f"{self.repo} is not an IPFS repo: run `init` first")
        running = self.pid()
        if running is not None:
            if self._answers():
                return running
            self._kill(signal.SIGKILL)  # alive but not answering: a hung start
        # A SIGKILLed js-ipfs leaves repo.lock behind and treats it as held for 20 s; its owner is gone.
        shutil.rmtree(self.repo / "repo.lock", ignore_errors=True)
        if self.is_kubo:
            kubo = kubo_path()
            if kubo is None:
                raise DevNodeError(f"{self.repo} is a Kubo repo but no `ipfs` binary is on PATH")
            cmd = [kubo, "daemon"]
        else:
            cmd = [str(jsipfs_path()), "daemon", "--enable-preload=false"]
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, env=self._env(self.repo), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() >= deadline:
                # A failed js-ipfs start can hang instead of exiting: kill it.
                self._kill(signal.SIGKILL)
                tail = self.log_file.read_text(errors="replace")[-3000:]
                raise DevNodeError(f"the IPFS daemon in {self.repo} did not start; log:\n{tail}")
            time.sleep(0.1)
        return self._proc.pid

    def _kill(self, sig: signal.Signals) -> None:
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if sig == signal.SIGKILL and self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the daemon at once (a crash, for recovery tests); the next start clears its lock."""
        self._kill(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the daemon, SIGKILL it after 10 s. Stopping a stopped node does nothing."""
        if self.pid() is None:
            return
        self._kill(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.pid() is not None:
            self._kill(signal.SIGKILL)

    # ---- peers ------------------------------------------------------------------------------------

    def _rpc(self, cmd: str, **params: str) -> Any:
        resp = httpx.post(f"{self.api_url}/api/v0/{cmd}", params=params, timeout=10.0)
        if resp.status_code != 200:
            raise DevNodeError(f"{cmd} failed: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def peer_id(self) -> str:
        """The node's peer id."""
        return str(self._rpc("id")["ID"])

    def peer_multiaddr(self) -> str:
        """The loopback swarm address with /p2p/<peer id>, for swarm/connect."""
        info = self._rpc("id")
        for addr in info.get("Addresses") or []:
            if addr.startswith("/ip4/127.0.0.1/tcp/"):
                return str(addr) if "/p2p/" in addr else f"{addr}/p2p/{info['ID']}"
        raise DevNodeError(f"the node in {self.repo} announces no loopback TCP address")

    def connect(self, other: LocalNode) -> None:
        """Connect this node's swarm to `other`."""
        self._rpc("swarm/connect", arg=other.peer_multiaddr())


def main(argv: list[str] | None = None) -> int:
    """Command line: init | start | stop a node in REPO."""
    parser = argparse.ArgumentParser(prog="python -m appliance.ipfsconn.devnode", description=__doc__)
    parser.add_argument("command", choices=["init", "start", "stop"])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--api-port", type=int, default=5001)
    parser.add_argument("--swarm-port", type=int, default=4001)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            LocalNode.init(args.repo, args.api_port, args.swarm_port)
            print(f"initialised {args.repo}")
        elif args.command == "start":
            node = LocalNode(args.repo)
            pid = node.start(args.timeout)
            print(f"started pid {pid}, API {node.api_url}")
        else:
            LocalNode(args.repo).stop()
    except (DevNodeError, OSError) as exc:
        print(f"devnode: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
