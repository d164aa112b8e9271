"""`s3ipfs pins …`: pin statuses, replication policies, peers, reconcile, rebalance and batches, through the
running gateway's admin API (admin.host/admin.port of the config). `--json` prints the API's JSON as is.

Authenticates with the token found by appliance/api/admin/client.py (`s3ipfs admin login`, $S3IPFS_ADMIN_TOKEN,
or the local root token file on the box).

Exit codes: 0 done; 1 the gateway refused the request (bad input, unknown bucket/CID/batch, no or bad token); 3 the
gateway or the cluster is unreachable; 4 the cluster answered with an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from appliance.api.admin.client import AdminClient
from appliance.cli.common import add_config_option, load
from appliance.errors import BackendError, RequestError

__all__ = ["add_parser"]

_MAX_FILE_CIDS = 100_000


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _ago(stamp: float) -> str:
    if not stamp:
        return "-"
    seconds = max(0.0, time.time() - stamp)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _policy_line(policy: dict[str, Any]) -> str:
    parts = [f"replication {policy['replication_min']}..{policy['replication_max']}", f"ack {policy['ack']}"]
    if policy.get("allocations"):
        parts.append("peers " + ",".join(policy["allocations"]))
    if policy.get("tags"):
        parts.append("tags " + ",".join(f"{k}={v}" for k, v in sorted(policy["tags"].items())))
    return ", ".join(parts)


# ---- commands ------------------------------------------------------------------------------------------------


def _summary(api: AdminClient, args: argparse.Namespace) -> Any:
    data = api.call("GET", "/pins/summary")
    if args.json:
        return data
    print(f"pinner: {data['pinner']}")
    print(f"outbox depth: {data['outbox_depth']}")
    for state, count in sorted(data["states"].items()):
        print(f"  {state:<10} {count}")
    print(f"completed since start: {data['completed_total']}, errors since start: {data['errors_total']}")
    return None


def _list(api: AdminClient, args: argparse.Namespace) -> Any:
    query = httpx.QueryParams({"limit": str(args.limit), **({"state": args.state} if args.state else {})})
    if args.after:
        query = query.set("after", args.after)
    data = api.call("GET", f"/pins?{query}")
    if args.json:
        return data
    for pin in data["pins"]:
        pinned = sum(1 for p in pin["peers"] if p["status"] == "pinned")
        print(f"{pin['cid']}  {pin['state']:<9} {pinned} peers pinned  {pin.get('error') or ''}".rstrip())
    if data.get("next"):
        print(f"(more: --after {data['next']})", file=sys.stderr)
    return None


def _status(api: AdminClient, args: argparse.Namespace) -> Any:
    data = api.call("GET", f"/pins/{args.cid}" + ("?live=1" if args.live else ""))
    if args.json:
        return data
    status = data.get("status")
    print(f"cid: {data['cid']}")
    if status:
        print(f"state: {status['state']}  (updated {_ago(status.get('updated', 0))})")
        if status.get("error"):
            print(f"error: {status['error']}")
        for peer in status["peers"]:
            print(f"  {peer['peer']}  {peer['status']}  {peer.get('error') or ''}".rstrip())
    job = data.get("job")
    if job:
        print(f"outbox job: {job['phase']} {job['state']}, attempts {job.get('attempts', 0)}")
    live = data.get("live")
    if live:
        print(f"live: pinned={live['pinned']} allocations={','.join(live['allocations']) or '-'}")
    return None


def _repin(api: AdminClient, args: argparse.Namespace) -> Any:
    data = api.call("POST", f"/pins/{args.cid}/repin")
    return data if args.json else print(f"queued {data['queued']} pin job(s) for {args.cid}")


def _policy_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.min is not None:
        body["replication_min"] = args.min
    if args.max is not None:
        body["replication_max"] = args.max
    if args.ack:
        body["ack"] = args.ack
    if args.peers:
        body["allocations"] = [p for p in args.peers.split(",") if p]
    if args.tags:
        tags: dict[str, str] = {}
        for pair in args.tags.split(","):
            name, sep, value = pair.partition("=")
            if not sep or not name or not value:
                raise RequestError(f"--tags takes name=value pairs separated by commas, not {pair!r}")
            tags[name] = value
        body["tags"] = tags
    return body


def _policy(api: AdminClient, args: argparse.Namespace) -> Any:
    path = f"/buckets/{args.bucket}/replication"
    if args.policy_action == "get":
        data = api.call("GET", path)
    elif args.policy_action == "set":
        body = _policy_body(args)
        if not body:
            raise RequestError("give at least one of --min, --max, --ack, --peers, --tags")
        data = api.call("PUT", path, body=body)
    else:
        data = api.call("DELETE", path)
    if args.json:
        return data
    origin = "its own policy" if data["own"] else "the defaults of the config"
    print(f"{data['bucket']}: {_policy_line(data['policy'])} ({origin})")
    return None


def _peers(api: AdminClient, args: argparse.Namespace) -> Any:
    data = api.call("GET", "/peers")
    if args.json:
        return data
    print(f"pinner: {data['pinner']}")
    for peer in data["peers"]:
        free = "-" if peer.get("freespace") is None else f"{peer['freespace'] / 1024**3:.1f} GiB free"
        tags = ",".join(f"{k}={v}" for k, v in sorted(peer.get("tags", {}).items()))
        state = f"ERROR {peer['error']}" if peer.get("error") else "ok"
        print(f"{peer['id']}  {peer.get('name') or '-'}  {state}  {free}  {tags}".rstrip())
    return None


def _reconcile(api: AdminClient, args: argparse.Namespace) -> Any:
    if args.last:
        data = api.call("GET", "/reconcile")
    else:
        data = api.call("POST", "/reconcile" + ("?dry_run=1" if args.dry_run else ""), long=True)
    if args.json:
        return data
    print(f"reconcile{' (dry run: nothing changed)' if data['dry_run'] else ''} with the {data['pinner']} pinner")
    print(f"  referenced CIDs: {data['referenced']}, in the pinset: {data['pinset']}")
    print(f"  missing from the pinset: {data['missing']}  (queued again: {data['queued']})")
    print(f"  in error on a peer: {data['errored']}  (recovered: {data['recovered']})")
    print(f"  our orphan pins: {data['orphans']}  (queued for unpin: {data['orphans_queued']})")
    print(f"  pins made by others (left alone): {data['foreign']}")
    for category, sample in data["samples"].items():
        for cid in sample[:10]:
            print(f"    {category}: {cid}")
    for failure in data["failures"]:
        print(f"  failure: {failure}")
    return None


def _rebalance(api: AdminClient, args: argparse.Namespace) -> Any:
    if args.last:
        data = api.call("GET", "/rebalance")
    else:
        data = api.call("POST", "/rebalance" + ("?dry_run=1" if args.dry_run else ""), long=True)
    if args.json:
        return data
    print(f"rebalance{' (dry run: nothing moved)' if data['dry_run'] else ''}")
    for peer, why in data["sources"].items():
        print(f"  drain {peer}: {why}")
    for move in data["planned"]:
        print(f"  move {move['cid']}: {move['from']} -> {move['to']}")
    print(f"  moved: {data['moved']}")
    for failure in data["failures"]:
        print(f"  failure: {failure}")
    return None


def _read_cids(args: argparse.Namespace) -> list[str]:
    cids = list(args.cids or [])
    if args.file:
        try:
            source = sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8")  # noqa: SIM115
            with source:
                for line in source:
                    text = line.strip()
                    if text and not text.startswith("#"):
                        cids.append(text)
                    if len(cids) > _MAX_FILE_CIDS:
                        raise RequestError(f"more than {_MAX_FILE_CIDS} CIDs; split the list")
        except (OSError, UnicodeDecodeError) as exc:  # a missing, unreadable or binary file is the caller's error
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise RequestError(f"cannot read CIDs from {args.file}: {reason}") from exc
    if not cids:
        raise RequestError("give CIDs as arguments or with --file FILE (one per line, - for stdin)")
    return cids


def _batch_line(batch: dict[str, Any]) -> str:
    total = "?" if batch["total"] is None else str(batch["total"])
    line = (
        f"{batch['id']}  {batch['op']:<5} {batch['state']:<9} {batch['done']}/{total} done,"
        f" {batch['failed']} failed, {batch['skipped']} skipped"
    )
    return line


def _wait(api: AdminClient, batch: dict[str, Any]) -> dict[str, Any]:
    last = ""
    while batch["state"] == "running":
        line = _batch_line(batch)
        if line != last:
            print(line, file=sys.stderr)
            last = line
        time.sleep(1.0)
        batch = api.call("GET", f"/batches/{batch['id']}")
    return batch


def _batch(api: AdminClient, args: argparse.Namespace) -> Any:
    action = args.batch_action
    if action == "list":
        data = api.call("GET", "/batches")
        if not args.json:
            for batch in data["batches"]:
                print(_batch_line(batch))
            return None
        return data
    if action == "status":
        data = api.call("GET", f"/batches/{args.id}")
    elif action == "cancel":
        data = api.call("DELETE", f"/batches/{args.id}")
        return data if args.json else print(f"cancelled {args.id}")
    elif action == "repin":
        body: dict[str, Any] = {"op": "repin", "bucket": args.bucket, "prefix": args.prefix}
        policy = _policy_body(args)
        if policy:
            body["policy"] = policy
        data = api.call("POST", "/batches", body=body)
    else:
        data = api.call("POST", "/batches", body={"op": action, "cids": _read_cids(args)}, long=True)
    if getattr(args, "wait", False):
        data = _wait(api, data)
    if args.json:
        return data
    print(_batch_line(data))
    for error in data.get("errors", []):
        print(f"  error: {error}")
    if data["state"] == "failed":
        raise BackendError(f"batch {data['id']} failed")
    return None


# ---- argparse -----------------------------------------------------------------------------------------------


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min", type=int, metavar="N", help="replication-min (-1 with --max -1: every peer)")
    parser.add_argument("--max", type=int, metavar="N", help="replication-max")
    parser.add_argument("--ack", choices=("local", "cluster"), help="when a PUT is acknowledged")
    parser.add_argument("--peers", metavar="ID,ID", help="explicit allocations (peer ids)")
    parser.add_argument("--tags", metavar="K=V,K=V", help="placement by allocation tags, e.g. site=a,rack=r1")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pins = commands.add_parser("pins", help="pins, replication policies, peers, reconcile, rebalance, batches")
    actions = pins.add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(
        name: str, handler: Callable[[AdminClient, argparse.Namespace], Any], text: str, *, leaf: bool = True
    ) -> Any:
        sub = actions.add_parser(name, help=text, description=text)
        if leaf:
            _common_options(sub)
        sub.set_defaults(handler=_runner(handler))
        return sub

    command("summary", _summary, "pin counts per state, the outbox depth and counters")
    lister = command("list", _list, "pin statuses in CID order")
    lister.add_argument("--state", choices=("queued", "pinning", "pinned", "error", "unpinning"))
    lister.add_argument("--limit", type=int, default=100, help="at most this many (1..10000)")
    lister.add_argument("--after", default="", metavar="CID", help="start after this CID (paging)")
    status = command("status", _status, "one CID: its stored status, its outbox job")
    status.add_argument("cid")
    status.add_argument("--live", action="store_true", help="also ask the cluster now")
    repin = command("repin", _repin, "queue a CID's pin again with its bucket's current policy")
    repin.add_argument("cid")
    policy = command("policy", _policy, "a bucket's replication policy: get, set or clear (back to the defaults)")
    policy.add_argument("policy_action", choices=("get", "set", "clear"))
    policy.add_argument("bucket")
    _policy_options(policy)
    command("peers", _peers, "the cluster peers with free space, tags and errors")
    reconcile = command(
        "reconcile", _reconcile, "compare the metadata's CIDs with the pinset: re-pin missing, recover errors"
    )
    reconcile.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    reconcile.add_argument("--last", action="store_true", help="show the last periodic report instead of running")
    rebalance = command("rebalance", _rebalance, "move allocations off full or overloaded peers")
    rebalance.add_argument("--dry-run", action="store_true", help="plan only, move nothing")
    rebalance.add_argument("--last", action="store_true", help="show the last report instead of running")

    batch = command(
        "batch", _batch, "batch operations with progress: repin a bucket/prefix, pin or unpin CIDs", leaf=False
    )
    batch_actions = batch.add_subparsers(dest="batch_action", required=True, metavar="BATCH_ACTION")
    repin_batch = batch_actions.add_parser("repin", help="re-pin every object of a bucket (or prefix)")
    repin_batch.add_argument("bucket")
    repin_batch.add_argument("--prefix", default="")
    _policy_options(repin_batch)
    repin_batch.add_argument("--wait", action="store_true", help="show progress until it ends")
    _common_options(repin_batch)
    for op in ("pin", "unpin"):
        listed = batch_actions.add_parser(op, help=f"{op} a list of CIDs")
        listed.add_argument("cids", nargs="*", metavar="CID")
        listed.add_argument("--file", metavar="FILE", help="CIDs one per line (- for stdin)")
        listed.add_argument("--wait", action="store_true", help="show progress until it ends")
        _common_options(listed)
    _common_options(batch_actions.add_parser("list", help="every batch remembered"))
    for name in ("status", "cancel"):
        one = batch_actions.add_parser(name, help=f"{name} one batch")
        one.add_argument("id")
        if name == "status":
            one.add_argument("--wait", action="store_true", help="show progress until it ends")
        _common_options(one)


def _common_options(parser: argparse.ArgumentParser) -> None:
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print the admin API's JSON")


def _runner(handler: Callable[[AdminClient, argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        api = AdminClient.from_config(load(args))
        data = handler(api, args)
        if data is not None:
            _print_json(data)
        return 0

    return run
