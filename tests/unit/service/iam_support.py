"""What the IAM tests share: an IamService over a real LMDB store with the real policy engine (parse_policy for
identity policies, the built-in documents, the simulator core as the daemon wires it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.service.iam import IamService, IamSettings
from appliance.service.iam_builtin import BUILTIN
from appliance.service.iam_policy import Policy, parse_policy
from appliance.service.iam_secrets import SecretBox, load_or_create_key
from appliance.service.identity import load_or_create_root
from appliance.state import LmdbMetadataStore
from appliance.wiring import simulate_identity

__all__ = ["ALLOW_GET", "BUILTIN", "Clock", "make_service", "parse"]

ALLOW_GET = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Get", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


def parse(text: str) -> Policy:
    return parse_policy(text, kind="identity")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(tmp_path: Path, store: LmdbMetadataStore, clock: Clock | None = None, **settings: Any) -> IamService:
    keys = tmp_path / "keys"
    load_or_create_root(keys / "root.json")
    return IamService(
        store,
        SecretBox(load_or_create_key(keys / "iam.key")),
        parse=parse,
        builtin=BUILTIN,
        root_file=keys / "root.json",
        decide=simulate_identity,
        settings=IamSettings(**settings),
        clock=clock or Clock(),
    )
