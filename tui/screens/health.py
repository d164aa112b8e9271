"""The health dashboard: components from /ready, S3 rates from /metrics, the appliance's processes (psutil)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker

from appliance.errors import S3IpfsError
from tui.api import Ready
from tui.metrics import Scrape, parse, rates
from tui.procs import ProcessStats, ProcessWatch
from tui.widgets.banner import DaemonBanner
from tui.widgets.rates import RateLine

__all__ = ["HealthScreen"]

_MIN_REFRESH, _MAX_REFRESH = 0.5, 60.0


@dataclass(frozen=True, slots=True)
class _Sample:
    ready: Ready | None
    scrape: Scrape | None
    procs: ProcessStats | None
    error: str | None


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _up(value: float) -> str:
    return "up" if value else "DOWN"


def _count(value: float) -> str:
    return f"{value:.0f}"


def _seconds(value: float) -> str:
    return f"{value:.0f} s"


# gauge name -> (label, how to show it); the order is the display order
_GAUGES: dict[str, tuple[str, Callable[[float], str]]] = {
    "s3ipfs_ipfs_up": ("IPFS node", _up),
    "s3ipfs_cluster_up": ("cluster", _up),
    "s3ipfs_pin_outbox_depth": ("pin outbox", _count),
    "s3ipfs_pin_outbox_oldest_age_seconds": ("oldest pin job", _seconds),
    "s3ipfs_unpin_queue_depth": ("unpin queue", _count),
    "s3ipfs_damaged_blocks": ("damaged blocks", _count),
    "s3ipfs_lmdb_map_used_bytes": ("LMDB used", _size),
    "s3ipfs_state_dir_free_bytes": ("state disk free", _size),
    "s3ipfs_ipfs_repo_size_bytes": ("IPFS repo", _size),
}


def _gauge_lines(gauges: dict[str, float]) -> list[str]:
    return [f"{label:>16}: {show(gauges[name])}" for name, (label, show) in _GAUGES.items() if name in gauges]


class HealthScreen(Screen[None]):
    """Refreshes on a timer (adjustable with + and -); one worker at a time, so a slow daemon never piles up calls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("plus,equals_sign", "interval(0.5)", "Slower"),
        Binding("minus", "interval(-0.5)", "Faster"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._watch: ProcessWatch | None = None
        self._last: Scrape | None = None
        self._timer: Timer | None = None
        self._busy = False
        self._rows: list[tuple[str, str, str]] = []
        self._texts: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield DaemonBanner()
        with Horizontal(id="health-top"):
            yield DataTable(id="components", cursor_type="row", zebra_stripes=True)
            with Vertical(id="rates"):
                yield RateLine("requests", "/s", id="rate-requests")
                yield RateLine("errors", "/s", id="rate-errors")
                yield RateLine("latency", "ms", id="rate-latency")
        with Horizontal(id="health-bottom"):
            yield Static("", id="gauges", markup=False)
            yield Static("", id="processes", markup=False)
        yield Static("", id="refresh-line")
        yield Footer()

    def on_mount(self) -> None:
        if getattr(self.app, "watch_processes", True):
            self._watch = ProcessWatch()
        table = self.query_one("#components", DataTable)
        table.add_columns("component", "state", "detail")
        self._restart_timer()
        self.refresh_data()

    @property
    def interval(self) -> float:
        return float(getattr(self.app, "refresh_seconds", 1.0))

    def _restart_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(self.interval, self.refresh_data)
        self.query_one("#refresh-line", Static).update(f"refresh every {self.interval:.1f} s  (+/- to change)")

    def action_interval(self, step: float) -> None:
        value = min(_MAX_REFRESH, max(_MIN_REFRESH, self.interval + step))
        self.app.refresh_seconds = value  # type: ignore[attr-defined]
        self._restart_timer()

    def action_refresh_now(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        # A thread worker cannot be interrupted: while one is still waiting on a slow daemon, skip the tick
        # rather than start another (a wedged daemon must not pile up threads).
        if not self._busy:
            self._busy = True
            self._refresh()

    @work(thread=True, exclusive=True, group="health")
    def _refresh(self) -> None:
        api = self.app.api  # type: ignore[attr-defined]
        ready: Ready | None = None
        scrape: Scrape | None = None
        error: str | None = None
        try:
            ready = api.ready()
            scrape = parse(api.metrics_text(), time.monotonic())
        except S3IpfsError as exc:
            error = exc.message
        procs = self._watch.sample() if self._watch is not None else None
        self.app.call_from_thread(self._show, _Sample(ready, scrape, procs, error))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "health" and event.worker.is_finished:
            self._busy = False

    def _set(self, selector: str, text: str) -> None:
        widget = self.query_one(selector, Static)
        if self._texts.get(selector) != text:  # an unchanged text would still cost a repaint
            self._texts[selector] = text
            widget.update(text)

    def _show(self, sample: _Sample) -> None:
        if sample.ready is None:
            table_rows: list[tuple[str, str, str]] = [("gateway", "DOWN", sample.error or "")]
        else:
            table_rows = [("gateway", "ready" if sample.ready.ready else "NOT READY", "")]
            table_rows += [(name, "ok" if ok else "FAIL", reason) for name, ok, reason in sample.ready.components]
        if table_rows != self._rows:
            self._rows = table_rows
            table = self.query_one("#components", DataTable)
            table.clear()
            for row in table_rows:
                table.add_row(*row)
        if sample.scrape is not None:
            if self._last is not None:
                now = rates(self._last, sample.scrape)
                self.query_one("#rate-requests", RateLine).push(now.requests_per_s)
                self.query_one("#rate-errors", RateLine).push(now.errors_per_s)
                self.query_one("#rate-latency", RateLine).push(now.latency_ms)
            self._last = sample.scrape
            self._set("#gauges", "\n".join(_gauge_lines(sample.scrape.gauges)))
        p = sample.procs
        if p is None:
            self._set("#processes", "process stats off")
            return
        self._set(
            "#processes",
            f"processes: {p.processes}\ncpu: {p.cpu_percent:.1f} %\nmemory: {_size(p.rss_bytes)}\n"
            f"disk r/w: {_size(p.read_bytes)} / {_size(p.write_bytes)}\n"
            f"net tx/rx: {_size(p.net_sent)} / {_size(p.net_recv)}",
        )
