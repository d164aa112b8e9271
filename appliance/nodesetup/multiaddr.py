"""Multiaddresses in text form: parse, validate, split off the peer ID (enough for peer lists and listen addresses)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from appliance.nodesetup.identity import validate_peer_id

__all__ = ["Multiaddr", "parse_multiaddr", "parse_peer_addr"]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_NO_VALUE = frozenset({"quic", "quic-v1", "webtransport", "ws", "wss", "tls", "noise", "http", "https", "p2p-circuit"})
_WITH_VALUE = frozenset({"ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr", "tcp", "udp", "p2p", "ipfs", "sni"})


@dataclass(frozen=True)
class Multiaddr:
    """A validated multiaddress: `parts` as (protocol, value or "") pairs."""

    text: str
    parts: tuple[tuple[str, str], ...]

    @property
    def peer_id(self) -> str | None:
        """The trailing /p2p/<id>, if any."""
        if self.parts and self.parts[-1][0] in ("p2p", "ipfs"):
            return self.parts[-1][1]
        return None

    @property
    def transport_text(self) -> str:
        """The address without its trailing /p2p/<id>."""
        parts = self.parts[:-1] if self.peer_id else self.parts
        return "".join(f"/{name}/{value}" if value else f"/{name}" for name, value in parts)

    def protocols(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.parts)

    def __str__(self) -> str:
        return self.text


def _check_value(name: str, value: str, text: str) -> None:
    try:
        if name == "ip4":
            ipaddress.IPv4Address(value)
        elif name == "ip6":
            ipaddress.IPv6Address(value)
        elif name in ("tcp", "udp"):
            if not value.isdigit() or not 0 <= int(value) <= 65535:
                raise ValueError(f"port {value!r} is not 0-65535")
        elif name in ("p2p", "ipfs"):
            validate_peer_id(value)
        elif not _HOSTNAME.match(value):
            raise ValueError(f"{value!r} is not a host name")
    except ValueError as exc:
        raise ValueError(f"multiaddress {text!r}: /{name}/{value}: {exc}") from None


def parse_multiaddr(text: str) -> Multiaddr:
    """Parse and validate `text` (e.g. `/ip4/10.0.0.2/tcp/4001/p2p/12D3KooW…`); ValueError names what is wrong."""
    text = text.strip()
    if not text.startswith("/") or text.endswith("/") or "//" in text:
        raise ValueError(f"multiaddress {text!r} must look like /ip4/10.0.0.2/tcp/4001[/p2p/<peer id>]")
    tokens = text[1:].split("/")
    parts: list[tuple[str, str]] = []
    index = 0
    while index < len(tokens):
        name = tokens[index]
        if name in _NO_VALUE:
            parts.append((name, ""))
            index += 1
            continue
        if name not in _WITH_VALUE:
            raise ValueError(f"multiaddress {text!r}: unknown protocol {name!r}")
        if index + 1 >= len(tokens):
            raise ValueError(f"multiaddress {text!r}: /{name} needs a value")
        value = tokens[index + 1]
        _check_value(name, value, text)
        parts.append((name, value))
        index += 2
    if parts[0][0] not in ("ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr", "p2p", "ipfs"):
        raise ValueError(f"multiaddress {text!r} must start with /ip4, /ip6 or /dns*")
    names = [name for name, _ in parts]
    for name in ("p2p", "ipfs"):
        if name in names[:-1]:
            raise ValueError(f"multiaddress {text!r}: /{name}/<peer id> must come last")
    return Multiaddr(text, tuple(parts))


def parse_peer_addr(text: str, *, what: str) -> Multiaddr:
    """A peer's dialable TCP address ending in /p2p/<peer id> (a private network is TCP-only)."""
    addr = parse_multiaddr(text)
    if addr.peer_id is None:
        raise ValueError(f"{what} {text!r} must end with /p2p/<peer id> (the peer's ID)")
    names = addr.protocols()
    if names[0] not in ("ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr"):
        raise ValueError(f"{what} {text!r} must start with /ip4, /ip6 or /dns*")
    if names[0] != "dnsaddr" and "tcp" not in names:
        raise ValueError(f"{what} {text!r} needs a /tcp/<port>: a private network (swarm key) is TCP-only")
    return addr
