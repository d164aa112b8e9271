"""Fixtures for the metadata store tests: a fresh store with one bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.state import LmdbMetadataStore
from tests.unit.state.support import make_bucket


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "meta"


@pytest.fixture
def store(store_path: Path) -> Iterator[LmdbMetadataStore]:
    opened = LmdbMetadataStore(store_path, map_size=1 << 28)
    opened.create_bucket(make_bucket())
    yield opened
    opened.close()
