"""`s3ipfs iam …`: IAM users, groups, access keys, policies, root key rotation, the policy simulator and the import
of versitygw's users, through the running gateway's admin API (admin.host/admin.port of the config). `--json` prints
the API's JSON. Secrets are printed only by `key create`, `key rotate` and `root rotate` (once: store them).

Exit codes: 0 done (simulate: allowed); 1 the gateway refused the request (bad input, unknown or existing entity,
policy in use, limit); 2 bad config or usage; 3 the gateway is unreachable; 4 the gateway answered with an error;
5 simulate: denied.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from appliance.api.admin.client import AdminClient
from appliance.cli.common import add_config_option, load
from appliance.cli.iam_import import add_import_parser
from appliance.errors import RequestError

__all__ = ["add_parser", "parse_duration"]

DENIED_EXIT = 5
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """Seconds of "90", "90s", "30m", "24h", "7d" or "1w" (argparse type)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _p(name: str) -> str:
    return quote(name, safe="")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + "Z" if stamp else "-"


def _read_document(source: str) -> str:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise RequestError(f"cannot read the policy document {source}: {reason}") from exc
    return text


def _secret_lines(data: dict[str, Any]) -> None:
    # name=value lines scripts can read; shown this once.
    print(f"access_key={data['access_key']}")
    print(f"secret_key={data['secret_key']}")


# ---- commands ------------------------------------------------------------------------------------------------


def _user(api: AdminClient, args: argparse.Namespace) -> Any:
    action = args.user_action
    if action == "create":
        tags = dict(_pair(t) for t in args.tag or [])
        data = api.call("POST", "/iam/users", body={"name": args.name, "path": args.path, "tags": tags})
        return data if args.json else print(f"created user {data['name']} ({data['arn']})")
    if action == "list":
        data = api.call("GET", "/iam/users")
        if args.json:
            return data
        for user in data["users"]:
            print(f"{user['name']:<24} {user['user_id']}  {', '.join(user['attached_policies']) or '-'}")
        return None
    if action == "delete":
        data = api.call("DELETE", f"/iam/users/{_p(args.name)}")
        return data if args.json else print(f"deleted user {args.name} and {len(data['access_keys_deleted'])} key(s)")
    data = api.call("GET", f"/iam/users/{_p(args.name)}")
    if args.json:
        return data
    print(f"user: {data['name']}  id {data['user_id']}  created {_when(data['created'])}")
    print(f"arn: {data['arn']}")
    print(f"groups: {', '.join(data['groups']) or '-'}")
    print(f"attached policies: {', '.join(data['attached_policies']) or '-'}")
    print(f"inline policies: {', '.join(data['inline_policies']) or '-'}")
    for name, value in sorted(data["tags"].items()):
        print(f"tag: {name}={value}")
    for key in data["access_keys"]:
        print(_key_line(key))
    return None


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise RequestError(f"--tag takes name=value, not {text!r}")
    return name, value


def _group(api: AdminClient, args: argparse.Namespace) -> Any:
    action = args.group_action
    if action == "create":
        data = api.call("POST", "/iam/groups", body={"name": args.name, "path": args.path})
        return data if args.json else print(f"created group {data['name']} ({data['arn']})")
    if action == "list":
        data = api.call("GET", "/iam/groups")
        if args.json:
            return data
        for group in data["groups"]:
            print(f"{group['name']:<24} {', '.join(group['attached_policies']) or '-'}")
        return None
    if action == "delete":
        data = api.call("DELETE", f"/iam/groups/{_p(args.name)}")
        return data if args.json else print(f"deleted group {args.name}")
    if action in ("add-user", "remove-user"):
        method = "PUT" if action == "add-user" else "DELETE"
        data = api.call(method, f"/iam/groups/{_p(args.name)}/members/{_p(args.user)}")
        if args.json:
            return data
        verb = "added to" if action == "add-user" else "removed from"
        print(f"{args.user} {verb} {args.name}" + ("" if data["changed"] else " (nothing changed)"))
        return None
    data = api.call("GET", f"/iam/groups/{_p(args.name)}")
    if args.json:
        return data
    print(f"group: {data['name']}  id {data['group_id']}  created {_when(data['created'])}")
    print(f"members: {', '.join(data['members']) or '-'}")
    print(f"attached policies: {', '.join(data['attached_policies']) or '-'}")
    print(f"inline policies: {', '.join(data['inline_policies']) or '-'}")
    return None


def _key_line(key: dict[str, Any]) -> str:
    expires = f"  expires {_when(key['expires'])}" if key.get("expires") else ""
    used = _when(key.get("last_used"))
    return f"{key['access_key']}  {key['status']:<8} created {_when(key['created'])}  last used {used}{expires}"


