"""swarm.key and cluster secret: formats, parsing, and the errors for wrong lengths."""

from __future__ import annotations

import pytest

from appliance.nodesetup.secrets import format_swarm_key, generate_secret, parse_cluster_secret, parse_swarm_key


def test_generated_secret_is_64_hex() -> None:
    secret = generate_secret()
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert generate_secret() != secret


def test_swarm_key_format_round_trip() -> None:
    key = generate_secret()
    text = format_swarm_key(key)
    assert text == f"/key/swarm/psk/1.0.0/\n/base16/\n{key}\n"
    assert parse_swarm_key(text) == key
    assert (
        parse_swarm_key(
            text.upper().replace("/KEY/SWARM/PSK/1.0.0/", "/key/swarm/psk/1.0.0/").replace("/BASE16/", "/base16/")
        )
        == key
    )
    assert parse_swarm_key(f"  {key}\n") == key


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a swarm key"),
        ("/key/swarm/psk/1.0.0/\n/base16/\nabcd\n", "4 characters"),
        ("/key/swarm/psk/1.0.0/\n/bin/\n" + "0" * 64, "not supported"),
        ("/key/swarm/psk/2.0.0/\n/base16/\n" + "0" * 64, "not a swarm key"),
        ("/key/swarm/psk/1.0.0/\n/base16/\n" + "g" * 64, "64 hex"),
    ],
)
def test_bad_swarm_keys(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_swarm_key(text)
    with pytest.raises(ValueError):
        format_swarm_key("abc")


def test_cluster_secret() -> None:
    secret = generate_secret()
    assert parse_cluster_secret(f"{secret.upper()}\n") == secret
    with pytest.raises(ValueError, match="62 characters"):
        parse_cluster_secret(secret[:62])
    with pytest.raises(ValueError, match="empty"):
        parse_cluster_secret("\n")
