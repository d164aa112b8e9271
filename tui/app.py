"""The s3ipfs operator console: screens (health, pins and cluster), daemon watch, themes, command palette."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

from appliance.errors import S3IpfsError
from tui.api import AdminApi
from tui.screens.health import HealthScreen
from tui.screens.pins import PinsScreen

__all__ = ["S3ipfsApp", "systemd_start_command"]

_WATCH_SECONDS = 2.0  # how often the daemon's /health is probed; cheap, and the banner appears within this
_START_TIMEOUT = 60.0


def systemd_start_command() -> list[str] | None:
    """`systemctl start s3ipfs` when we may run it (root on a systemd host), else None (the banner shows it)."""
    if os.geteuid() == 0 and Path("/run/systemd/system").is_dir():
        return ["systemctl", "start", "s3ipfs"]
    return None


class S3ipfsApp(App[None]):
    """Keyboard-first; every screen shows the daemon-down banner; slow calls run in thread workers."""

    CSS_PATH = "app.tcss"
    TITLE = "s3ipfs"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {"health": HealthScreen, "pins": PinsScreen}
    DEFAULT_MODE = "health"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('health')", "Health"),
        Binding("2", "switch_mode('pins')", "Pins"),
        Binding("s", "start_daemon", "Start daemon", show=False),
        Binding("t", "toggle_dark", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    # None while the daemon answers, else why not; screens and the banner watch it.
    daemon_error: reactive[str | None] = reactive[str | None](None)

    def __init__(
        self,
        api: AdminApi,
        *,
        start_command: Sequence[str] | None = None,
        refresh_seconds: float = 1.0,
        watch_seconds: float = _WATCH_SECONDS,
        watch_processes: bool = True,
    ) -> None:
        super().__init__()
        self.api = api
        self.start_command = list(start_command) if start_command else None
        self.refresh_seconds = refresh_seconds
        self._watch_seconds = watch_seconds
        self.watch_processes = watch_processes  # off in snapshot tests: other processes' numbers vary
        self.sub_title = f"daemon at {api.base_url}: checking"

    def on_mount(self) -> None:
        self.check_daemon()
        self.set_interval(self._watch_seconds, self.check_daemon)

    def on_unmount(self) -> None:
        self.api.close()

    def busy(self, group: str) -> bool:
        """A thread worker of `group` still runs (they cannot be interrupted: skip a tick rather than pile up)."""
        return any(worker.group == group and worker.is_running for worker in self.workers)

    def check_daemon(self) -> None:
        if not self.busy("daemon-watch"):
            self._probe()

    @work(thread=True, exclusive=True, group="daemon-watch")
    def _probe(self) -> None:
        try:
            self.api.health()
            error: str | None = None
        except S3IpfsError as exc:
            error = exc.message
        self.call_from_thread(self._set_daemon_error, error)

    def _set_daemon_error(self, error: str | None) -> None:
        self.daemon_error = error
        self.sub_title = f"daemon at {self.api.base_url}: " + ("DOWN" if error else "up")

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_start_daemon(self) -> None:
        command = self.start_command
        if command is None:
            self.notify(
                "Start the daemon with: sudo systemctl start s3ipfs  (or `s3ipfs serve --config …`)",
                title="Daemon down",
                severity="warning",
                timeout=15,
            )
            return
        self.notify(f"Starting: {' '.join(command)}", timeout=5)
        self._start(command)

    @work(thread=True, exclusive=True, group="daemon-start")
    def _start(self, command: list[str]) -> None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=_START_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.call_from_thread(self.notify, f"could not start the daemon: {exc}", severity="error")
            return
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[-300:]
            message = f"`{' '.join(command)}` failed ({done.returncode}): {detail}; see journalctl -u s3ipfs"
            self.call_from_thread(self.notify, message, severity="error", timeout=15)
        self.call_from_thread(self.check_daemon)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Health", "Components, rates and processes", lambda: self.switch_mode("health"))
        yield SystemCommand(
            "Pins and cluster", "Peers, reconcile, rebalance, batches", lambda: self.switch_mode("pins")
        )
        yield SystemCommand("Start the daemon", "systemctl start s3ipfs, or show how", self.action_start_daemon)
        yield SystemCommand("Toggle light/dark", "Switch the theme", self.action_toggle_dark)
