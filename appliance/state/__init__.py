"""The metadata store adapter: LMDB, opened once per process after it starts."""

from __future__ import annotations

from appliance.state.lmdb_store import LmdbMetadataStore

__all__ = ["LmdbMetadataStore"]