def _key(api: AdminClient, args: argparse.Namespace) -> Any:
    action = args.key_action
    if action == "create":
        body: dict[str, Any] = {}
        if args.expires_in is not None:
            body["expires"] = time.time() + args.expires_in
        data = api.call("POST", f"/iam/users/{_p(args.user)}/keys", body=body)
        return data if args.json else _secret_lines(data)
    if action == "rotate":
        data = api.call("POST", f"/iam/users/{_p(args.user)}/keys/rotate", body={"grace_seconds": args.grace})
        if args.json:
            return data
        _secret_lines(data)
        for old in data["expiring"]:
            print(f"old key {old} stays valid for {args.grace:.0f} s more", file=sys.stderr)
        return None
    if action == "list":
        data = api.call("GET", f"/iam/users/{_p(args.user)}/keys")
        if args.json:
            return data
        for key in data["access_keys"]:
            print(_key_line(key))
        return None
    if action == "delete":
        data = api.call("DELETE", f"/iam/keys/{_p(args.key)}")
        return data if args.json else print(f"deleted access key {args.key}")
    data = api.call("POST", f"/iam/keys/{_p(args.key)}/{action}")
    return data if args.json else print(_key_line(data))


def _target(args: argparse.Namespace) -> str:
    if bool(args.user) == bool(args.group):
        raise RequestError("give exactly one of --user USER or --group GROUP")
    return f"/iam/users/{_p(args.user)}" if args.user else f"/iam/groups/{_p(args.group)}"


def _policy(api: AdminClient, args: argparse.Namespace) -> Any:
    action = args.policy_action
    if action in ("create", "update"):
        body = {"name": args.name, "document": _read_document(args.document), "description": args.description}
        if action == "create":
            data = api.call("POST", "/iam/policies", body=body)
        else:
            data = api.call("PUT", f"/iam/policies/{_p(args.name)}", body=body)
        return data if args.json else print(f"{action}d policy {data['name']} (version {data['version']})")
    if action == "list":
        data = api.call("GET", "/iam/policies")
        if args.json:
            return data
        for policy in data["policies"]:
            print(f"{policy['name']:<24} {'built-in' if policy['builtin'] else 'managed'}  {policy['description']}")
        return None
    if action == "get":
        data = api.call("GET", f"/iam/policies/{_p(args.name)}")
        if args.json:
            return data
        attached = ", ".join(f"{a['kind']} {a['name']}" for a in data["attached_to"]) or "-"
        print(f"policy: {data['name']} ({'built-in' if data['builtin'] else 'version ' + str(data['version'])})")
        print(f"attached to: {attached}")
        _print_json(json.loads(data["document"]))
        return None
    if action == "delete":
        data = api.call("DELETE", f"/iam/policies/{_p(args.name)}")
        return data if args.json else print(f"deleted policy {args.name}")
    if action in ("attach", "detach"):
        method = "PUT" if action == "attach" else "DELETE"
        data = api.call(method, f"{_target(args)}/policies/{_p(args.name)}")
        return data if args.json else print(f"{action}ed {args.name}" + ("" if data["changed"] else " (no change)"))
    if action == "put-inline":
        data = api.call(
            "PUT", f"{_target(args)}/inline/{_p(args.name)}", body={"document": _read_document(args.document)}
        )
        return data if args.json else print(f"stored inline policy {args.name}")
    data = api.call("DELETE", f"{_target(args)}/inline/{_p(args.name)}")
    return data if args.json else print(f"deleted inline policy {args.name}")


def _root(api: AdminClient, args: argparse.Namespace) -> Any:
    data = api.call("POST", "/iam/root/rotate", body={"grace_seconds": args.grace})
    if args.json:
        return data
    _secret_lines(data)
    print(f"the previous root key stays valid until {_when(data['previous_valid_until'])}", file=sys.stderr)
    return None


def _simulate(api: AdminClient, args: argparse.Namespace) -> Any:
    body = {"user": args.user, "action": args.action, "resource": args.resource, "source_ip": args.source_ip}
    data = api.call("POST", "/iam/simulate", body=body)
    if args.json:
        _print_json(data)
    else:
        verdict = "allowed" if data["allowed"] else ("denied explicitly" if data["explicit_deny"] else "denied")
        print(f"{args.action} on {args.resource}: {verdict} ({data['reason']})")
        for where in data.get("policies", []):
            print(f"  policy: {where}")
    return 0 if data["allowed"] else DENIED_EXIT


# ---- argparse -----------------------------------------------------------------------------------------------


def _common_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print the admin API's JSON")


