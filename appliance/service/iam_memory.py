"""A PolicySource held in memory: users, their keys and policy documents (tests, and fixed single-box setups)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from appliance.model import Principal
from appliance.service.iam_builtin import BUILTIN
from appliance.service.iam_policy import Policy, parse_policy

__all__ = ["MemoryPolicySource", "MemoryUser"]


@dataclass(frozen=True, slots=True)
class MemoryUser:
    name: str
    access_key: str
    secret_key: str
    policies: tuple[str, ...] = ()  # built-in policy names or JSON documents
    account: str = ""  # the canonical id; defaults to the user's access key

    def __repr__(self) -> str:
        return f"MemoryUser(name={self.name!r}, access_key={self.access_key!r}, secret_key='***')"


class MemoryPolicySource:
    """Implements appliance.components.PolicySource from a fixed list of users."""

    def __init__(self, users: Iterable[MemoryUser]) -> None:
        self._by_key: dict[str, tuple[Principal, str]] = {}
        self._policies: dict[str, tuple[Policy, ...]] = {}
        self.used: dict[str, float] = {}
        for user in users:
            principal = Principal(user=user.name, access_key=user.access_key, account=user.account or user.access_key)
            self._by_key[user.access_key] = (principal, user.secret_key)
            self._policies[user.name] = tuple(
                parse_policy(BUILTIN.get(doc, doc), kind="identity") for doc in user.policies
            )

    def principal_for(self, access_key: str) -> tuple[Principal, str] | None:
        return self._by_key.get(access_key)

    def policies_for(self, principal: Principal) -> Sequence[Policy]:
        return self._policies.get(principal.user, ())

    def record_use(self, access_key: str, now: float) -> None:
        self.used[access_key] = now
