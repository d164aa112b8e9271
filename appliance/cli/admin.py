"""`s3ipfs admin login|token|logout|revoke|tokens|whoami`: bearer tokens of the admin API (docs/admin-api.md).

login   asks for a token with a key pair (flags, or prompts) and keeps it in ~/.config/s3ipfs/admin-token (0600)
token   prints a new token (for scripts and Prometheus' `authorization` scrape setting); --ttl 1h, 30m, 7d, 3600
logout  revokes the login token and removes the file
revoke  revokes one token by id, or --all (the daemon's local root token too with --include-local)
Without --access-key, login/token use the root key pair file when this user can read it (root on the box).

Exit codes: 0 done; 1 refused (wrong key, no admin rights, unknown token id); 3 the gateway is unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from typing import Any

from appliance.api.admin.client import AdminClient, find_token, login_token_path
from appliance.cli.common import add_config_option, load
from appliance.config import AppConfig
from appliance.errors import RequestError
from appliance.service.admin_tokens import token_id_of
from appliance.service.identity import load_or_create_root

__all__ = ["add_parser", "parse_ttl"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """Seconds from "3600", "90s", "30m", "1h" or "7d"."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not match:
        raise RequestError(f"--ttl {text!r}: give seconds or a number with s, m, h or d (e.g. 1h)")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def _key_pair(args: argparse.Namespace, config: AppConfig) -> tuple[str, str]:
    if args.access_key and args.secret_key:
        return args.access_key, args.secret_key
    if not args.access_key and os.access(config.credentials_path, os.R_OK):
        creds, _created = load_or_create_root(config.credentials_path)
        return creds.access_key, creds.secret_key
    if not sys.stdin.isatty():
        raise RequestError("give --access-key and --secret-key (no terminal to prompt on)")
    access_key = args.access_key or input("access key: ").strip()
    secret_key = args.secret_key or getpass.getpass("secret key: ")
    return access_key, secret_key


def _issue(args: argparse.Namespace, config: AppConfig) -> dict[str, Any]:
    access_key, secret_key = _key_pair(args, config)
    body: dict[str, Any] = {"access_key": access_key, "secret_key": secret_key}
    if args.ttl:
        body["ttl"] = parse_ttl(args.ttl)
    data: dict[str, Any] = AdminClient.from_config(config).call("POST", "/auth/token", body=body, auth=False)
    return data


def _login(args: argparse.Namespace) -> int:
    config = load(args)
    data = _issue(args, config)
    path = login_token_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data["token"] + "\n")
    os.replace(tmp, path)
    print(f"logged in as {data['user']} (token {data['token_id']}); saved to {path}")
    return 0


def _token(args: argparse.Namespace) -> int:
    data = _issue(args, load(args))
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(data["token"])
    return 0


def _logout(args: argparse.Namespace) -> int:
    path = login_token_path()
    token = find_token(None) if path.exists() else ""
    token_id = token_id_of(token) if token else None
    if token_id:
        client = AdminClient.from_config(load(args), token=token)
        try:
            client.call("DELETE", f"/auth/tokens/{token_id}")
        except RequestError as exc:  # already expired or revoked: the file goes all the same
            print(f"s3ipfs: {exc.message}", file=sys.stderr)
    path.unlink(missing_ok=True)
    print("logged out")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    client = AdminClient.from_config(load(args))
    if args.all:
        suffix = "?include_local=1" if args.include_local else ""
        data = client.call("DELETE", f"/auth/tokens{suffix}")
        print(json.dumps(data) if args.json else f"revoked {data['revoked_count']} token(s)")
        return 0
    if not args.token_id:
        raise RequestError("give a TOKEN_ID (see `s3ipfs admin tokens`) or --all")
    token_id = token_id_of(args.token_id) or args.token_id  # a whole token is accepted too
    data = client.call("DELETE", f"/auth/tokens/{token_id}")
    print(json.dumps(data) if args.json else f"revoked {token_id}")
    return 0


def _tokens(args: argparse.Namespace) -> int:
    data = AdminClient.from_config(load(args)).call("GET", "/auth/tokens")
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    for token in data["tokens"]:
        expires = "never (local)" if not token["expires"] else f"{token['expires']:.0f}"
        print(f"{token['id']}  {token['user']:<16} created {token['created']:.0f}  expires {expires}")
    return 0


def _whoami(args: argparse.Namespace) -> int:
    data = AdminClient.from_config(load(args)).call("GET", "/auth/whoami")
    print(json.dumps(data) if args.json else f"{data['user']} ({data['access_key']}), token {data['token_id']}")
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser("admin", help="admin API tokens: login, token, logout, revoke, tokens, whoami")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")

    def sub(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=text, description=text)
        add_config_option(parser)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(handler=handler)
        return parser

    for name, handler, text in (
        ("login", _login, "get a token and keep it in ~/.config/s3ipfs/admin-token (0600)"),
        ("token", _token, "print a new token (scripts, Prometheus)"),
    ):
        parser = sub(name, handler, text)
        parser.add_argument("--access-key", default="")
        parser.add_argument("--secret-key", default="")
        parser.add_argument("--ttl", default="", help="lifetime: 3600, 30m, 1h, 7d (default admin.token_ttl_seconds)")
    sub("logout", _logout, "revoke the login token and remove its file")
    revoke = sub("revoke", _revoke, "revoke a token by id, or every token with --all")
    revoke.add_argument("token_id", nargs="?", default="")
    revoke.add_argument("--all", action="store_true")
    revoke.add_argument("--include-local", action="store_true", help="with --all: the daemon's local token too")
    sub("tokens", _tokens, "list the unexpired tokens")
    sub("whoami", _whoami, "who the token found is issued to")
