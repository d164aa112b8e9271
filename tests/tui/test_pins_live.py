"""The pins and cluster screen against a live daemon: summary, peers, reconcile (dry run, then run), rebalance."""

from __future__ import annotations

import boto3

from tests.support.gateway import Gateway
from tests.tui.conftest import rows, shown, until
from tui.api import AdminApi
from tui.app import S3ipfsApp
from tui.dialogs.confirm import ConfirmDialog


def _put_object(gw: Gateway) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=gw.secret_key,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="tui-pins")
    s3.put_object(Bucket="tui-pins", Key="a", Body=b"pinned by the tui test")


async def test_summary_and_peers(tui_gateway: Gateway) -> None:
    _put_object(tui_gateway)
    app = S3ipfsApp(
        AdminApi(tui_gateway.admin_url, token_finder=lambda: tui_gateway.admin_token), watch_processes=False
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await until(pilot, lambda: "pinner:" in shown(app, "#pin-summary"))
        summary = shown(app, "#pin-summary")
        assert "outbox:" in summary and "no pins tracked" not in summary
        await until(pilot, lambda: len(rows(app, "#peers")) >= 1)


async def test_reconcile_dry_run_then_run(tui_gateway: Gateway) -> None:
    app = S3ipfsApp(
        AdminApi(tui_gateway.admin_url, token_finder=lambda: tui_gateway.admin_token), watch_processes=False
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # the dry run's report, then declined: nothing runs
        await until(pilot, lambda: "reconcile: not run" in shown(app, "#pin-status"))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await until(pilot, lambda: "reconcile: done" in shown(app, "#pin-status"))


async def test_rebalance_without_a_cluster_says_why(tui_gateway: Gateway) -> None:
    app = S3ipfsApp(
        AdminApi(tui_gateway.admin_url, token_finder=lambda: tui_gateway.admin_token), watch_processes=False
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.press("b")
        await until(pilot, lambda: "rebalance:" in shown(app, "#pin-status"))
        assert "cluster" in shown(app, "#pin-status")
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("x")  # no batch has run: nothing to cancel, and it says so
        await until(pilot, lambda: "no batch to cancel" in shown(app, "#pin-status"))
