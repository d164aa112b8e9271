"""Real clients (aws cli, s3cmd, boto3) against `s3ipfs serve` as operators run it: a subprocess with 2 worker processes
on a real local IPFS node."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from appliance.ipfsconn.devnode import LocalNode
from tests.support.gateway import Gateway, start_gateway, stop_gateway
from tests.support.nodes import start_local_node, stop_nodes

BIN = Path(sys.executable).parent


@pytest.fixture(scope="package")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    started = start_local_node(tmp_path_factory.mktemp("system-node"))
    try:
        yield started
    finally:
        stop_nodes([started])


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory, node: LocalNode) -> Iterator[Gateway]:
    gw = start_gateway(
        tmp_path_factory.mktemp("system-gw"),
        node,
        workers=2,
        extra_config={"objects": {"unpin_grace_seconds": 0, "unpin_interval_seconds": 0.2}},
    )
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="package")
def s3(gateway: Gateway) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gateway.endpoint,
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def client_env(gateway: Gateway, home: Path) -> dict[str, str]:
    """An environment for CLI clients that sees only this gateway's credentials (no ~/.aws, no IMDS)."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": gateway.access_key,
        "AWS_SECRET_ACCESS_KEY": gateway.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONWARNINGS": "ignore",
    }


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a client command; fail the test with its output if it fails."""
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done
