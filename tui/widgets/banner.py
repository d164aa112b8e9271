"""The daemon-down banner every screen shows; says how to start the daemon."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Static

__all__ = ["DaemonBanner"]


class DaemonBanner(Horizontal):
    """Hidden while the daemon answers; otherwise why not and a button (and `s`) to start it."""

    DEFAULT_CLASSES = "-hidden"

    def compose(self) -> ComposeResult:
        yield Static("", id="banner-text")
        yield Button("Start it (s)", id="banner-start", variant="warning")

    def on_mount(self) -> None:
        self.watch(self.app, "daemon_error", self._show, init=True)

    def _show(self, error: str | None) -> None:
        if error is None:
            self.add_class("-hidden")
            return
        self.query_one("#banner-text", Static).update(f"Daemon down: {error}")
        self.remove_class("-hidden")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.app.action_start_daemon()  # type: ignore[attr-defined]