def _runner(handler: Callable[[AdminClient, argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        api = AdminClient.from_config(load(args))
        data = handler(api, args)
        if isinstance(data, int):
            return data
        if data is not None:
            _print_json(data)
        return 0

    return run


def _leaf(actions: Any, name: str, text: str, handler: Callable[[AdminClient, argparse.Namespace], Any]) -> Any:
    sub = actions.add_parser(name, help=text, description=text)
    _common_options(sub)
    sub.set_defaults(handler=_runner(handler))
    return sub


def _group_of(parent: Any, name: str, text: str, dest: str) -> Any:
    sub = parent.add_parser(name, help=text, description=text)
    return sub.add_subparsers(dest=dest, required=True, metavar="ACTION")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    iam = commands.add_parser(
        "iam",
        help="IAM users, groups, keys, policies, root key rotation, simulator, versitygw import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top = iam.add_subparsers(dest="area", required=True, metavar="AREA")

    users = _group_of(top, "user", "IAM users", "user_action")
    create = _leaf(users, "create", "create a user", _user)
    create.add_argument("name")
    create.add_argument("--path", default="/", help="IAM path, e.g. /engineering/")
    create.add_argument("--tag", action="append", metavar="K=V", help="a tag (repeatable)")
    _leaf(users, "list", "every user", _user)
    for verb, text in (("get", "a user with its groups, keys and policies"), ("delete", "delete a user and its keys")):
        _leaf(users, verb, text, _user).add_argument("name")

    groups = _group_of(top, "group", "IAM groups", "group_action")
    gcreate = _leaf(groups, "create", "create a group", _group)
    gcreate.add_argument("name")
    gcreate.add_argument("--path", default="/")
    _leaf(groups, "list", "every group", _group)
    for verb, text in (("get", "a group and its members"), ("delete", "delete a group")):
        _leaf(groups, verb, text, _group).add_argument("name")
    for verb, text in (("add-user", "add a user to a group"), ("remove-user", "remove a user from a group")):
        member = _leaf(groups, verb, text, _group)
        member.add_argument("name", metavar="GROUP")
        member.add_argument("user", metavar="USER")

    keys = _group_of(top, "key", "access keys", "key_action")
    kcreate = _leaf(keys, "create", "a new access key for USER (its secret is printed once)", _key)
    kcreate.add_argument("user")
    kcreate.add_argument("--expires-in", type=parse_duration, metavar="DURATION", help="e.g. 90d; default never")
    _leaf(keys, "list", "USER's access keys (no secrets)", _key).add_argument("user")
    for verb in ("delete", "enable", "disable"):
        _leaf(keys, verb, f"{verb} an access key", _key).add_argument("key")
    rotate = _leaf(keys, "rotate", "a new key for USER now; the old one works for --grace more", _key)
    rotate.add_argument("user")
    rotate.add_argument("--grace", type=parse_duration, default=86400.0, metavar="DURATION", help="default 24h")

    policies = _group_of(top, "policy", "managed and inline policies", "policy_action")
    for verb, text in (("create", "create a managed policy"), ("update", "store a new version of a policy")):
        sub = _leaf(policies, verb, text, _policy)
        sub.add_argument("name")
        sub.add_argument("--document", required=True, metavar="FILE", help="the policy JSON (- for stdin)")
        sub.add_argument("--description", default="")
    _leaf(policies, "list", "built-in and managed policies", _policy)
    for verb, text in (("get", "a policy's document and attachments"), ("delete", "delete a managed policy")):
        _leaf(policies, verb, text, _policy).add_argument("name")
    for verb, text in (
        ("attach", "attach a policy to a user or group"),
        ("detach", "detach a policy"),
        ("put-inline", "store an inline policy on a user or group"),
        ("delete-inline", "delete an inline policy"),
    ):
        sub = _leaf(policies, verb, text, _policy)
        sub.add_argument("name")
        sub.add_argument("--user")
        sub.add_argument("--group")
        if verb == "put-inline":
            sub.add_argument("--document", required=True, metavar="FILE", help="the policy JSON (- for stdin)")

    root = _group_of(top, "root", "the root key pair", "root_action")
    rrotate = _leaf(root, "rotate", "a new root key now; the old one works for --grace more", _root)
    rrotate.add_argument("--grace", type=parse_duration, default=86400.0, metavar="DURATION", help="default 24h")

    simulate = top.add_parser(
        "simulate", help="would USER be allowed ACTION on RESOURCE?", description="exit 0 allowed, 5 denied"
    )
    _common_options(simulate)
    simulate.add_argument("--user", required=True)
    simulate.add_argument("--action", required=True, help="e.g. s3:GetObject")
    simulate.add_argument("--resource", required=True, help="e.g. arn:aws:s3:::bucket/key")
    simulate.add_argument("--source-ip", default="", metavar="IP")
    simulate.set_defaults(handler=_runner(_simulate))

    add_import_parser(top, _common_options, _runner)
