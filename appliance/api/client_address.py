"""The one resolved client address of a request: the TCP peer, or what trusted proxies say the client was.

`X-Forwarded-For` (and RFC 7239 `Forwarded: for=`) are believed only when the direct peer is a configured trusted
proxy; the list is then walked right to left past every trusted hop, and the first address that is not a trusted
proxy is the client. A malformed entry stops the walk at the last hop that could be believed (never a 4xx: a broken
proxy header must not lock clients out, and must not let a client choose its own address either).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["HeaderSource", "IPNetwork", "normalise", "parse_networks", "resolve"]

IPNetwork = IPv4Network | IPv6Network
HeaderSource = Mapping[str, str] | Iterable[tuple[bytes, bytes]]

_MAX_HOPS = 32  # a longer chain is not believed beyond this many hops (bounded work on hostile headers)
_MAX_HEADER = 8192


def _address(text: str) -> IPv4Address | IPv6Address | None:
    """An IP address from a header token or a peer string; IPv4-mapped IPv6 becomes IPv4. None when malformed."""
    text = text.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("["):  # "[2001:db8::1]" or "[2001:db8::1]:443"
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def normalise(peer_ip: str) -> str:
    """The canonical text of an address ('::ffff:10.0.0.1' -> '10.0.0.1'); the input unchanged if it is not one."""
    addr = _address(peer_ip)
    return str(addr) if addr is not None else peer_ip


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) as networks. ValueError names the bad entry (config validation shows it)."""
    out: list[IPNetwork] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=True))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32 ({exc})") from None
    return tuple(out)


def _header_values(headers: HeaderSource, wanted: str) -> list[str]:
    """Every value of header `wanted` (lower case), in order, from a mapping or from ASGI raw header pairs."""
    values: list[str] = []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        text_name = name.decode("latin-1") if isinstance(name, bytes) else name
        if text_name.lower() == wanted:
            values.append(value.decode("latin-1") if isinstance(value, bytes) else value)
    return values


def _forwarded_for(values: list[str]) -> list[str] | None:
    """The `for=` nodes of RFC 7239 Forwarded headers in order; None when there is no such header."""
    if not values:
        return None
    nodes: list[str] = []
    for value in values:
        for element in value.split(","):
            found = ""
            for pair in element.split(";"):
                name, _, token = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    found = token.strip().strip('"')
            nodes.append(found)  # an element without for= is an unknown hop: it stops the walk
    return nodes


def _chain(headers: HeaderSource) -> list[str] | None:
    """The client chain the proxies reported, leftmost = origin. X-Forwarded-For wins over Forwarded when both
    are present (it is what nginx/HAProxy set by default)."""
    xff = _header_values(headers, "x-forwarded-for")
    if xff:
        joined = ",".join(xff)
        if len(joined) > _MAX_HEADER:
            return []
        return [part for part in joined.split(",")]
    forwarded = _header_values(headers, "forwarded")
    if forwarded and sum(len(v) for v in forwarded) > _MAX_HEADER:
        return []
    return _forwarded_for(forwarded)


def _trusted(addr: IPv4Address | IPv6Address, proxies: Sequence[IPNetwork]) -> bool:
    return any(addr.version == net.version and addr in net for net in proxies)


def resolve(peer_ip: str, headers: HeaderSource, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The client address of a request whose TCP peer is `peer_ip` (canonical text; '' when unknown)."""
    peer = _address(peer_ip) if peer_ip else None
    if peer is None:
        return peer_ip or ""
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    chain = _chain(headers)
    if not chain:
        return str(peer)
    client = peer
    for hop in list(reversed(chain))[:_MAX_HOPS]:
        addr = _address(hop)
        if addr is None:
            break  # garbage (or an obfuscated node): believe no further than the last good hop
        client = addr
        if not _trusted(addr, trusted_proxies):
            break
    return str(client)
