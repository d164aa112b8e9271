"""Multiaddress parsing: what a peer list and a listen address may hold, and clear errors for the rest."""

from __future__ import annotations

import pytest

from appliance.nodesetup.identity import generate_identity
from appliance.nodesetup.multiaddr import parse_multiaddr, parse_peer_addr

PEER = generate_identity().peer_id


@pytest.mark.parametrize(
    "text",
    [
        "/ip4/10.0.0.2/tcp/4001",
        "/ip6/::/tcp/4001",
        "/ip4/0.0.0.0/udp/4001/quic-v1",
        "/dns4/ipfs1.lan/tcp/4001",
        f"/ip4/10.0.0.2/tcp/4001/p2p/{PEER}",
        f"/p2p/{PEER}",
    ],
)
def test_valid(text: str) -> None:
    assert parse_multiaddr(text).text == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10.0.0.2:4001", "must look like"),
        ("/ip4/10.0.0.300/tcp/4001", "10.0.0.300"),
        ("/ip4/10.0.0.2/tcp/99999", "0-65535"),
        ("/ip4/10.0.0.2/tcp", "needs a value"),
        ("/ip4/10.0.0.2/sctp/1", "unknown protocol"),
        ("/ip4/10.0.0.2/tcp/4001/p2p/notapeer", "peer ID"),
        ("/tcp/4001", "must start with"),
        ("/ip4/10.0.0.2//tcp/4001", "must look like"),
        ("/dns4/bad_host!/tcp/1", "host name"),
        (f"/p2p/{PEER}/ip4/10.0.0.2", "must come last"),
    ],
)
def test_invalid(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_multiaddr(text)


def test_peer_address_splits_off_the_peer_id() -> None:
    addr = parse_peer_addr(f"/ip4/10.0.0.2/tcp/4001/p2p/{PEER}", what="--peer")
    assert addr.peer_id == PEER
    assert addr.transport_text == "/ip4/10.0.0.2/tcp/4001"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/ip4/10.0.0.2/tcp/4001", "must end with /p2p/"),
        (f"/ip4/10.0.0.2/udp/4001/quic-v1/p2p/{PEER}", "TCP-only"),
        (f"/p2p/{PEER}", "must start with"),
    ],
)
def test_peer_address_needs_tcp_and_an_id(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        parse_peer_addr(text, what="--peer")
    assert "--peer" in str(info.value)
