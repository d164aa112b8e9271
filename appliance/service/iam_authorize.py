"""Authorization entry points other layers call: `Authorizer.authorize` (admin API, IPFS actions) and `simulate`
(the `s3ipfs iam simulate` command). Both are the pure evaluator over a PolicySource's documents."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from appliance.components import PolicySource
from appliance.model import Principal
from appliance.service.iam_policy import Decision, Policy, RequestFacts, evaluate
from appliance.service.s3_acl import Grant, grants_allow, permission_for

__all__ = ["Authorizer", "simulate"]


def simulate(
    facts: RequestFacts,
    policies: Sequence[Policy],
    bucket_policy: Policy | None,
    acl: Sequence[Grant] | None,
    *,
    bucket_owner: str = "",
) -> Decision:
    """The decision the S3 app would make for `facts` given the caller's identity policies, the bucket's policy and
    ACL grants (None: ACLs disabled, as with BucketOwnerEnforced). `bucket_owner` "" means the caller owns it."""
    same_account = not bucket_owner or facts.principal.account == bucket_owner
    acl_allows = False
    if acl is not None:
        permission = permission_for(facts.action)
        # The owner's own grant is no way around its identity policies (the owner's rights come from those).
        grants = [g for g in acl if not (same_account and g.kind == "CanonicalUser")]
        acl_allows = bool(permission) and grants_allow(grants, facts.principal, permission, ignore_public=False)
    return evaluate(facts, policies, bucket_policy, acl_allows=acl_allows, same_account=same_account)


class Authorizer:
    """Checks non-S3 actions (ipfs:*, admin:*) for a principal against its identity policies."""

    def __init__(self, source: PolicySource, clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._clock = clock

    def authorize(
        self,
        principal: Principal,
        action: str,
        resource: str = "*",
        *,
        source_ip: str = "",
        secure_transport: bool = False,
        context: Mapping[str, str] | None = None,
    ) -> Decision:
        """Root is allowed everything; anyone else needs an identity policy Allow and no Deny."""
        facts = RequestFacts(
            action=action,
            resource=resource,
            principal=principal,
            source_ip=source_ip,
            secure_transport=secure_transport,
            current_time=self._clock(),
            context=context or {},
        )
        policies = () if principal.is_root or principal.anonymous else self._source.policies_for(principal)
        return evaluate(facts, policies, None)
