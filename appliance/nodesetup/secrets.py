"""The two shared network secrets: Kubo's swarm.key (private network PSK) and the IPFS-Cluster secret."""

from __future__ import annotations

import re
import secrets

__all__ = ["format_swarm_key", "generate_secret", "parse_cluster_secret", "parse_swarm_key"]

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_SWARM_HEADER = "/key/swarm/psk/1.0.0/"


def generate_secret() -> str:
    """32 random bytes as 64 lowercase hex characters."""
    return secrets.token_hex(32)


def format_swarm_key(key_hex: str) -> str:
    """The swarm.key file text for a 64-hex PSK (the format `ipfs-swarm-key-gen` writes)."""
    if not _HEX64.match(key_hex):
        raise ValueError("a swarm key is 64 hex characters (32 bytes)")
    return f"{_SWARM_HEADER}\n/base16/\n{key_hex.lower()}\n"


def parse_swarm_key(text: str) -> str:
    """The 64-hex PSK in a swarm.key file (`/key/swarm/psk/1.0.0/`, `/base16/`, key), or a bare 64-hex line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) == 1 and _HEX64.match(lines[0]):
        return lines[0].lower()
    if len(lines) != 3 or lines[0] != _SWARM_HEADER:
        raise ValueError(f"not a swarm key file: expected the lines {_SWARM_HEADER}, /base16/ and 64 hex characters")
    if lines[1] != "/base16/":
        raise ValueError(f"swarm key encoding {lines[1]!r} is not supported: use /base16/")
    if not _HEX64.match(lines[2]):
        raise ValueError(f"the swarm key is {len(lines[2])} characters, not 64 hex characters (32 bytes)")
    return lines[2].lower()


def parse_cluster_secret(text: str) -> str:
    """The cluster secret in a file: 64 hex characters (32 bytes), surrounding whitespace ignored."""
    value = text.strip()
    if not _HEX64.match(value):
        shown = f"{len(value)} characters" if value else "empty"
        raise ValueError(f"a cluster secret is 64 hex characters (32 bytes); this one is {shown}")
    return value.lower()
