"""Pins and cluster: pin summary, peers (free space, tags), reconcile and rebalance (dry run first), batches."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static

from appliance.errors import S3IpfsError
from tui.dialogs.confirm import ConfirmDialog
from tui.widgets.banner import DaemonBanner

__all__ = ["PinsScreen"]

_JSON = dict[str, Any]
_READ_ERROR = "cannot read pins: "
_REFRESH_SECONDS = 5.0  # peers and batches change slowly; the health screen carries the fast numbers


def _report_text(report: _JSON) -> str:
    """A pass report as `key: value` lines; lists are counted, not dumped (a pass may list thousands of CIDs)."""
    lines = []
    for key, value in report.items():
        if isinstance(value, list):
            lines.append(f"{key}: {len(value)}")
        elif isinstance(value, dict):
            lines.append(f"{key}: {json.dumps(value, sort_keys=True)[:200]}")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def shown_text(widget: Static) -> str:
    return str(widget.render())


def _free(value: object) -> str:
    if not isinstance(value, int | float) or value <= 0:
        return "-"
    return f"{value / 2**30:.1f} GiB"


class PinsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("c", "reconcile", "Reconcile"),
        Binding("b", "rebalance", "Rebalance"),
        Binding("x", "cancel_batch", "Cancel batch"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield DaemonBanner()
        yield Static("", id="pin-summary", markup=False)
        with Horizontal(id="pins-tables"):
            with Vertical():
                yield Label("Peers")
                yield DataTable(id="peers", cursor_type="row", zebra_stripes=True)
            with Vertical():
                yield Label("Batches")
                yield DataTable(id="batches", cursor_type="row", zebra_stripes=True)
        yield Static("", id="pin-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#peers", DataTable).add_columns("peer", "free", "tags", "error")
        self.query_one("#batches", DataTable).add_columns("id", "op", "state", "progress")
        self.refresh_data()
        self.set_interval(_REFRESH_SECONDS, self.refresh_data)

    def action_refresh_now(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        if not self.app.busy("pins"):  # type: ignore[attr-defined]
            self._refresh()

    @work(thread=True, exclusive=True, group="pins")
    def _refresh(self) -> None:
        api = self.app.api  # type: ignore[attr-defined]
        try:
            summary = api.pins_summary()
            peers = api.peers()
            batches = api.batches()
        except S3IpfsError as exc:
            self.app.call_from_thread(self._status, f"{_READ_ERROR}{exc.message}")
            return
        self.app.call_from_thread(self._show, summary, peers, batches)

    def _status(self, text: str) -> None:
        self.query_one("#pin-status", Static).update(text)

    def _show(self, summary: _JSON, peers: list[_JSON], batches: list[_JSON]) -> None:
        states = summary.get("states") or {}
        counts = ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "no pins tracked"
        self.query_one("#pin-summary", Static).update(
            f"pinner: {summary.get('pinner', '?')}   {counts}\n"
            f"outbox: {summary.get('outbox_depth', 0)}   completed: {summary.get('completed_total', 0)}"
            f"   errors: {summary.get('errors_total', 0)}"
        )
        table = self.query_one("#peers", DataTable)
        table.clear()
        for peer in peers:
            tags = ",".join(f"{k}={v}" for k, v in sorted((peer.get("tags") or {}).items()))
            name = str(peer.get("name") or peer.get("id") or "?")
            table.add_row(name[:24], _free(peer.get("freespace")), tags or "-", str(peer.get("error") or ""))
        batch_table = self.query_one("#batches", DataTable)
        batch_table.clear()
        for batch in batches:
            total = batch.get("total")
            progress = f"{batch.get('done', 0)}/{total if total is not None else '?'}"
            if batch.get("failed"):
                progress += f" ({batch['failed']} failed)"
            batch_id = str(batch.get("id", ""))
            batch_table.add_row(batch_id, batch.get("op", ""), batch.get("state", ""), progress, key=batch_id)
        if shown_text(self.query_one("#pin-status", Static)).startswith(_READ_ERROR):
            self._status("")  # the daemon answers again; other messages stay until replaced

    def action_reconcile(self) -> None:
        self._dry_run("reconcile")

    def action_rebalance(self) -> None:
        self._dry_run("rebalance")

    @work(thread=True, exclusive=True, group="pin-pass")
    def _dry_run(self, what: str) -> None:
        self.app.call_from_thread(self._status, f"{what}: dry run …")
        api = self.app.api  # type: ignore[attr-defined]
        try:
            report = getattr(api, what)(dry_run=True)
        except S3IpfsError as exc:
            self.app.call_from_thread(self._status, f"{what}: {exc.message}")
            return
        self.app.call_from_thread(self._offer_run, what, report)

    def _offer_run(self, what: str, report: _JSON) -> None:
        self._status(f"{what}: dry run done")

        def answered(run: bool | None) -> None:
            if run:
                self._run(what)
            else:
                self._status(f"{what}: not run")

        self.app.push_screen(ConfirmDialog(f"{what.capitalize()}: dry run", _report_text(report)), answered)

    @work(thread=True, exclusive=True, group="pin-pass")
    def _run(self, what: str) -> None:
        self.app.call_from_thread(self._status, f"{what}: running …")
        api = self.app.api  # type: ignore[attr-defined]
        try:
            report = getattr(api, what)(dry_run=False)
        except S3IpfsError as exc:
            self.app.call_from_thread(self._status, f"{what}: {exc.message}")
            return
        summary = _report_text(report).replace("\n", ", ")
        self.app.call_from_thread(self._status, f"{what}: done: {summary[:300]}")
        self.app.call_from_thread(self.refresh_data)

    def action_cancel_batch(self) -> None:
        table = self.query_one("#batches", DataTable)
        if table.row_count == 0:
            self._status("no batch to cancel")
            return
        batch_id = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

        def answered(cancel: bool | None) -> None:
            if cancel:
                self._cancel(batch_id)

        self.app.push_screen(
            ConfirmDialog("Cancel batch", f"Cancel batch {batch_id}?", action="Cancel batch"), answered
        )

    @work(thread=True, exclusive=True, group="pin-cancel")
    def _cancel(self, batch_id: str) -> None:
        api = self.app.api  # type: ignore[attr-defined]
        try:
            api.cancel_batch(batch_id)
            message = f"batch {batch_id} cancelled"
        except S3IpfsError as exc:
            message = f"cancel {batch_id}: {exc.message}"
        self.app.call_from_thread(self._status, message)
        self.app.call_from_thread(self.refresh_data)
