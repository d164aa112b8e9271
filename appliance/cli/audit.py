"""`s3ipfs audit verify|tail|search`: read the hash-chained audit files directly (root on the box; no daemon).

verify  checks every chain; exit 0 when whole, 1 at the first break (file, line and the record are printed)
tail    the last N records (-n), and new ones as they come (-f)
search  records matching every filter given: --user --action --bucket --result (status or code) --since --until
Times for --since/--until: ISO 8601 (2026-12-08T03:00:00Z) or seconds since the epoch.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.cli.common import add_config_option, load
from appliance.errors import RequestError
from appliance.service.audit_log import records, verify_dir

__all__ = ["add_parser", "matches"]


def _directory(args: argparse.Namespace) -> Path:
    return Path(args.dir) if args.dir else load(args).audit_path


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RequestError(f"{text!r} is not a time: give ISO 8601 or epoch seconds") from exc
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _line(data: dict[str, Any]) -> str:
    stamp = datetime.fromtimestamp(float(data["time"]), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    principal = data.get("principal") or {}
    who = principal.get("user") or principal.get("access_key") or "-"
    result = f"{data['status']}{' ' + data['code'] if data.get('code') else ''}"
    cid = f" cid={data['cid']}" if data.get("cid") else ""
    return (
        f"{stamp} {data['api']:<5} {data['action']:<28} {data.get('resource') or '-'} by {who}"
        f" from {data.get('source_ip') or '-'}: {result} {data.get('bytes', 0)}B{cid} [{data.get('request_id', '')}]"
    )


def _print(data: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(data, sort_keys=True) if as_json else _line(data), flush=True)


def matches(data: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether a record passes every filter of `args`."""
    principal = data.get("principal") or {}
    if args.user and args.user not in (principal.get("user"), principal.get("access_key")):
        return False
    if args.action and args.action.lower() not in str(data.get("action", "")).lower():
        return False
    resource = str(data.get("resource", ""))
    if args.bucket and resource.split("/", 1)[0] != args.bucket:
        return False
    if args.result and args.result not in (str(data.get("status")), data.get("code")):
        return False
    if args.since and float(data["time"]) < _when(args.since):
        return False
    return not (args.until and float(data["time"]) > _when(args.until))


def _verify(args: argparse.Namespace) -> int:
    directory = _directory(args)
    count, broken = verify_dir(directory)
    if broken is None:
        print(f"ok: {count} records in {directory} verify")
        return 0
    print(f"BROKEN after {count} whole records: {broken.describe()}")
    return 1


def _tail(args: argparse.Namespace) -> int:
    directory = _directory(args)
    last: deque[tuple[str, int, dict[str, Any]]] = deque(records(directory), maxlen=max(0, args.n))
    for _name, _number, data in last:
        _print(data, args.json)
    if not args.follow:
        return 0
    seen = {(name, number) for name, number, _data in records(directory)}
    try:
        while True:
            time.sleep(args.interval)
            for name, number, data in records(directory):
                if (name, number) not in seen:
                    seen.add((name, number))
                    _print(data, args.json)
    except KeyboardInterrupt:
        return 0


def _search(args: argparse.Namespace) -> int:
    found: Iterable[dict[str, Any]] = (data for _n, _l, data in records(_directory(args)) if matches(data, args))
    for data in found:
        _print(data, args.json)
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the audit log: verify the hash chains, tail, search")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")

    def sub(name: str, handler: Any, text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=text, description=text)
        add_config_option(parser)
        parser.add_argument("--dir", default="", help="the audit directory (default: audit.dir of the config)")
        parser.add_argument("--json", action="store_true", help="print each record as JSON")
        parser.set_defaults(handler=handler)
        return parser

    sub("verify", _verify, "check the hash chains; exit 1 at the first broken record")
    tail = sub("tail", _tail, "the last records; -f follows new ones")
    tail.add_argument("-n", type=int, default=20, help="how many (default 20)")
    tail.add_argument("-f", "--follow", action="store_true")
    tail.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    search = sub("search", _search, "records matching every filter given")
    search.add_argument("--user", default="", help="user name or access key")
    search.add_argument("--action", default="", help="part of the action name, e.g. PutObject or admin:")
    search.add_argument("--bucket", default="")
    search.add_argument("--result", default="", help="an HTTP status (403) or error code (AccessDenied)")
    search.add_argument("--since", default="")
    search.add_argument("--until", default="")
