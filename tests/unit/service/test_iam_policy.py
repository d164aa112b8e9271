"""The policy language: parsing, validation of hostile documents, and evaluation as IAM documents it (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.errors import MalformedPolicy
from appliance.model import ANONYMOUS, Principal
from appliance.service.iam_builtin import BUILTIN
from appliance.service.iam_policy import (
    MAX_BUCKET_POLICY_BYTES,
    MAX_IDENTITY_POLICY_BYTES,
    RequestFacts,
    evaluate,
    parse_policy,
)

ALICE = Principal(user="alice", access_key="AKALICE", account="ALICEID")
BOB = Principal(user="bob", access_key="AKBOB", account="BOBID")
ROOT = Principal(user="root", access_key="AKROOT", account="AKROOT", is_root=True)


def doc(*statements: dict[str, Any], version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def facts(action: str = "s3:GetObject", resource: str = "arn:aws:s3:::b/k", principal: Principal = ALICE, **kw: Any):
    kw.setdefault("current_time", 1_700_000_000.0)
    return RequestFacts(action=action, resource=resource, principal=principal, **kw)


def identity(*statements: dict[str, Any]):
    return parse_policy(doc(*statements), kind="identity")


def bucket(*statements: dict[str, Any]):
    return parse_policy(doc(*statements), kind="bucket")


# --- evaluation -------------------------------------------------------------------------------------------------


def test_allow_and_implicit_deny() -> None:
    policy = identity(allow("s3:GetObject", "arn:aws:s3:::b/*"))
    assert evaluate(facts(), [policy], None).allowed
    denied = evaluate(facts("s3:PutObject"), [policy], None)
    assert not denied.allowed and not denied.explicit_deny and denied.reason == "no statement allows"


def test_explicit_deny_wins_over_allow_anywhere() -> None:
    policies = [identity(allow("s3:*")), identity({**deny("s3:GetObject", "arn:aws:s3:::b/k"), "Sid": "NoK"})]
    decision = evaluate(facts(), policies, None)
    assert not decision.allowed and decision.explicit_deny and "NoK" in decision.reason
    # A Deny in the bucket policy wins over the identity Allow too.
    decision = evaluate(facts(), [identity(allow("s3:*"))], bucket(deny("s3:*", "arn:aws:s3:::b/*", Principal="*")))
    assert decision.explicit_deny


def test_action_names_are_case_insensitive_and_wildcards_work() -> None:
    policy = identity(allow(["S3:get*", "s3:List?ucket"]))
    assert evaluate(facts("s3:GetObjectVersion"), [policy], None).allowed
    assert evaluate(facts("s3:ListBucket", "arn:aws:s3:::b"), [policy], None).allowed
    assert not evaluate(facts("s3:PutObject"), [policy], None).allowed


def test_resources_are_case_sensitive_and_wildcards_stay_in_place() -> None:
    policy = identity(allow("s3:GetObject", "arn:aws:s3:::b/home/*"))
    assert evaluate(facts(resource="arn:aws:s3:::b/home/a/b"), [policy], None).allowed
    assert not evaluate(facts(resource="arn:aws:s3:::b/HOME/a"), [policy], None).allowed
    assert not evaluate(facts(resource="arn:aws:s3:::bb/home/a"), [policy], None).allowed


def test_not_action_and_not_resource() -> None:
    policy = identity({"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::secret/*"})
    assert evaluate(facts("s3:PutObject"), [policy], None).allowed
    assert not evaluate(facts("s3:DeleteObject"), [policy], None).allowed
    assert not evaluate(facts(resource="arn:aws:s3:::secret/x"), [policy], None).allowed


def test_same_account_identity_or_resource_policy() -> None:
    grant = bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal={"AWS": "arn:aws:iam::ALICEID:user/alice"}))
    assert evaluate(facts(), [], grant).allowed
    assert evaluate(facts(), [identity(allow("s3:GetObject"))], None).allowed


def test_cross_account_needs_both_sides() -> None:
    grant = bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal={"AWS": ["BOBID"]}))
    reader = identity(allow("s3:Get*"))
    assert evaluate(facts(principal=BOB), [reader], grant, same_account=False).allowed
    assert not evaluate(facts(principal=BOB), [], grant, same_account=False).allowed
    assert not evaluate(facts(principal=BOB), [reader], None, same_account=False).allowed
    assert evaluate(facts(principal=BOB), [reader], None, acl_allows=True, same_account=False).allowed


def test_anonymous_only_through_the_owner_grant() -> None:
    public = bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal="*"))
    assert evaluate(facts(principal=ANONYMOUS), [], public, same_account=False).allowed
    named = bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal={"AWS": "ALICEID"}))
    assert not evaluate(facts(principal=ANONYMOUS), [], named).allowed
    assert not evaluate(facts(principal=ANONYMOUS), [identity(allow("*"))], None).allowed
    assert evaluate(facts(principal=ANONYMOUS), [], None, acl_allows=True).allowed


def test_not_principal_and_root_arn() -> None:
    everyone_but_bob = bucket(
        {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::BOBID:root"}, "Action": "s3:*", "Resource": "*"}
    )
    assert evaluate(facts(principal=ALICE), [identity(allow("*"))], everyone_but_bob).explicit_deny
    assert evaluate(facts(principal=BOB), [identity(allow("*"))], everyone_but_bob, same_account=True).allowed


def test_root_is_allowed_everything() -> None:
    assert evaluate(facts("ipfs:Pin", principal=ROOT), [], bucket(deny("s3:*", Principal="*"))).allowed


def test_policy_variables_in_resources() -> None:
    policy = identity(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"))
    assert evaluate(facts(resource="arn:aws:s3:::home/alice/x"), [policy], None).allowed
    assert not evaluate(facts(resource="arn:aws:s3:::home/bob/x"), [policy], None).allowed
    literal = identity(allow("s3:*", "arn:aws:s3:::b/${*}"))
    assert evaluate(facts(resource="arn:aws:s3:::b/*"), [literal], None).allowed
    assert not evaluate(facts(resource="arn:aws:s3:::b/x"), [literal], None).allowed
    unknown = identity(allow("s3:*", "arn:aws:s3:::b/${aws:nothing}"))
    assert not evaluate(facts(resource="arn:aws:s3:::b/"), [unknown], None).allowed


def test_builtin_policies() -> None:
    parsed = {name: parse_policy(text, kind="identity") for name, text in BUILTIN.items()}
    assert evaluate(facts("admin:Login", "*"), [parsed["admin"]], None).allowed
    assert evaluate(facts("ipfs:Pin", "*"), [parsed["admin"]], None).allowed
    assert evaluate(facts("s3:DeleteBucket", "arn:aws:s3:::b"), [parsed["readwrite"]], None).allowed
    assert not evaluate(facts("ipfs:Pin", "*"), [parsed["readwrite"]], None).allowed
    assert evaluate(facts("s3:ListBucket", "arn:aws:s3:::b"), [parsed["readonly"]], None).allowed
    assert not evaluate(facts("s3:PutObject"), [parsed["readonly"]], None).allowed
    assert evaluate(facts("s3:PutObject"), [parsed["writeonly"]], None).allowed
    assert not evaluate(facts("s3:GetObject"), [parsed["writeonly"]], None).allowed
    assert evaluate(facts("ipfs:Unpin", "*"), [parsed["ipfs-operator"]], None).allowed
    assert not evaluate(facts("s3:PutObject"), [parsed["ipfs-operator"]], None).allowed


def test_public_detection() -> None:
    assert bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal="*")).is_public
    assert bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal={"AWS": "*"})).is_public
    narrowed = allow(
        "s3:GetObject", "arn:aws:s3:::b/*", Principal="*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    )
    assert not bucket(narrowed).is_public
    assert not bucket(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal={"AWS": "X"})).is_public
    assert not bucket(deny("s3:*", Principal="*")).is_public
    assert not bucket(allow("s3:GetObject", Principal="*")).without_public_grants().statements


def test_parse_cache_returns_the_same_object() -> None:
    text = doc(allow("s3:GetObject"))
    assert parse_policy(text, kind="identity") is parse_policy(text, kind="identity")


def test_statement_may_be_an_object_and_version_2008() -> None:
    text = json.dumps({"Version": "2008-10-17", "Statement": allow("s3:GetObject")})
    assert parse_policy(text, kind="identity").version == "2008-10-17"


# --- hostile and malformed documents ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "valid JSON"),
        ("[]", "valid JSON"),
        ("{", "valid JSON"),
        ('{"Statement": []}', "Statement"),
        ('{"Version": "2020-01-01", "Statement": {}}', "Version"),
        ('{"Version": "2012-10-17", "Statement": [1]}', "must be an object"),
        (doc({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}), "Effect"),
        (doc({"Effect": "Allow", "Resource": "*"}), "Action"),
        (doc({"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:x", "Resource": "*"}), "Action"),
        (doc({"Effect": "Allow", "Action": "s3:*"}), "Resource"),
        (doc(allow("s3 GetObject")), "invalid action"),
        (doc(allow("ec2:RunInstances")), "invalid action"),
        (doc(allow(["s3:GetObject", 7])), "strings"),
        (doc(allow([])), "entries"),
        (doc(allow("s3:GetObject", "bucket/key")), "invalid resource"),
        (doc(allow("s3:GetObject", "arn:aws:s3")), "invalid resource"),
        (doc(allow("s3:*", Principal="*")), "no Principal"),
        (doc({**allow("s3:*"), "Sid": "a"}, {**allow("s3:*"), "Sid": "a"}), "unique"),
        (doc({**allow("s3:*"), "Sid": "bad\u202esid"}), "Sid"),
        (doc({**allow("s3:*"), "Extra": 1}), "unknown element"),
        (doc(allow("s3:*", Condition={"StringEquals": {"aws:username": {"x": 1}}})), "values"),
        (doc(allow("s3:*", Condition={"Bogus": {"aws:username": "x"}})), "unsupported condition operator"),
        (doc(allow("s3:*", Condition={"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}})), "not valid"),
        (doc(allow("s3:*", Condition={"NumericLessThan": {"s3:max-keys": "ten"}})), "not valid"),
        (doc(allow("s3:*", Condition={"DateLessThan": {"aws:CurrentTime": "yesterday"}})), "not valid"),
        (doc(allow("s3:*", Condition={"StringEquals": {"evil key": "x"}})), "condition key"),
        (doc(allow("s3:*", Condition={"ForAnyValue:StringEquals": {"aws:username": "x"}})), "set operators"),
        (doc(allow("s3:*", Condition=[])), "Condition must be an object"),
        ('{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": {}}', "duplicate"),
        ("[" * 2000 + "]" * 2000, "deeper"),
    ],
)
def test_malformed_identity_policies_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(text, kind="identity")
    assert needle in caught.value.message


@pytest.mark.parametrize(
    ("principal", "needle"),
    [
        ({"Service": "s3.amazonaws.com"}, "Principal must be"),
        ({"AWS": "arn:aws:iam::123:group/admins"}, "invalid principal"),
        ({"AWS": "arn:aws:iam::12 3:root"}, "invalid principal"),
        ({"AWS": "arn:aws:iam::ALICEID:user/al\u0131ce"}, "invalid principal"),  # dotless i: not an IAM name
        ({"AWS": "arn:aws:iam::ALICEID:user/" + "a" * 65}, "invalid principal"),
        ({"AWS": ""}, "non-empty"),
        ("everyone", "Principal must be"),
    ],
)
def test_bad_principals(principal: Any, needle: str) -> None:
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(doc(allow("s3:GetObject", Principal=principal)), kind="bucket")
    assert needle in caught.value.message


def test_bucket_policies_need_a_principal_and_s3_actions() -> None:
    with pytest.raises(MalformedPolicy):
        parse_policy(doc(allow("s3:GetObject")), kind="bucket")
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(doc(allow("ipfs:Pin", Principal="*")), kind="bucket")
    assert "only s3 actions" in caught.value.message


def test_size_limits() -> None:
    statement = allow("s3:GetObject", "arn:aws:s3:::b/" + "x" * 100)
    big = doc(*[{**statement, "Sid": f"s{i}"} for i in range(60)])
    assert MAX_IDENTITY_POLICY_BYTES < len(big) < MAX_BUCKET_POLICY_BYTES
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(big, kind="identity")
    assert "limit" in caught.value.message
    huge = doc(*[{**statement, "Principal": "*", "Sid": f"s{i}"} for i in range(99)])
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(huge, kind="bucket")
    assert "limit" in caught.value.message
    many = doc(*[{"Effect": "Allow", "Action": "s3:*", "Resource": "*"} for _ in range(101)])
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(many, kind="identity")
    assert "statements" in caught.value.message


def test_non_string_input() -> None:
    with pytest.raises(MalformedPolicy):
        parse_policy(b"{}", kind="identity")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
statement_keys = st.sampled_from(
    ["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition", "Junk"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(statement_keys, json_values, max_size=6), st.sampled_from(["identity", "bucket"]))
def test_arbitrary_statements_parse_or_raise_malformed_policy(statement: dict[str, Any], kind: str) -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    try:
        policy = parse_policy(text, kind=kind)  # type: ignore[arg-type]
    except MalformedPolicy as error:
        assert error.message
        return
    evaluate(facts(), [policy] if kind == "identity" else [], policy if kind == "bucket" else None)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_escapes_as_another_error(text: str) -> None:
    try:
        parse_policy(text, kind="bucket")
    except MalformedPolicy:
        pass


action_names = st.from_regex(r"s3:[A-Za-z]{1,12}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(action_names, min_size=1, max_size=5), action_names, st.booleans())
def test_deny_always_wins(actions: list[str], requested: str, deny_first: bool) -> None:
    statements = [allow([*actions, requested]), deny(requested)]
    if deny_first:
        statements.reverse()
    decision = evaluate(facts(requested), [identity(*statements)], None)
    assert not decision.allowed and decision.explicit_deny


@settings(max_examples=200, deadline=None)
@given(action_names, st.text(alphabet="abcXYZ/*?.-", min_size=1, max_size=20))
def test_star_matches_everything_and_exact_patterns_match_themselves(action: str, key: str) -> None:
    resource = f"arn:aws:s3:::b/{key}"
    assert evaluate(facts(action, resource), [identity(allow("*"))], None).allowed
    literal = key.replace("*", "").replace("?", "")
    if literal:
        exact = f"arn:aws:s3:::b/{literal}"
        assert evaluate(facts(action.upper(), exact), [identity(allow(action.lower(), exact))], None).allowed


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["Allow", "Deny"]), min_size=1, max_size=6))
def test_evaluation_does_not_depend_on_statement_order(effects: list[str]) -> None:
    statements = [{"Effect": e, "Action": "s3:GetObject", "Resource": "*"} for e in effects]
    forward = evaluate(facts(), [identity(*statements)], None)
    backward = evaluate(facts(), [identity(*reversed(statements))], None)
    assert forward.allowed == backward.allowed == ("Deny" not in effects)


def test_hostile_wildcards_in_a_bucket_policy_are_cheap() -> None:
    resource = "arn:aws:s3:::b/" + "*a" * 40 + "b"
    policy = bucket(deny("s3:GetObject", resource, Principal="*"))
    long_key = facts(resource="arn:aws:s3:::b/" + "a" * 1000)
    assert not evaluate(long_key, [identity(allow("s3:*"))], policy).explicit_deny
