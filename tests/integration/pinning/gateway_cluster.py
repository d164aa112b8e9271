"""Helpers for live tests of the gateway daemon pinning through the cluster test peer: the gateway's cluster config,
boto3 and admin clients, polling, kill -9 and restart on the same config, and reads of the peer and the nodes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import boto3
import httpx
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from appliance.ipfsconn.devnode import LocalNode
from tests.integration.pinning.conftest import AUTH
from tests.support.cluster_peer import ClusterPeer
from tests.support.gateway import Gateway, gateway_command, gateway_env, merge_config, wait_ready

__all__ = [
    "admin",
    "cluster_config",
    "kill_gateway",
    "metric_samples",
    "peer_allocations",
    "peer_get",
    "pin_detail",
    "pin_state_header",
    "pinned_on",
    "restart_gateway",
    "s3_client",
    "wait_until",
]

_ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")


def cluster_config(peer: ClusterPeer, **sections: Mapping[str, Any]) -> dict[str, Any]:
    """extra_config for start_gateway: the test peer as the cluster (basic auth), quick outbox timings,
    replication 2/2, short unpin grace; `sections` are merged over these, key by key."""
    base: dict[str, Any] = {
        "cluster": {
            "endpoints": [peer.url],
            "username": AUTH[0],
            "password": AUTH[1],
            "timeout": 10.0,
            "connect_timeout": 1.0,
        },
        "pinning": {
            "outbox_interval_seconds": 0.2,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 2.0,
            "status_poll_seconds": 0.2,
            "replication_min": 2,
            "replication_max": 2,
            "ack_timeout_seconds": 30.0,
        },
        "objects": {"unpin_grace_seconds": 0.5, "unpin_interval_seconds": 0.2},
    }
    return merge_config(base, sections)


def s3_client(gw: Gateway, *, pool: int = 10) -> Any:
    """A boto3 S3 client on the gateway that never retries (a 503 must reach the test)."""
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=gw.secret_key,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=120,
            max_pool_connections=pool,
        ),
    )


def admin(gw: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One admin API request (loopback)."""
    return gw.admin(method, path, timeout=30.0, **kwargs)


def pin_detail(gw: Gateway, cid: str, *, live: bool = False) -> dict[str, Any] | None:
    """GET /pins/{cid} (None on 404)."""
    reply = admin(gw, "GET", f"/pins/{cid}", params={"live": "1"} if live else None)
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    data: dict[str, Any] = reply.json()
    return data


def pin_state_header(reply: Mapping[str, Any]) -> str:
    """x-ipfs-pin-status of a boto3 response."""
    return str(reply["ResponseMetadata"]["HTTPHeaders"]["x-ipfs-pin-status"])


def wait_until(probe: Callable[[], T | None], what: str, *, timeout: float = 120.0, every: float = 0.2) -> T:
    """Call `probe` until it returns something other than None/False; AssertionError naming `what` (and the last
    value seen) if the deadline passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f} s (last: {last!r})")
        time.sleep(every)


def kill_gateway(gw: Gateway) -> None:
    """SIGKILL the gateway's whole process group (main process and workers) and reap it: a crash."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(gw.process.pid, signal.SIGKILL)
    gw.process.wait(timeout=30)


def restart_gateway(gw: Gateway, *, ready_timeout: float = 60.0) -> Gateway:
    """Start `s3ipfs serve` again on the same config file (same ports, state dir, credentials, log); returns the
    new handle once admin /ready answers 200."""
    if gw.process.poll() is None:
        raise RuntimeError("the gateway is still running; stop or kill it first")
    with gw.log_path.open("ab") as log:
        process = subprocess.Popen(
            gateway_command(gw.config_path),
            cwd=_ROOT,
            env=gateway_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    again = dataclasses.replace(gw, process=process)
    try:
        wait_ready(again, ready_timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        raise
    return again


def peer_get(peer: ClusterPeer, path: str, **params: str) -> httpx.Response:
    """GET a test peer REST route with its basic auth."""
    return httpx.get(f"{peer.url}{path}", params=params, auth=AUTH, timeout=60.0, trust_env=False)


def peer_allocations(peer: ClusterPeer) -> dict[str, dict[str, Any]]:
    """The peer's whole pinset (GET /allocations, an NDJSON stream) by CID."""
    reply = peer_get(peer, "/allocations")
    reply.raise_for_status()
    pins: dict[str, dict[str, Any]] = {}
    for line in reply.text.splitlines():
        if line.strip():
            pin = json.loads(line)
            pins[pin["cid"]] = pin
    return pins


def pinned_on(node: LocalNode, cid: str) -> bool:
    """Whether the node holds a recursive pin of `cid` (Kubo RPC pin/ls)."""
    reply = httpx.post(
        f"{node.api_url}/api/v0/pin/ls", params={"arg": cid, "type": "recursive"}, timeout=30.0, trust_env=False
    )
    return reply.status_code == 200


def metric_samples(text: str) -> dict[str, float]:
    """Prometheus exposition text → {sample name with sorted labels: value}, e.g.
    `ipfs_pin_duration_seconds_count{pinner="cluster"}`."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
    return out
