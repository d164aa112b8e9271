"""Config validation of the security keys: CIDR lists, TLS versions and pairs, rate limits; messages name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import AppConfig, load_config
from appliance.errors import ConfigError


def _load(tmp_path: Path, text: str) -> AppConfig:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(path, env={})


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("s3: {allow_cidrs: [10.0.0.1/8]}", "s3.allow_cidrs", "host bits set"),
        ("s3: {deny_cidrs: [nonsense]}", "s3.deny_cidrs", "not a CIDR"),
        ("admin: {trusted_proxies: ['300.0.0.0/8']}", "admin.trusted_proxies", "not a CIDR"),
        ("ratelimit: {exempt_cidrs: ['10.0.0.0/33']}", "ratelimit.exempt_cidrs", "not a CIDR"),
        ("s3: {tls_min_version: '1.1'}", "s3.tls_min_version", '"1.3"'),
        ("admin: {tls_min_version: 1.0}", "admin.tls_min_version", "not supported"),
        ("admin: {tls_certfile: /x.pem}", "admin", "set together"),
        ("ratelimit: {per_key_rps: 0}", "ratelimit.per_key_rps", "greater than 0"),
        ("ratelimit: {overrides: {AK: {rps: 5}}}", "ratelimit.overrides.AK.burst", "Field required"),
        ("ratelimit: {bogus: 1}", "ratelimit.bogus", "unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert key in caught.value.message and hint in caught.value.message


def test_good_values(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "s3: {allow_cidrs: [10.0.0.0/8, 192.0.2.7, '2001:db8::/32'], tls_min_version: 1.3}\n"
        "admin: {deny_cidrs: [0.0.0.0/0], trusted_proxies: [127.0.0.1]}\n"
        "ratelimit: {enabled: true, overrides: {AKBIG: {rps: 5, burst: 10}}, exempt_keys: [AKBACKUP]}\n",
    )
    assert config.s3.allow_cidrs == ("10.0.0.0/8", "192.0.2.7", "2001:db8::/32")
    assert config.s3.tls_min_version == "1.3" and config.admin.tls_min_version == "1.2"
    assert config.ratelimit.overrides["AKBIG"].burst == 10
    assert (config.s3.port, config.admin.port) == (9000, 9001)


def test_env_override_of_a_list(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("{}")
    config = load_config(path, env={"S3IPFS_S3__DENY_CIDRS": "[198.51.100.0/24]", "S3IPFS_RATELIMIT__ENABLED": "true"})
    assert config.s3.deny_cidrs == ("198.51.100.0/24",) and config.ratelimit.enabled
