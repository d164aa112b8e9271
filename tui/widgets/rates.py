"""A labelled sparkline of a recent series (request rate, error rate, latency)."""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

__all__ = ["RateLine"]

_POINTS = 60


class RateLine(Vertical):
    """Keeps the last 60 values; the label shows the newest with its unit."""

    def __init__(self, title: str, unit: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._title = title
        self._unit = unit
        self.values: deque[float] = deque(maxlen=_POINTS)

    def compose(self) -> ComposeResult:
        yield Label(f"{self._title}: -", classes="rate-label")
        yield Sparkline([], summary_function=max)

    def push(self, value: float) -> None:
        self.values.append(value)
        self.query_one(Label).update(f"{self._title}: {value:.2f} {self._unit}")
        self.query_one(Sparkline).data = list(self.values)
