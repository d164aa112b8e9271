"""One real gateway (2 S3 workers) on one real IPFS node for the metrics tests, and boto3 traffic helpers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from appliance.ipfsconn.devnode import LocalNode, jsipfs_path, kubo_path
from tests.support.gateway import Gateway, start_gateway, stop_gateway
from tests.support.nodes import start_local_node, stop_nodes

needs_node = pytest.mark.skipif(
    kubo_path() is None and not jsipfs_path().exists(), reason="no IPFS node installed: run scripts/setup.sh"
)
_names = itertools.count()


@pytest.fixture(scope="package")
def observe_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    node = start_local_node(tmp_path_factory.mktemp("observe-node"))
    try:
        yield node
    finally:
        stop_nodes([node])


@pytest.fixture(scope="package")
def observed(tmp_path_factory: pytest.TempPathFactory, observe_node: LocalNode) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("observe-gw"), observe_node, workers=2)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def s3_client(gw: Gateway, *, secret: str | None = None) -> Any:
    """A boto3 client that never retries; an https endpoint is verified against the test certificate in
    `<gateway dir>/tls/cert.pem` (tests/support/tls.py)."""
    verify: str | bool = True
    if gw.endpoint.startswith("https://"):
        verify = str(gw.config_path.parent / "tls" / "cert.pem")
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        verify=verify,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=secret or gw.secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def traffic(gw: Gateway, rounds: int = 6) -> str:
    """A little of everything: bucket, PUTs, GETs (cache hits on repeats), listing, a 404 and a bad signature.
    New connections per call spread the requests over both workers. Returns the bucket."""
    bucket = f"observe-{next(_names)}"
    s3 = s3_client(gw)
    s3.create_bucket(Bucket=bucket)
    for i in range(rounds):
        client = s3_client(gw)  # a fresh connection: the kernel balances it to either worker
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x" * (1000 + i))
        assert client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == b"x" * (1000 + i)
        client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read()
        client.list_objects_v2(Bucket=bucket)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    bad = s3_client(gw, secret="not-the-secret")
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        bad.list_objects_v2(Bucket=bucket)
    return bucket
