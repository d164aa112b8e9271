"""The IAM users' keys and policies as the S3 app asks for them on every request (components.PolicySource), from the
IAM store with a per-process cache.

Freshness: every call first reads the store's IAM change counter (one short read transaction) and empties the cache
when it moved, so a change made in any process (a disabled, deleted or rotated key, a detached policy) is seen by
the next request of every worker. Entries load lazily per key and per user. Expiry is checked on each call against
the clock, so a key whose grace ended is refused without any write.

Last-used times are noted in memory and written by `flush` (the daemon calls it every `iam.usage_flush_seconds`),
so a busy key costs at most one write per interval per process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from appliance.components import IamStore
from appliance.errors import BackendError, NoSuchEntity
from appliance.model import AccessKeyRecord, IamView, Principal
from appliance.service.iam_secrets import SecretBox
from appliance.service.periodic import sleep_or_stop

__all__ = ["DENY_ALL", "IamPolicySource", "documents_of"]

log = logging.getLogger(__name__)

# What a user gets when a stored document no longer parses: nothing (fail closed, never drop a Deny).
DENY_ALL = '{"Version":"2012-10-17","Statement":[{"Sid":"Unreadable","Effect":"Deny","Action":"*","Resource":"*"}]}'
_MAX_CACHED = 100_000  # entries per map; beyond, the cache starts over (unknown keys are cached too)
_MISSING = object()


def documents_of(view: IamView, builtin: Mapping[str, str]) -> list[tuple[str, str]]:
    """(where, document) of every policy that applies to the view's user: its attached and inline policies, then
    each group's. `where` names the source for the simulator and logs ("user alice inline x", "group ops
    managed y")."""
    out: list[tuple[str, str]] = []
    owners: list[tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]] = [
        ("user", view.user.name, view.user.attached, view.user.inline)
    ]
    owners += [("group", g.name, g.attached, g.inline) for g in view.groups]
    for kind, name, attached, inline in owners:
        for policy in attached:
            document = builtin.get(policy) if policy in builtin else view.managed.get(policy)
            if document is not None:
                out.append((f"{kind} {name} {'builtin' if policy in builtin else 'managed'} {policy}", document))
        for policy, document in inline:
            out.append((f"{kind} {name} inline {policy}", document))
    return out


class IamPolicySource:
    """components.PolicySource over the IAM store; `parse` is iam_policy.parse_policy for identity policies."""

    def __init__(
        self,
        store: IamStore,
        box: SecretBox,
        *,
        parse: Callable[[str], Any],
        builtin: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._box = box
        self._parse = parse
        self._builtin = builtin
        self._clock = clock
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._keys: dict[str, Any] = {}  # access key -> (Principal, secret, record) or None (unknown)
        self._policies: dict[str, tuple[Any, ...]] = {}  # user name (folded) -> parsed policies
        self._pending: dict[str, float] = {}

    def _refresh(self) -> None:
        generation = self._store.iam_generation()
        if generation != self._generation:
            self._keys.clear()
            self._policies.clear()
            self._generation = generation

    def _load(self, access_key: str) -> tuple[Principal, str, AccessKeyRecord] | None:
        found = self._store.iam_identity(access_key)
        if found is None:
            return None
        record, user, groups = found
        try:
            secret = self._box.open(access_key, record.key_id, record.sealed)
        except BackendError as exc:
            log.error("access key %s refused: %s", access_key, exc.message)
            return None
        principal = Principal(user=user.name, access_key=access_key, account=user.user_id, groups=groups)
        return principal, secret, record

    def principal_for(self, access_key: str) -> tuple[Principal, str] | None:
        """(principal, secret) for SigV4; None for a key that is unknown, disabled or expired."""
        with self._lock:
            self._refresh()
            entry = self._keys.get(access_key, _MISSING)
            if entry is _MISSING:
                if len(self._keys) >= _MAX_CACHED:
                    self._keys.clear()
                entry = self._keys[access_key] = self._load(access_key)
        if entry is None:
            return None
        principal, secret, record = entry
        if not record.usable(self._clock()):
            return None
        return principal, secret

    def policies_for(self, principal: Principal) -> Sequence[Any]:
        """The user's attached and inline policies and its groups' (root and anonymous: none)."""
        if principal.is_root or not principal.user:
            return ()
        folded = principal.user.lower()
        with self._lock:
            self._refresh()
            cached = self._policies.get(folded)
            if cached is None:
                cached = self._build(principal.user)
                if len(self._policies) >= _MAX_CACHED:
                    self._policies.clear()
                self._policies[folded] = cached
            return cached

    def _build(self, user: str) -> tuple[Any, ...]:
        try:
            view = self._store.iam_view(user)
        except NoSuchEntity:
            return ()
        parsed = []
        for where, document in documents_of(view, self._builtin):
            try:
                parsed.append(self._parse(document))
            except Exception as exc:  # a stored document the parser now refuses: deny everything, say why
                log.error("the IAM policy %s no longer parses (%s); denying everything to %s", where, exc, user)
                return (self._parse(DENY_ALL),)
        return tuple(parsed)

    def record_use(self, access_key: str, now: float) -> None:
        """Note a use in memory; `flush` writes it."""
        with self._lock:
            self._pending[access_key] = now

    def flush(self) -> int:
        """Write the noted last-used times (one transaction); how many keys."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            self._store.iam_record_use(pending)
        return len(pending)

    async def run_forever(self, stop: asyncio.Event, interval: float) -> None:
        """Flush every `interval` seconds until `stop` is set, then once more."""
        while not await sleep_or_stop(stop, interval):
            try:
                await asyncio.to_thread(self.flush)
            except Exception:
                log.exception("could not write access keys' last-used times")
        await asyncio.to_thread(self.flush)
