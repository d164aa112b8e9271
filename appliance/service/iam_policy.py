"""The IAM policy language subset: parse and validate identity and bucket policies, and evaluate requests (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from appliance.errors import MalformedPolicy
from appliance.model import Principal
from appliance.service.iam_conditions import Condition, compile_condition_block
from appliance.service.iam_glob import NEVER, Glob, Token, glob, glob_of_tokens, tokens_of

__all__ = [
    "MAX_BUCKET_POLICY_BYTES",
    "MAX_IDENTITY_POLICY_BYTES",
    "Decision",
    "Policy",
    "RequestFacts",
    "Statement",
    "evaluate",
    "parse_policy",
    "request_context",
]

PolicyKind = Literal["identity", "bucket"]

# AWS: a managed identity policy holds at most 6,144 characters, a bucket policy 20 KiB.
MAX_IDENTITY_POLICY_BYTES = 6144
MAX_BUCKET_POLICY_BYTES = 20 * 1024
MAX_DEPTH = 8  # policy > Statement list > statement > Condition > operator > key > values: 7 levels suffice
MAX_STATEMENTS = 100
MAX_PATTERNS = 200  # Action/Resource/Principal entries per statement

_VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"}
)
_SID = re.compile(r"[A-Za-z0-9 _.:/-]{0,128}", re.ASCII)
_ACTION = re.compile(r"\*|(s3|ipfs|admin|iam):[A-Za-z0-9*?]{1,128}", re.ASCII | re.IGNORECASE)
_RESOURCE = re.compile(r"\*|arn:[a-z*?-]{1,32}:[a-z0-9*?-]{0,32}:[a-z0-9*?-]{0,32}:[A-Za-z0-9*?]{0,128}:[^\x00-\x1f]+")
_ACCOUNT = r"[A-Za-z0-9]{1,128}"
_USER = r"[A-Za-z0-9+=,.@_-]{1,64}"
_PATH = r"(?:[A-Za-z0-9+=,.@_/-]{0,512}/)?"
_PRINCIPAL_ARN = re.compile(rf"arn:aws:iam::({_ACCOUNT}):(root|user/{_PATH}({_USER}))", re.ASCII)
_BARE_ID = re.compile(_ACCOUNT, re.ASCII)
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:*?$_-]{1,64})\}")


@dataclass(frozen=True, slots=True)
class PrincipalMatcher:
    """A bucket policy's Principal: anyone, or accounts (canonical ids) and user names."""

    anyone: bool = False
    accounts: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    def matches(self, principal: Principal) -> bool:
        if self.anyone:
            return True
        if principal.anonymous:
            return False
        return principal.account in self.accounts or principal.user in self.users


