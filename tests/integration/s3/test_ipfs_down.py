"""The IPFS node goes away and comes back: 503 ServiceUnavailable with Retry-After, metadata still served, nothing
half-written, and recovery without a restart of the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.nodes import start_local_node, stop_nodes
from tests.support.s3server import running_gateway


def test_ipfs_down_and_back(tmp_path: Path) -> None:
    node = start_local_node(tmp_path, "flaky")
    try:
        with running_gateway(tmp_path, node.api_url, ipfs_timeout=5.0) as gw:
            s3 = gw.client()
            s3.create_bucket(Bucket="flaky")
            s3.put_object(Bucket="flaky", Key="before", Body=b"stored while the node was up")
            node.stop()

            with pytest.raises(ClientError) as exc:
                s3.put_object(Bucket="flaky", Key="during", Body=b"x" * 10_000)
            assert exc.value.response["Error"]["Code"] == "ServiceUnavailable"
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert int(exc.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) > 0

            with pytest.raises(ClientError) as exc:
                s3.get_object(Bucket="flaky", Key="before")
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

            # Metadata needs no IPFS: listing and HEAD keep working.
            assert [o["Key"] for o in s3.list_objects_v2(Bucket="flaky")["Contents"]] == ["before"]
            assert s3.head_object(Bucket="flaky", Key="before")["ContentLength"] == 28
            assert gw.store.get_object("flaky", "during") is None

            node.start()
            assert s3.get_object(Bucket="flaky", Key="before")["Body"].read() == b"stored while the node was up"
            s3.put_object(Bucket="flaky", Key="during", Body=b"after recovery")
            assert s3.get_object(Bucket="flaky", Key="during")["Body"].read() == b"after recovery"
    finally:
        stop_nodes([node])


def test_memory_cache_serves_small_objects_while_ipfs_is_down(tmp_path: Path) -> None:
    node = start_local_node(tmp_path, "cached")
    try:
        with running_gateway(tmp_path, node.api_url, ipfs_timeout=5.0, cache_bytes=8 * 1024 * 1024) as gw:
            s3 = gw.client()
            s3.create_bucket(Bucket="cached")
            s3.put_object(Bucket="cached", Key="small", Body=b"s" * 1000)
            s3.put_object(Bucket="cached", Key="large", Body=b"L" * (2 * 1024 * 1024))
            node.stop()
            assert s3.get_object(Bucket="cached", Key="small")["Body"].read() == b"s" * 1000
            with pytest.raises(ClientError) as exc:
                s3.get_object(Bucket="cached", Key="large")
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        stop_nodes([node])
