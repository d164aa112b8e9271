"""What the IAM tests share: a local stand-in for the policy parser and the built-in documents (only here, in
tests: the daemon uses iam_policy.parse_policy and iam_builtin.BUILTIN), and an IamService over a real LMDB store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.errors import InvalidArgument
from appliance.model import Principal
from appliance.service.iam import IamService
from appliance.service.iam_secrets import SecretBox, load_or_create_key
from appliance.service.identity import load_or_create_root
from appliance.state import LmdbMetadataStore

__all__ = ["BUILTIN", "ALLOW_GET", "Clock", "decide", "make_service", "parse"]

ALLOW_GET = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)
BUILTIN = {
    "admin": json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    "readwrite": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    ),
}


def parse(text: str) -> dict[str, Any]:
    """Stand-in for parse_policy(text, kind="identity"): JSON with a Statement list, else a named problem."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"MalformedPolicy: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("Statement"), list):
        raise InvalidArgument("MalformedPolicy: Statement must be a list")
    return doc


def decide(principal: Principal, policies: list[Any], action: str, resource: str, source_ip: str) -> dict[str, Any]:
    """Stand-in for the simulator core: allowed when a statement's Action is the action, s3:* or *."""
    for policy in policies:
        for statement in policy["Statement"]:
            if statement["Action"] in (action, "*", action.split(":", maxsplit=1)[0] + ":*"):
                allowed = statement["Effect"] == "Allow"
                return {"allowed": allowed, "explicit_deny": not allowed, "reason": statement.get("Sid", "")}
    return {"allowed": False, "explicit_deny": False, "reason": "no statement allows"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(tmp_path: Path, store: LmdbMetadataStore, clock: Clock | None = None, **settings: Any) -> IamService:
    keys = tmp_path / "keys"
    load_or_create_root(keys / "root.json")
    from appliance.service.iam import IamSettings

    return IamService(
        store,
        SecretBox(load_or_create_key(keys / "iam.key")),
        parse=parse,
        builtin=BUILTIN,
        root_file=keys / "root.json",
        decide=decide,
        settings=IamSettings(**settings),
        clock=clock or Clock(),
    )
