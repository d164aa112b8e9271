"""IAM live: a real gateway (`s3ipfs serve`, two S3 worker processes, the admin API in the main process) on a real
js-ipfs node. A user and key created with the CLI work with boto3 at once; a disabled key is refused on its next
request, in whichever worker serves it; a rotation with a grace keeps both keys working until the grace ends, then
only the new one; the root key rotates the same way. No secret reaches the gateway's log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from appliance.cli.main import main
from appliance.ipfsconn.devnode import LocalNode
from tests.integration.pinning.gateway_cluster import wait_until
from tests.support.gateway import Gateway, start_gateway, stop_gateway
from tests.support.nodes import start_local_nodes, stop_nodes

pytestmark = pytest.mark.live
GRACE = 3  # seconds: short, so the test sees the old key stop


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    [started] = start_local_nodes(tmp_path_factory.mktemp("iam-node"), 1)
    try:
        yield started
    finally:
        stop_nodes([started])


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, node: LocalNode) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("iam-gw"), node, workers=2)
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


def client(gw: Gateway, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def iam(gw: Gateway, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    """Run `s3ipfs iam ARGV` against the gateway; its name=value lines as a dict."""
    capsys.readouterr()
    assert main(["iam", *argv, "--config", str(gw.config_path)]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def refused(s3: Any) -> str | None:
    """The error code of a ListBuckets with this client, None when it succeeds."""
    try:
        s3.list_buckets()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def test_user_key_disable_and_rotation(gw: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    iam(gw, capsys, "user", "create", "alice")
    iam(gw, capsys, "policy", "attach", "readwrite", "--user", "alice")
    first = iam(gw, capsys, "key", "create", "alice")
    alice = client(gw, first["access_key"], first["secret_key"])
    alice.create_bucket(Bucket="alice-bucket")  # at once: no wait for any cache
    alice.put_object(Bucket="alice-bucket", Key="k", Body=b"hello")
    # Several requests so both workers answer with the key.
    for _ in range(6):
        assert alice.get_object(Bucket="alice-bucket", Key="k")["Body"].read() == b"hello"

    iam(gw, capsys, "key", "disable", first["access_key"])
    for _ in range(6):  # the very next request, whichever worker takes it
        assert refused(alice) in ("InvalidAccessKeyId", "AccessDenied")
    iam(gw, capsys, "key", "enable", first["access_key"])
    assert refused(alice) is None

    second = iam(gw, capsys, "key", "rotate", "alice", "--grace", f"{GRACE}s")
    rotated = client(gw, second["access_key"], second["secret_key"])
    assert refused(rotated) is None
    assert refused(alice) is None  # the old key during its grace
    wait_until(lambda: refused(alice) is not None, "the old key refused after its grace", timeout=GRACE + 30)
    assert refused(alice) in ("InvalidAccessKeyId", "AccessDenied")
    assert rotated.get_object(Bucket="alice-bucket", Key="k")["Body"].read() == b"hello"

    capsys.readouterr()
    assert main(["iam", "key", "list", "alice", "--json", "--config", str(gw.config_path)]) == 0
    keys = json.loads(capsys.readouterr().out)["access_keys"]
    assert [k["access_key"] for k in keys] == [second["access_key"]] or second["access_key"] in {
        k["access_key"] for k in keys
    }
    iam(gw, capsys, "user", "delete", "alice")
    assert refused(rotated) in ("InvalidAccessKeyId", "AccessDenied")

    log = Path(gw.log_path).read_text(errors="replace")
    for secret in (first["secret_key"], second["secret_key"]):
        assert secret not in log


def test_root_rotation(gw: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    old = client(gw, gw.access_key, gw.secret_key)
    assert refused(old) is None
    new_pair = iam(gw, capsys, "root", "rotate", "--grace", f"{GRACE}s")
    new = client(gw, new_pair["access_key"], new_pair["secret_key"])
    wait_until(lambda: refused(new) is None, "the new root key accepted", timeout=10)
    assert refused(old) is None  # still in its grace
    wait_until(lambda: refused(old) is not None, "the old root key refused after its grace", timeout=GRACE + 30)
    assert refused(new) is None
    assert new_pair["secret_key"] not in Path(gw.log_path).read_text(errors="replace")


def test_policies_from_the_store_decide_at_once(gw: Gateway, capsys: pytest.CaptureFixture[str]) -> None:
    iam(gw, capsys, "user", "create", "reader")
    pair = iam(gw, capsys, "key", "create", "reader")
    reader = client(gw, pair["access_key"], pair["secret_key"])
    assert refused(reader) == "AccessDenied"  # no policy: authenticated, allowed nothing
    iam(gw, capsys, "group", "create", "readers")
    iam(gw, capsys, "group", "add-user", "readers", "reader")
    iam(gw, capsys, "policy", "attach", "readonly", "--group", "readers")
    assert refused(reader) is None  # the group's policy applies on the next request
    with pytest.raises(ClientError) as caught:
        reader.create_bucket(Bucket="reader-bucket")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    iam(gw, capsys, "group", "remove-user", "readers", "reader")
    assert refused(reader) == "AccessDenied"
