"""`s3ipfs tui` argument handling (the app itself is tested under tests/tui)."""

from __future__ import annotations

import pytest

from appliance.cli.main import main


def test_setup_is_not_available_yet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tui", "--setup"]) == 2
    assert "not available yet" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0.1", "61", "nan", "fast"])
def test_refresh_out_of_range_is_a_usage_error(value: str) -> None:
    assert main(["tui", "--refresh", value]) == 2


def test_a_missing_config_is_a_config_error(tmp_path: object) -> None:
    assert main(["tui", "--config", "/nonexistent/s3ipfs.yaml"]) == 2
