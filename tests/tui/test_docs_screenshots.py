"""The SVG screenshots docs/tui.md shows (Textual's own export), taken against the live daemon.

They go to tmp_path; with S3IPFS_UPDATE_DOCS=1 they replace docs/tui/*.svg (commit those)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.gateway import Gateway
from tests.tui.conftest import down_app, rows, shown, until
from tui.api import AdminApi
from tui.app import S3ipfsApp

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tui"


async def test_health_and_pins_screenshots(tui_gateway: Gateway, tmp_path: Path) -> None:
    docs = DOCS if os.environ.get("S3IPFS_UPDATE_DOCS") == "1" else tmp_path
    docs.mkdir(parents=True, exist_ok=True)
    app = S3ipfsApp(
        AdminApi(tui_gateway.admin_url, token_finder=lambda: tui_gateway.admin_token), watch_processes=False
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any(r[0] == "ipfs" for r in rows(app, "#components")))
        path = app.save_screenshot("health.svg", str(docs))
        assert Path(path).read_text().startswith("<svg")
        await pilot.press("2")
        await until(pilot, lambda: "pinner:" in shown(app, "#pin-summary"))
        app.save_screenshot("pins.svg", str(docs))
    down = down_app()
    async with down.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: down.daemon_error is not None)
        await pilot.pause()
        down.save_screenshot("daemon-down.svg", str(docs))
    assert {"health.svg", "pins.svg", "daemon-down.svg"} <= {p.name for p in docs.iterdir()}