@dataclass(frozen=True, slots=True)
class Statement:
    """One validated statement, its patterns compiled."""

    sid: str
    allow: bool
    actions: tuple[Glob, ...]
    not_action: bool
    resources: tuple[str, ...]  # raw patterns (may hold ${...} variables)
    not_resource: bool
    principal: PrincipalMatcher | None
    not_principal: bool
    conditions: tuple[Condition, ...]
    _compiled: tuple[Glob, ...] | None = None  # the resources when they hold no variables

    def action_matches(self, action: str) -> bool:
        hit = any(p.matches(action) for p in self.actions)
        return hit != self.not_action

    def resource_matches(self, resource: str, variables: Mapping[str, str]) -> bool:
        patterns = self._compiled
        if patterns is None:
            patterns = tuple(_dynamic_regex(r, variables) for r in self.resources)
        hit = any(p.matches(resource) for p in patterns)
        return hit != self.not_resource

    def principal_matches(self, principal: Principal) -> bool:
        if self.principal is None:
            return True  # identity policies apply to the principal they are attached to
        return self.principal.matches(principal) != self.not_principal

    def applies(self, facts: RequestFacts, context: Mapping[str, str]) -> bool:
        """Whether the statement covers the request (its action is already known to match)."""
        return (
            self.principal_matches(facts.principal)
            and self.resource_matches(facts.resource, context)
            and all(c.holds(context) for c in self.conditions)
        )

    @property
    def public(self) -> bool:
        """Grants to everyone (PolicyStatus IsPublic): an Allow for Principal "*" not narrowed to known callers."""
        if not self.allow or self.principal is None:
            return False
        if not (self.principal.anyone or self.not_principal):
            return False
        narrowing = {"aws:sourceip", "aws:principalaccount", "aws:userid", "aws:username", "aws:sourceaccount"}
        return not any(c.key in narrowing and c.operator != "Null" and not c.negated for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated, immutable policy document."""

    kind: PolicyKind
    text: str
    digest: str
    version: str
    statements: tuple[Statement, ...]
    id: str = ""
    # action -> the statements whose Action/NotAction matches it: each action is matched against the patterns once.
    _by_action: dict[str, tuple[Statement, ...]] = field(default_factory=dict, compare=False, repr=False)

    def statements_for(self, action: str) -> tuple[Statement, ...]:
        found = self._by_action.get(action)
        if found is None:
            found = tuple(s for s in self.statements if s.action_matches(action))
            if len(self._by_action) < 1024:  # bounded: callers could invent action names
                self._by_action[action] = found
        return found

    @property
    def is_public(self) -> bool:
        return any(s.public for s in self.statements)

    def without_public_grants(self) -> Policy:
        """The policy with its public Allow statements dropped (RestrictPublicBuckets)."""
        kept = tuple(s for s in self.statements if not s.public)
        return Policy(self.kind, self.text, self.digest, self.version, kept, self.id)


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a policy decision looks at."""

    action: str  # "s3:GetObject", "ipfs:Pin", ...
    resource: str  # "arn:aws:s3:::bucket/key", "arn:aws:s3:::bucket", "*"
    principal: Principal
    source_ip: str = ""  # "" when unknown
    secure_transport: bool = False
    current_time: float = 0.0
    context: Mapping[str, str] = field(default_factory=dict)  # s3:prefix, s3:max-keys, s3:x-amz-acl, ...


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    explicit_deny: bool
    reason: str  # the deciding statement ("Sid" or "statement N of ...") or "no statement allows"


def _depth(text: str) -> int:
    """The deepest nesting of {} / [] outside strings (checked before json.loads recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedPolicy(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _strings(raw: object, name: str, where: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_PATTERNS:
        raise MalformedPolicy(f"{where}: {name} needs 1 to {MAX_PATTERNS} entries")
    if not all(isinstance(item, str) and item for item in items):
        raise MalformedPolicy(f"{where}: {name} entries must be non-empty strings")
    return [str(item) for item in items]


def _principal(raw: object, where: str) -> PrincipalMatcher:
    if raw == "*":
        return PrincipalMatcher(anyone=True)
    if not isinstance(raw, dict) or set(raw) != {"AWS"}:
        raise MalformedPolicy(f'{where}: Principal must be "*" or {{"AWS": [...]}}')
    accounts, users = set(), set()
    for entry in _strings(raw["AWS"], "Principal AWS", where):
        if entry == "*":
            return PrincipalMatcher(anyone=True)
        arn = _PRINCIPAL_ARN.fullmatch(entry)
        if arn is not None:
            if arn.group(2) == "root":
                accounts.add(arn.group(1))
            else:
                users.add(arn.group(3))
        elif _BARE_ID.fullmatch(entry):
            accounts.add(entry)
        else:
            raise MalformedPolicy(f"{where}: invalid principal {entry[:80]!r}")
    return PrincipalMatcher(accounts=frozenset(accounts), users=frozenset(users))


def _statement(raw: object, index: int, kind: PolicyKind) -> Statement:
    where = f"Statement {index}"
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"{where} must be an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise MalformedPolicy(f"{where}: unknown element {sorted(unknown)[0][:40]!r}")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str) or not _SID.fullmatch(sid):
        raise MalformedPolicy(f"{where}: Sid must be up to 128 letters, digits, spaces and ._:/-")
    where = f"Statement {sid!r}" if sid else where
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f'{where}: Effect must be "Allow" or "Deny"')
    if ("Action" in raw) == ("NotAction" in raw):
        raise MalformedPolicy(f"{where}: needs exactly one of Action and NotAction")
    action_key = "Action" if "Action" in raw else "NotAction"
    actions = _strings(raw[action_key], action_key, where)
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise MalformedPolicy(f"{where}: invalid action {action[:80]!r}")
        if kind == "bucket" and not (action == "*" or action.lower().startswith("s3:")):
            raise MalformedPolicy(f"{where}: a bucket policy may name only s3 actions, not {action[:80]!r}")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise MalformedPolicy(f"{where}: needs exactly one of Resource and NotResource")
    resource_key = "Resource" if "Resource" in raw else "NotResource"
    resources = _strings(raw[resource_key], resource_key, where)
    for resource in resources:
        if not _RESOURCE.fullmatch(resource):
            raise MalformedPolicy(f"{where}: invalid resource {resource[:80]!r}")
    has_principal = "Principal" in raw or "NotPrincipal" in raw
    if kind == "identity" and has_principal:
        raise MalformedPolicy(f"{where}: an identity policy has no Principal")
    principal: PrincipalMatcher | None = None
    if kind == "bucket":
        if ("Principal" in raw) == ("NotPrincipal" in raw):
            raise MalformedPolicy(f"{where}: needs exactly one of Principal and NotPrincipal")
        principal = _principal(raw.get("Principal", raw.get("NotPrincipal")), where)
    conditions = compile_condition_block(raw["Condition"], where) if "Condition" in raw else ()
    dynamic = any("${" in r for r in resources)
    return Statement(
        sid=sid,
        allow=effect == "Allow",
        actions=tuple(glob(a, ignore_case=True) for a in actions),
        not_action=action_key == "NotAction",
        resources=tuple(resources),
        not_resource=resource_key == "NotResource",
        principal=principal,
        not_principal="NotPrincipal" in raw,
        conditions=conditions,
        _compiled=None if dynamic else tuple(glob(r) for r in resources),
    )


def parse_policy(text: str, *, kind: PolicyKind) -> Policy:
    """Parse and validate a policy document; MalformedPolicy names the first problem. Cached by content."""
    if not isinstance(text, str):
        raise MalformedPolicy("a policy is a JSON text")
    return _parse_cached(text, kind)


@lru_cache(maxsize=2048)
def _parse_cached(text: str, kind: PolicyKind) -> Policy:
    limit = MAX_BUCKET_POLICY_BYTES if kind == "bucket" else MAX_IDENTITY_POLICY_BYTES
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise MalformedPolicy(f"Policy is {size} bytes; the limit is {limit}")
    if _depth(text) > MAX_DEPTH:
        raise MalformedPolicy(f"Policy nests deeper than {MAX_DEPTH} levels")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'") from None
    if not isinstance(document, dict):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise MalformedPolicy(f"unknown top-level element {sorted(unknown)[0][:40]!r}")
    version = document.get("Version", "2008-10-17")
    if version not in _VERSIONS:
        raise MalformedPolicy('Version must be "2012-10-17" or "2008-10-17"')
    policy_id = document.get("Id", "")
    if not isinstance(policy_id, str) or len(policy_id) > 128:
        raise MalformedPolicy("Id must be a string of up to 128 characters")
    raw = document.get("Statement")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else None
    if not items:
        raise MalformedPolicy("Missing required field Statement")
    if len(items) > MAX_STATEMENTS:
        raise MalformedPolicy(f"Policy has more than {MAX_STATEMENTS} statements")
    statements = tuple(_statement(item, i, kind) for i, item in enumerate(items))
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy("Statement ids (Sid) must be unique")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return Policy(kind, text, digest, str(version), statements, policy_id)


def _dynamic_regex(pattern: str, variables: Mapping[str, str]) -> Glob:
    """A Resource with policy variables (${aws:username} ...): values are literal; ${*} ${?} ${$} are the
    characters themselves; an unknown variable matches nothing, as in IAM."""
    tokens: list[Token] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        tokens.extend(tokens_of(pattern[position : match.start()]))
        name = match.group(1)
        if name in ("*", "?", "$"):
            tokens.append(name)  # a string token is literal, never the wildcard
        else:
            value = variables.get(name.lower())
            if value is None:
                return NEVER
            tokens.append(value)
        position = match.end()
    tokens.extend(tokens_of(pattern[position:]))
    return glob_of_tokens(tokens)


def request_context(facts: RequestFacts) -> dict[str, str]:
    """The condition keys of a request (lower-case names): the global aws:* keys and the request's own."""
    principal = facts.principal
    context = {k.lower(): v for k, v in facts.context.items()}
    context["aws:securetransport"] = "true" if facts.secure_transport else "false"
    moment = datetime.fromtimestamp(facts.current_time, UTC)
    context["aws:currenttime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    context["aws:epochtime"] = str(int(facts.current_time))
    if facts.source_ip:
        context["aws:sourceip"] = facts.source_ip
    if principal.anonymous:
        context["aws:principaltype"] = "Anonymous"
        context["aws:userid"] = "anonymous"
    else:
        context["aws:principaltype"] = "Account" if principal.is_root else "User"
        context["aws:userid"] = principal.user
        context["aws:principalaccount"] = principal.account
        if not principal.is_root:
            context["aws:username"] = principal.user
    return context


def _scan(
    policies: Sequence[Policy], facts: RequestFacts, context: Mapping[str, str]
) -> tuple[Statement | None, Statement | None]:
    """(the first Deny that applies, the first Allow that applies)."""
    allow: Statement | None = None
    for policy in policies:
        for statement in policy.statements_for(facts.action):
            if statement.allow and allow is not None:
                continue  # one Allow is enough; only a Deny can still change the answer
            if statement.applies(facts, context):
                if not statement.allow:
                    return statement, allow
                allow = statement
    return None, allow


def _name(statement: Statement, source: str) -> str:
    return f"{source} statement {statement.sid!r}" if statement.sid else f"{source} statement without Sid"


def evaluate(
    facts: RequestFacts,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None,
    *,
    acl_allows: bool = False,
    same_account: bool = True,
) -> Decision:
    """The decision for one request, as IAM documents it: an explicit Deny in any policy wins; else, for a caller of
    the resource owner's account, an Allow in the identity OR the resource policy (or an ACL grant) allows; for
    another account, the identity policy AND the owner's grant (resource policy or ACL) must both allow. Anonymous
    callers have no identity policies: only the owner's grant counts. Root is allowed everything."""
    if facts.principal.is_root:
        return Decision(True, False, "root")
    context = request_context(facts)
    identity: Sequence[Policy] = () if facts.principal.anonymous else identity_policies
    deny, identity_allow = _scan(identity, facts, context)
    if deny is not None:
        return Decision(False, True, _name(deny, "identity policy"))
    resource_allow: Statement | None = None
    if resource_policy is not None:
        deny, resource_allow = _scan((resource_policy,), facts, context)
        if deny is not None:
            return Decision(False, True, _name(deny, "bucket policy"))
    owner_grant = resource_allow is not None or acl_allows
    if facts.principal.anonymous or same_account:
        if identity_allow is not None:
            return Decision(True, False, _name(identity_allow, "identity policy"))
        if resource_allow is not None:
            return Decision(True, False, _name(resource_allow, "bucket policy"))
        if acl_allows:
            return Decision(True, False, "ACL grant")
        return Decision(False, False, "no statement allows")
    if identity_allow is None:
        return Decision(False, False, "no identity policy statement allows")
    if not owner_grant:
        return Decision(False, False, "the resource owner grants nothing (bucket policy or ACL)")
    grant = _name(resource_allow, "bucket policy") if resource_allow is not None else "ACL grant"
    return Decision(True, False, f"{_name(identity_allow, 'identity policy')} and {grant}")
