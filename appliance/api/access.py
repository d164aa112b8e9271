"""Who is calling a listener, and may they: the resolved client address and the CIDR allow/deny lists, checked
before authentication on the S3 and the admin API alike. The resolved address is left in the ASGI scope under
`CLIENT_KEY` for everything later in the request (authorization's aws:SourceIp, logs, audit)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from appliance.api.client_address import IPNetwork, normalise, parse_networks, resolve
from appliance.config import AdminConfig, S3Config

__all__ = ["CLIENT_KEY", "ListenerAccess", "client_ip"]

CLIENT_KEY = "s3ipfs.client"  # scope key of the resolved client address
_CACHE = 4096  # decisions remembered per process (address -> allowed); cleared when full


def client_ip(scope: Mapping[str, Any]) -> str:
    """The resolved client address of the request (after ListenerAccess.admit); the TCP peer as a fallback."""
    found = scope.get(CLIENT_KEY)
    if isinstance(found, str):
        return found
    peer = scope.get("client")
    return str(peer[0]) if peer else ""


@dataclass(frozen=True, slots=True)
class ListenerAccess:
    """One listener's trusted proxies and allow/deny lists (empty allow = everyone; deny wins)."""

    trusted_proxies: tuple[IPNetwork, ...] = ()
    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()
    _decided: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_config(cls, listener: S3Config | AdminConfig) -> ListenerAccess:
        return cls(
            trusted_proxies=parse_networks(listener.trusted_proxies),
            allow=parse_networks(listener.allow_cidrs),
            deny=parse_networks(listener.deny_cidrs),
        )

    def admit(self, scope: Mapping[str, Any]) -> tuple[str, bool]:
        """(resolved client address, allowed?) for an ASGI scope; records the address in the scope."""
        peer = scope.get("client")
        peer_ip = str(peer[0]) if peer else ""
        if self.trusted_proxies:
            client = resolve(peer_ip, scope.get("headers") or (), self.trusted_proxies)
        else:
            client = normalise(peer_ip) if peer_ip.startswith("::ffff:") else peer_ip
        cast(dict[str, Any], scope)[CLIENT_KEY] = client  # ASGI scopes are plain dicts
        return client, self.permits(client)

    def permits(self, address: str) -> bool:
        if not self.allow and not self.deny:
            return True
        known = self._decided.get(address)
        if known is None:
            known = self._decide(address)
            if len(self._decided) >= _CACHE:
                self._decided.clear()
            self._decided[address] = known
        return known

    def _decide(self, address: str) -> bool:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return not self.allow  # an unknown peer (a Unix socket) passes only an open listener's deny list
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr.version == net.version and addr in net for net in self.deny):
            return False
        return not self.allow or any(addr.version == net.version and addr in net for net in self.allow)
