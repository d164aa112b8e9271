"""Run a real gateway (`s3ipfs serve` in a subprocess) against a local IPFS node, for live-client tests.

gw = start_gateway(tmp_path, node)          # waits for admin /ready; raises with the gateway's log on failure
boto3.client("s3", endpoint_url=gw.endpoint, aws_access_key_id=gw.access_key, aws_secret_access_key=gw.secret_key)
stop_gateway(gw)                            # SIGTERM, wait, SIGKILL the process group if needed; returns the exit code
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from appliance.config import load_config
from appliance.ipfsconn.devnode import LocalNode
from appliance.service.identity import load_or_create_root
from tests.support.nodes import free_ports

__all__ = [
    "Gateway",
    "GatewayError",
    "gateway_command",
    "merge_config",
    "read_admin_token",
    "running_gateway",
    "start_gateway",
    "stop_gateway",
]

_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
GRACEFUL_TIMEOUT = 10.0


class GatewayError(RuntimeError):
    """The gateway did not start or stop as expected; the message carries the tail of its log."""


@dataclass
class Gateway:
    endpoint: str  # http://127.0.0.1:PORT, the S3 endpoint
    admin_url: str  # http://127.0.0.1:PORT, the admin API
    access_key: str
    secret_key: str
    config_path: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    state_dir: Path
    graceful_timeout: float = GRACEFUL_TIMEOUT

    @property
    def admin_token(self) -> str:
        """The local root token the daemon wrote (state_dir/keys/admin.token); read each time, since every start of
        the daemon (restart_gateway) replaces it."""
        return read_admin_token(self.state_dir)

    @property
    def admin_headers(self) -> dict[str, str]:
        """Headers that authenticate an admin API request as root."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated admin API request (kwargs as httpx.request's; `headers` are added to the token's)."""
        headers = {**self.admin_headers, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30.0)
        return httpx.request(method, f"{self.admin_url}{path}", headers=headers, trust_env=False, **kwargs)

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the gateway's stderr/stdout log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def read_admin_token(state_dir: Path) -> str:
    """The local root token a running daemon wrote, "" before it has."""
    try:
        return (Path(state_dir) / "keys" / "admin.token").read_text().strip()
    except OSError:
        return ""


def gateway_command(config_path: Path, command: str = "serve") -> list[str]:
    """argv running an `s3ipfs` command with this interpreter (no dependency on the console script)."""
    return [sys.executable, "-m", "appliance.cli", *command.split(), "--config", str(config_path)]


def gateway_env() -> dict[str, str]:
    """The environment without S3IPFS_* overrides, so only the written config counts."""
    return {name: value for name, value in os.environ.items() if not name.startswith("S3IPFS_")}


def merge_config(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def write_config(
    directory: Path, node: LocalNode | None, *, workers: int = 2, extra_config: Mapping[str, Any] | None = None
) -> Path:
    """Write directory/s3ipfs.yaml with free loopback ports; returns its path."""
    s3_port, admin_port = free_ports(2)
    data: dict[str, Any] = {
        "state_dir": str(directory / "state"),
        "s3": {"host": "127.0.0.1", "port": s3_port, "workers": workers, "graceful_timeout": GRACEFUL_TIMEOUT},
        "admin": {"host": "127.0.0.1", "port": admin_port},
        "objects": {"unpin_interval_seconds": 1.0},
    }
    if node is not None:
        data["ipfs"] = {"api_url": node.api_url}
    data = merge_config(data, extra_config or {})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "s3ipfs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start_gateway(
    tmp_path: Path,
    node: LocalNode,
    *,
    workers: int = 2,
    extra_config: Mapping[str, Any] | None = None,
    name: str = "gateway",
    ready_timeout: float = READY_TIMEOUT,
    extra_env: Mapping[str, str] | None = None,
) -> Gateway:
    """Start `s3ipfs serve` on `node` with free ports in tmp_path/name; return once admin /ready answers 200.

    `extra_config` is merged section by section over the defaults written here. On failure the gateway is
    stopped and GatewayError carries the tail of its log (tmp_path/name/gateway.log)."""
    directory = Path(tmp_path) / name
    config_path = write_config(directory, node, workers=workers, extra_config=extra_config)
    config = load_config(config_path, env={})
    creds, _created = load_or_create_root(config.credentials_path)
    log_path = directory / "gateway.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            gateway_command(config_path),
            cwd=_ROOT,
            env={**gateway_env(), **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: workers can be killed with it
        )
    gw = Gateway(
        endpoint=f"{config.s3.scheme}://127.0.0.1:{config.s3.port}",
        admin_url=f"{config.admin.scheme}://127.0.0.1:{config.admin.port}",
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        config_path=config_path,
        process=process,
        log_path=log_path,
        state_dir=Path(config.state_dir),
        graceful_timeout=config.s3.graceful_timeout,
    )
    try:
        wait_ready(gw, ready_timeout)
    except BaseException:
        _kill_group(gw)
        raise
    return gw


def wait_ready(gw: Gateway, timeout: float = READY_TIMEOUT, *, status: int = 200) -> httpx.Response:
    """Poll admin /ready until it answers `status`; GatewayError (with the log) if the gateway exits or times out."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if gw.process.poll() is not None:
            raise GatewayError(f"the gateway exited with code {gw.process.returncode}; log:\n{gw.log_tail()}")
        try:
            reply = httpx.get(f"{gw.admin_url}/ready", timeout=10.0, headers=gw.admin_headers, verify=False)
            if reply.status_code == status:
                return reply
            last = f"{reply.status_code} {reply.text[:500]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() >= deadline:
            raise GatewayError(
                f"admin /ready did not answer {status} within {timeout:.0f} s ({last}); log:\n{gw.log_tail()}"
            )
        time.sleep(0.1)


def _kill_group(gw: Gateway) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(gw.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        gw.process.wait(timeout=10)


def stop_gateway(gw: Gateway, timeout: float | None = None) -> int | None:
    """SIGTERM the gateway and wait (graceful timeout + 10 s by default); SIGKILL its process group if it hangs.
    Returns its exit code (None if it had to be killed). Stopping a stopped gateway just returns its code."""
    if gw.process.poll() is None:
        gw.process.send_signal(signal.SIGTERM)
        try:
            gw.process.wait(timeout=gw.graceful_timeout + 10.0 if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            _kill_group(gw)
            return None
    # Workers left behind by a crashed main process would hold the port: clear the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(gw.process.pid, signal.SIGKILL)
    return gw.process.returncode


@contextlib.contextmanager
def running_gateway(tmp_path: Path, node: LocalNode, **kwargs: Any) -> Iterator[Gateway]:
    """A started gateway for the duration of the block; stopped however the block ends."""
    gw = start_gateway(tmp_path, node, **kwargs)
    try:
        yield gw
    finally:
        stop_gateway(gw)
