"""SVG snapshots of each screen at 80x24 and 120x40, with the daemon down (the same on every run)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import down_app, settled

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
@pytest.mark.parametrize("mode", ["health", "pins"])
def test_screen(snap_compare: Any, mode: str, size: tuple[int, int]) -> None:
    app = down_app()
    wait = settled(app)

    async def run_before(pilot: Any) -> None:
        await app.switch_mode(mode)
        await wait(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=size)


def test_light_theme(snap_compare: Any) -> None:
    app = down_app()
    wait = settled(app)

    async def run_before(pilot: Any) -> None:
        await pilot.press("t")
        await wait(pilot)

    assert snap_compare(app, run_before=run_before, terminal_size=(80, 24))
