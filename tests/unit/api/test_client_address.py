"""resolve(): X-Forwarded-For / Forwarded believed only from trusted proxies, walked right to left."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.api.client_address import normalise, parse_networks, resolve

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


def test_untrusted_peer_ignores_the_header() -> None:
    assert resolve("203.0.113.9", {"X-Forwarded-For": "198.51.100.1"}, PROXIES) == "203.0.113.9"


def test_no_trusted_proxies_configured() -> None:
    assert resolve("10.1.1.1", {"X-Forwarded-For": "198.51.100.1"}, ()) == "10.1.1.1"


def test_trusted_peer_gives_the_forwarded_client() -> None:
    assert resolve("10.1.1.1", {"X-Forwarded-For": "198.51.100.1"}, PROXIES) == "198.51.100.1"


def test_walks_right_to_left_past_trusted_hops() -> None:
    # The client forged the leftmost entry; the first untrusted hop from the right is the real client.
    headers = {"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.2.2.2"}
    assert resolve("10.1.1.1", headers, PROXIES) == "198.51.100.7"


def test_every_hop_trusted_gives_the_leftmost() -> None:
    assert resolve("10.1.1.1", {"X-Forwarded-For": "10.9.9.9, 10.2.2.2"}, PROXIES) == "10.9.9.9"


def test_several_header_lines_are_one_list() -> None:
    raw = [(b"x-forwarded-for", b"198.51.100.7"), (b"X-Forwarded-For", b"10.2.2.2")]
    assert resolve("10.1.1.1", raw, PROXIES) == "198.51.100.7"


@pytest.mark.parametrize(
    "value", ["", "garbage", "1.2.3.4.5", "unknown", ",,,", "999.1.1.1", "[::1", "x" * 10000, "1.2.3.4%eth0x:1:2"]
)
def test_malformed_header_never_lets_the_client_choose(value: str) -> None:
    got = resolve("10.1.1.1", {"X-Forwarded-For": value}, PROXIES)
    assert got == "10.1.1.1"


def test_garbage_in_the_middle_stops_at_the_last_believable_hop() -> None:
    headers = {"X-Forwarded-For": "198.51.100.7, bogus, 10.2.2.2"}
    assert resolve("10.1.1.1", headers, PROXIES) == "10.2.2.2"


def test_ports_and_brackets() -> None:
    assert resolve("10.1.1.1", {"X-Forwarded-For": "198.51.100.7:5555"}, PROXIES) == "198.51.100.7"
    assert resolve("10.1.1.1", {"X-Forwarded-For": "[2001:db8::5]:443"}, PROXIES) == "2001:db8::5"


def test_forwarded_header() -> None:
    headers = {"Forwarded": 'for=198.51.100.7;proto=https, for="[fd00::1]:80"'}
    assert resolve("10.1.1.1", headers, PROXIES) == "198.51.100.7"
    assert resolve("10.1.1.1", {"Forwarded": "for=_hidden, for=10.2.2.2"}, PROXIES) == "10.2.2.2"
    assert resolve("10.1.1.1", {"Forwarded": "proto=https"}, PROXIES) == "10.1.1.1"


def test_x_forwarded_for_wins_over_forwarded() -> None:
    headers = {"Forwarded": "for=192.0.2.1", "X-Forwarded-For": "198.51.100.7"}
    assert resolve("10.1.1.1", headers, PROXIES) == "198.51.100.7"


def test_ipv4_mapped_peer_is_ipv4() -> None:
    assert resolve("::ffff:10.1.1.1", {"X-Forwarded-For": "198.51.100.7"}, PROXIES) == "198.51.100.7"
    assert normalise("::ffff:192.0.2.1") == "192.0.2.1"
    assert resolve("::ffff:192.0.2.1", {}, ()) == "192.0.2.1"


def test_unknown_peer() -> None:
    assert resolve("", {"X-Forwarded-For": "198.51.100.7"}, PROXIES) == ""
    assert resolve("not-an-ip", {}, PROXIES) == "not-an-ip"


def test_parse_networks_names_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.1/8"):
        parse_networks(["10.0.0.1/8"])
    with pytest.raises(ValueError, match="nope"):
        parse_networks(["nope"])
    assert parse_networks(["192.0.2.1"]) == (ipaddress.ip_network("192.0.2.1/32"),)


_ips = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)


@given(peer=_ips, header=st.text(max_size=300))
def test_untrusted_peer_is_always_the_answer(peer: str, header: str) -> None:
    untrusted = parse_networks(["10.0.0.0/8"])
    if ipaddress.ip_address(peer) in untrusted[0]:
        return
    assert resolve(peer, {"X-Forwarded-For": header, "Forwarded": header}, untrusted) == normalise(peer)


@given(chain=st.lists(_ips, max_size=6), header=st.text(max_size=200))
def test_answer_is_the_peer_or_an_entry_of_the_chain(chain: list[str], header: str) -> None:
    headers = [(b"x-forwarded-for", ", ".join(chain).encode()), (b"x-forwarded-for", header.encode("utf-8"))]
    got = resolve("10.0.0.1", headers, PROXIES)
    ipaddress.ip_address(got)  # always an address
    entries = [*chain, *header.split(",")]
    assert got == "10.0.0.1" or any(got == normalise(_strip_port(e)) for e in entries)


def _strip_port(entry: str) -> str:
    entry = entry.strip()
    if entry.startswith("["):
        return entry[1 : entry.find("]")]
    return entry.split(":", 1)[0] if entry.count(":") == 1 else entry
