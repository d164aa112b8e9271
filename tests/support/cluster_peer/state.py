"""The peer's persistent "consensus" state: the pinset (Pin objects in order), known peer identities, pin sizes.

Written whole after every change (temp file + fsync + rename), so a killed peer restarts with the last pinset.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MAX_PINS", "PeerIdentity", "SharedState"]

MAX_PINS = 100_000  # bounded memory: the test peer refuses pins beyond this


@dataclass
class PeerIdentity:
    node: str
    ipfs_id: str
    id: str


@dataclass
class SharedState:
    path: Path
    pins: dict[str, dict[str, Any]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    identities: dict[str, PeerIdentity] = field(default_factory=dict)  # by node URL

    @classmethod
    def load(cls, path: Path) -> SharedState:
        state = cls(Path(path))
        try:
            data = json.loads(state.path.read_text())
        except FileNotFoundError:
            return state
        for pin in data.get("pins", []):
            state.pins[pin["cid"]] = pin
        state.sizes = {str(k): int(v) for k, v in data.get("sizes", {}).items() if k in state.pins}
        for ident in data.get("peers", []):
            state.identities[ident["node"]] = PeerIdentity(ident["node"], ident["ipfs_id"], ident["id"])
        return state

    def save(self) -> None:
        data = {
            "version": 1,
            "peers": [vars(ident) for ident in self.identities.values()],
            "pins": list(self.pins.values()),
            "sizes": {cid: size for cid, size in self.sizes.items() if cid in self.pins},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
