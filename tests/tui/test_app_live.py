"""The app against a live daemon (real admin API, real IPFS node): the banner when it stops, and starting it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.config import load_config
from tests.support.gateway import Gateway, stop_gateway, wait_ready
from tests.tui.conftest import DOWN_URL, down_app, rows, shown, until
from tui.api import AdminApi
from tui.app import S3ipfsApp


def _api(gw: Gateway) -> AdminApi:
    return AdminApi(gw.admin_url, token_finder=lambda: gw.admin_token)


async def test_header_says_daemon_up_and_palette_lists_screens(tui_gateway: Gateway) -> None:
    app = S3ipfsApp(_api(tui_gateway), watch_seconds=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.sub_title.endswith(": up"))
        assert app.daemon_error is None
        assert not app.screen.query_one("DaemonBanner").display
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Health", "Pins and cluster", "Start the daemon"} <= set(titles)
        await pilot.press("2")
        assert app.current_mode == "pins"
        await pilot.press("1")
        assert app.current_mode == "health"
        before = app.theme
        await pilot.press("t")
        assert app.theme != before


async def test_down_daemon_shows_banner_on_every_screen_and_the_command(tmp_path: Path) -> None:
    app = down_app(watch_seconds=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.daemon_error is not None)
        for mode in ("health", "pins"):
            await app.switch_mode(mode)
            await until(pilot, lambda: bool(app.screen.query_one("DaemonBanner").display))
            assert "cannot reach" in shown(app, "#banner-text")
            assert DOWN_URL in shown(app, "#banner-text")
        await pilot.press("s")  # not root under systemd here: it says what to run instead
        await pilot.pause()
        assert any("systemctl start s3ipfs" in str(n.message) for n in app._notifications)


def _start_command(gw: Gateway, pidfile: Path) -> list[str]:
    """What the TUI runs to start the daemon in this test: `s3ipfs serve` on the same config, in the background."""
    serve = f"{sys.executable} -m appliance.cli serve --config {gw.config_path}"
    return ["sh", "-c", f"{serve} >> {gw.log_path} 2>&1 & echo $! > {pidfile}"]


async def test_daemon_goes_down_and_the_tui_starts_it_again(tmp_path: Path, tui_gateway: Gateway) -> None:
    # A gateway of its own on a copy of the session one's config would need a second IPFS node; instead this test
    # stops the session gateway and the TUI brings it back on the same config (later tests see it running again).
    pidfile = tmp_path / "pid"
    app = S3ipfsApp(_api(tui_gateway), start_command=_start_command(tui_gateway, pidfile), watch_seconds=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.sub_title.endswith(": up"))
        await until(pilot, lambda: any(r[0] == "ipfs" and r[1] == "ok" for r in rows(app, "#components")))
        stop_gateway(tui_gateway)
        await until(pilot, lambda: bool(app.screen.query_one("DaemonBanner").display))
        assert app.sub_title.endswith(": DOWN")
        await until(pilot, lambda: [r[:2] for r in rows(app, "#components")] == [["gateway", "DOWN"]])
        await pilot.press("s")
        await until(pilot, lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=30)
        await until(pilot, lambda: app.daemon_error is None, timeout=60)
        assert not app.screen.query_one("DaemonBanner").display
    # Hand the restarted daemon to the session fixture so its teardown stops it.
    pid = int(pidfile.read_text())
    tui_gateway.process = _Adopted(pid)  # type: ignore[assignment]
    wait_ready(tui_gateway)


class _Adopted:
    """Enough of Popen for stop_gateway and wait_ready over a daemon this test did not spawn."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self.returncode = 0
        return self.returncode

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = time.monotonic() + (timeout or 30.0)
        while self.poll() is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 30.0)
            time.sleep(0.1)
        return self.returncode


def test_config_names_the_admin_port(tui_gateway: Gateway) -> None:
    config = load_config(tui_gateway.config_path, env={})
    assert AdminApi.from_config(config).base_url == tui_gateway.admin_url
