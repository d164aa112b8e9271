"""The simulator and the Authorizer for non-S3 actions (pure over an in-memory PolicySource)."""

from __future__ import annotations

import json

from appliance.model import ANONYMOUS, Principal
from appliance.service.iam_authorize import Authorizer, simulate
from appliance.service.iam_memory import MemoryPolicySource, MemoryUser
from appliance.service.iam_policy import RequestFacts, parse_policy
from appliance.service.s3_acl import ALL_USERS, Grant, canned_grants

SOURCE = MemoryPolicySource(
    [
        MemoryUser("admin", "AKADMIN", "s1", ("admin",)),
        MemoryUser("ops", "AKOPS", "s2", ("ipfs-operator",)),
        MemoryUser("bob", "AKBOB", "s3", ("readonly",)),
    ]
)


def _principal(key: str) -> Principal:
    found = SOURCE.principal_for(key)
    assert found is not None
    return found[0]


def test_authorizer_for_ipfs_and_admin_actions() -> None:
    authorizer = Authorizer(SOURCE, clock=lambda: 0.0)
    assert authorizer.authorize(_principal("AKADMIN"), "admin:Login").allowed
    assert authorizer.authorize(_principal("AKOPS"), "ipfs:Pin", "*").allowed
    assert not authorizer.authorize(_principal("AKOPS"), "admin:Login").allowed
    assert not authorizer.authorize(_principal("AKBOB"), "ipfs:Unpin").allowed
    assert not authorizer.authorize(ANONYMOUS, "ipfs:ResolveCid").allowed
    assert authorizer.authorize(Principal("root", "R", "R", is_root=True), "ipfs:Rebalance").allowed


def test_memory_source_hides_secrets_and_records_use() -> None:
    assert "s1" not in repr(MemoryUser("admin", "AKADMIN", "s1"))
    SOURCE.record_use("AKBOB", 5.0)
    assert SOURCE.used["AKBOB"] == 5.0
    assert SOURCE.principal_for("nope") is None


def test_simulate_cross_account_with_acl_and_policy() -> None:
    bob = _principal("AKBOB")
    facts = RequestFacts("s3:GetObject", "arn:aws:s3:::alices/k", bob)
    policies = SOURCE.policies_for(bob)
    assert not simulate(facts, policies, None, None, bucket_owner="ALICE").allowed
    public = (*canned_grants("private", "ALICE"), Grant("Group", ALL_USERS, "READ"))
    assert simulate(facts, policies, None, public, bucket_owner="ALICE").allowed
    grant = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "AKBOB"}, "Action": "s3:GetObject", "Resource": "*"}
            ],
        }
    )
    assert simulate(facts, policies, parse_policy(grant, kind="bucket"), None, bucket_owner="ALICE").allowed
    put = RequestFacts("s3:PutObject", "arn:aws:s3:::alices/k", bob)
    assert not simulate(put, policies, None, public, bucket_owner="ALICE").allowed


def test_simulate_owner_grant_is_no_way_around_identity_policies() -> None:
    bob = _principal("AKBOB")
    facts = RequestFacts("s3:PutObject", "arn:aws:s3:::bobs/k", bob)
    own = canned_grants("private", bob.account)
    assert not simulate(facts, SOURCE.policies_for(bob), None, own, bucket_owner=bob.account).allowed
