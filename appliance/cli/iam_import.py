"""`s3ipfs iam import-versitygw --iam-dir DIR`: create IAM users with the same access keys and secrets as versitygw's
internal IAM (DIR/users.json), with policies equivalent to their roles (admin -> admin; userplus -> readwrite;
user -> readwrite without CreateBucket; see docs/iam.md), so clients keep working unchanged. versitygw's root account
is not in users.json: give it with --root-access/--root-secret to import it as the user versitygw-root (admin).
--dry-run prints the plan and changes nothing. Re-running is safe: what exists already is left as it is.

Exit codes: 0 done; 1 an account was skipped (its reason is printed) or the gateway refused a step; 2 bad usage;
3 the gateway is unreachable; 4 the gateway answered with an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appliance.api.admin.client import AdminClient
from appliance.errors import RequestError
from appliance.service.iam_versitygw import ImportedAccount, PlannedUser, plan_import, read_users_json

__all__ = ["add_import_parser", "steps_for"]

Step = dict[str, Any]


def _p(name: str) -> str:
    return quote(name, safe="")


def steps_for(api: AdminClient, planned: list[PlannedUser]) -> list[Step]:
    """What is missing on the gateway, in the order it must be done (the secret travels only in create-key)."""
    existing = {u["name"].lower(): u for u in api.call("GET", "/iam/users")["users"]}
    steps: list[Step] = []
    for plan in planned:
        user = existing.get(plan.name.lower())
        role = plan.tags.get("versitygw-role", "")
        if user is None:
            steps.append({"op": "create-user", "user": plan.name, "role": role, "tags": dict(plan.tags)})
            attached: set[str] = set()
            inline: set[str] = set()
            keys: set[str] = set()
        else:
            attached = set(user["attached_policies"])
            inline = set(user["inline_policies"])
            keys = {k["access_key"] for k in api.call("GET", f"/iam/users/{_p(user['name'])}/keys")["access_keys"]}
        steps += [{"op": "attach", "user": plan.name, "policy": p} for p in plan.policies if p not in attached]
        steps += [
            {"op": "put-inline", "user": plan.name, "policy": name, "document": doc}
            for name, doc in plan.inline
            if name not in inline
        ]
        if plan.account.access not in keys:
            steps.append({"op": "create-key", "user": plan.name, "access_key": plan.account.access})
    return steps


def _apply(api: AdminClient, step: Step, secrets: dict[str, str]) -> None:
    user = _p(step["user"])
    if step["op"] == "create-user":
        api.call("POST", "/iam/users", body={"name": step["user"], "tags": step["tags"]})
    elif step["op"] == "attach":
        api.call("PUT", f"/iam/users/{user}/policies/{_p(step['policy'])}")
    elif step["op"] == "put-inline":
        api.call("PUT", f"/iam/users/{user}/inline/{_p(step['policy'])}", body={"document": step["document"]})
    else:
        body = {"access_key": step["access_key"], "secret_key": secrets[step["access_key"]]}
        api.call("POST", f"/iam/users/{user}/keys", body=body)


def _describe(step: Step) -> str:
    if step["op"] == "create-user":
        return f"create user {step['user']} (versitygw role {step['role']})"
    if step["op"] == "attach":
        return f"attach {step['policy']} to {step['user']}"
    if step["op"] == "put-inline":
        return f"put inline policy {step['policy']} on {step['user']}"
    return f"create access key {step['access_key']} for {step['user']} (same secret)"


def _import(api: AdminClient, args: argparse.Namespace) -> Any:
    if bool(args.root_access) != bool(args.root_secret):
        raise RequestError("give --root-access and --root-secret together")
    accounts = read_users_json(Path(args.iam_dir))
    root = ImportedAccount(args.root_access, args.root_secret, "admin") if args.root_access else None
    planned, problems = plan_import(accounts, root=root)
    steps = steps_for(api, planned)
    secrets = {plan.account.access: plan.account.secret for plan in planned}
    done = 0
    if not args.dry_run:
        for step in steps:
            _apply(api, step, secrets)
            done += 1
    public = [{k: v for k, v in s.items() if k != "document"} for s in steps]
    if args.json:
        print_doc = {"dry_run": args.dry_run, "accounts": len(accounts), "steps": public, "problems": problems}
        print(json.dumps(print_doc, indent=2, sort_keys=True))
    else:
        verb = "would" if args.dry_run else "did"
        for step in steps:
            print(f"{verb}: {_describe(step)}")
        if not steps:
            print("nothing to do: every account is imported already")
        print(f"{len(accounts)} account(s) in users.json, {len(steps)} step(s){'' if args.dry_run else ' done'}")
    for problem in problems:
        print(f"s3ipfs: {problem}", file=sys.stderr)
    return 1 if problems else 0


def add_import_parser(
    top: Any,
    common: Callable[[argparse.ArgumentParser], None],
    runner: Callable[[Callable[[AdminClient, argparse.Namespace], Any]], Callable[[argparse.Namespace], int]],
) -> None:
    sub = top.add_parser(
        "import-versitygw",
        help="import versitygw's users.json (same keys and secrets)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(sub)
    sub.add_argument("--iam-dir", required=True, metavar="DIR", help="versitygw's --iam-dir (holds users.json)")
    sub.add_argument("--root-access", default="", metavar="KEY", help="versitygw's root access key (optional)")
    sub.add_argument("--root-secret", default="", metavar="SECRET", help="versitygw's root secret")
    sub.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sub.set_defaults(handler=runner(_import))
