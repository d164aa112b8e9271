"""Condition operators and keys (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.model import ANONYMOUS, Principal
from appliance.service.iam_policy import RequestFacts, evaluate, parse_policy, request_context

ALICE = Principal(user="alice", access_key="AKALICE", account="ALICEID")
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def allowed(condition: dict[str, Any], **kw: Any) -> bool:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": condition}],
        }
    )
    kw.setdefault("principal", ALICE)
    kw.setdefault("current_time", NOW)
    facts = RequestFacts(action="s3:ListBucket", resource="arn:aws:s3:::b", **kw)
    return evaluate(facts, [parse_policy(text, kind="identity")], None).allowed


def test_string_operators() -> None:
    ctx = {"s3:prefix": "home/alice/"}
    assert allowed({"StringEquals": {"s3:prefix": ["x", "home/alice/"]}}, context=ctx)
    assert not allowed({"StringEquals": {"s3:prefix": "HOME/alice/"}}, context=ctx)
    assert allowed({"StringEqualsIgnoreCase": {"s3:prefix": "HOME/alice/"}}, context=ctx)
    assert allowed({"StringLike": {"s3:prefix": "home/*/"}}, context=ctx)
    assert allowed({"StringLike": {"s3:prefix": "home/alic?/"}}, context=ctx)
    assert not allowed({"StringNotLike": {"s3:prefix": "home/*"}}, context=ctx)
    assert allowed({"StringNotEquals": {"s3:prefix": "other"}}, context=ctx)
    assert allowed({"StringNotEqualsIgnoreCase": {"s3:prefix": "other"}}, context=ctx)


def test_missing_keys() -> None:
    assert not allowed({"StringEquals": {"s3:prefix": "x"}})
    assert allowed({"StringEqualsIfExists": {"s3:prefix": "x"}})
    assert allowed({"StringNotEquals": {"s3:prefix": "x"}})  # IAM: a negated test holds for a missing key
    assert allowed({"Null": {"s3:prefix": "true"}})
    assert not allowed({"Null": {"s3:prefix": "false"}})


def test_condition_keys_are_case_insensitive() -> None:
    assert allowed({"StringEquals": {"AWS:UserName": "alice"}})
    assert allowed({"StringEquals": {"s3:Prefix": "p"}}, context={"s3:prefix": "p"})


def test_ip_address() -> None:
    assert allowed({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, source_ip="10.1.2.3")
    assert not allowed({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, source_ip="11.1.2.3")
    assert allowed({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}, source_ip="11.1.2.3")
    assert allowed({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, source_ip="2001:db8::1")
    assert not allowed({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, source_ip="10.0.0.1")
    assert not allowed({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})  # no address known: no match


def test_bool_secure_transport() -> None:
    assert allowed({"Bool": {"aws:SecureTransport": "true"}}, secure_transport=True)
    assert not allowed({"Bool": {"aws:SecureTransport": True}}, secure_transport=False)
    assert allowed({"Bool": {"aws:SecureTransport": False}}, secure_transport=False)


def test_dates() -> None:
    assert allowed({"DateGreaterThan": {"aws:CurrentTime": "2023-01-01T00:00:00Z"}})
    assert not allowed({"DateLessThan": {"aws:CurrentTime": "2023-01-01T00:00:00Z"}})
    assert allowed({"DateLessThanEquals": {"aws:CurrentTime": "2023-11-14T22:13:20Z"}})
    assert allowed({"DateEquals": {"aws:EpochTime": str(int(NOW))}})
    assert allowed({"DateGreaterThanEquals": {"aws:CurrentTime": "2023-11-14"}})


def test_numbers() -> None:
    ctx = {"s3:max-keys": "50"}
    assert allowed({"NumericLessThanEquals": {"s3:max-keys": 50}}, context=ctx)
    assert not allowed({"NumericLessThan": {"s3:max-keys": "50"}}, context=ctx)
    assert allowed({"NumericGreaterThan": {"s3:max-keys": "10"}}, context=ctx)
    assert allowed({"NumericGreaterThanEquals": {"s3:max-keys": "50"}}, context=ctx)
    assert allowed({"NumericNotEquals": {"s3:max-keys": "5"}}, context=ctx)
    assert allowed({"NumericEquals": {"s3:max-keys": "50.0"}}, context=ctx)
    assert not allowed({"NumericLessThan": {"s3:max-keys": "100"}}, context={"s3:max-keys": "lots"})


def test_every_operator_must_hold() -> None:
    both = {"StringEquals": {"aws:username": "alice"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    assert allowed(both, source_ip="10.0.0.1")
    assert not allowed(both, source_ip="11.0.0.1")


def test_global_keys() -> None:
    ctx = request_context(RequestFacts("s3:GetObject", "*", ANONYMOUS, current_time=NOW))
    assert ctx["aws:userid"] == "anonymous" and "aws:username" not in ctx
    assert ctx["aws:currenttime"] == "2023-11-14T22:13:20Z"
    assert ctx["aws:securetransport"] == "false"
    root = Principal("root", "AK", "AK", is_root=True)
    assert "aws:username" not in request_context(RequestFacts("s3:GetObject", "*", root))


@pytest.mark.parametrize("ip", ["not-an-ip", "", "10.0.0.1%eth0", "::ffff:10.0.0.1x"])
def test_bad_request_addresses_do_not_match(ip: str) -> None:
    assert not allowed({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, source_ip=ip)
