"""`s3ipfs scrub`: check that every block of every object is on the local IPFS node with the right hash and that its
pin is where its policy says; with --repair, fetch good copies from the peers and pin again (docs/scrub.md). Talks to
the running gateway's admin API (admin.host/admin.port of the config).

    s3ipfs scrub [--bucket B [--prefix P]] [--rate N] [--repair] [--wait]   start a run (--wait: follow it)
    s3ipfs scrub status [--wait]                                            the running run (progress, ETA), the last
    s3ipfs scrub cancel                                                     cancel the running run
    s3ipfs scrub damage [--limit N]                                         the open damaged-block reports

Exit codes: 0 done and clean (or a run started); 1 refused (bad input, unknown bucket, a run is already going on,
nothing to cancel); 3 the gateway or the IPFS node is unreachable; 4 the run failed; 5 damage found and not repaired
(`--wait`, `status` of a finished run, or `damage` listing open reports).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from appliance.api.admin.client import AdminClient
from appliance.cli.common import add_config_option, load
from appliance.errors import BackendError, RequestError

__all__ = ["DAMAGE_EXIT", "add_parser", "progress_line"]

DAMAGE_EXIT = 5
_POLL = 1.0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def progress_line(run: dict[str, Any]) -> str:
    """One line of a running run: items done of the estimate, what it found, its rate and ETA."""
    counters = run["counters"]
    return (
        f"scrub {run['id']} {run['state']}: {run['done']}/{run['total']} items ({run['fraction'] * 100:.1f}%),"
        f" {counters['damaged']} damaged, {counters['missing']} missing, {counters['repaired']} repaired,"
        f" {counters['pins_wrong']} pins wrong, {run['rate']:.1f} items/s, ETA {_duration(run['eta_seconds'])}"
    )


def _left_bad(summary: dict[str, Any]) -> bool:
    """Whether a finished run left damage or wrong pins behind."""
    return bool(summary["unrepaired"]) or summary["pins_wrong"] > summary["pins_repaired"]


def _print_summary(summary: dict[str, Any]) -> None:
    options = summary["options"]
    scope = options["bucket"] + (f"/{options['prefix']}" if options["prefix"] else "") or "everything"
    print(
        f"scrub {summary['id']} {summary['state']} ({scope}, {'repair' if options['repair'] else 'report only'},"
        f" {summary['duration_seconds']:.1f}s, resumed {summary['resumes']}x)"
    )
    print(
        f"  objects checked: {summary['objects_checked']} (+{summary['objects_skipped']} with content already"
        f" checked), blocks: {summary['blocks_checked']}, bytes: {summary['bytes_checked']}"
    )
    print(
        f"  damaged: {summary['damaged']}, missing: {summary['missing']}, repaired: {summary['repaired']},"
        f" unrepaired: {summary['unrepaired']}"
    )
    pins = f"checked: {summary['pins_checked']}, wrong: {summary['pins_wrong']}, fixed: {summary['pins_repaired']}"
    print(f"  pins {pins}")
    print(f"  damage reports re-checked: {summary['reports_rechecked']}, cleared: {summary['reports_cleared']}")
    if summary["errors"]:
        print(f"  objects that could not be checked: {summary['errors']}")
    if summary.get("error"):
        print(f"  error: {summary['error']}")
    for sample in summary.get("samples", [])[:10]:
        print("    " + ", ".join(f"{k}={v}" for k, v in sample.items()))


def _outcome(summary: dict[str, Any]) -> int:
    if summary["state"] == "failed":
        raise BackendError(f"scrub {summary['id']} failed: {summary.get('error') or 'see the gateway log'}")
    return DAMAGE_EXIT if _left_bad(summary) else 0


def _follow(api: AdminClient, run_id: str, *, quiet: bool) -> dict[str, Any]:
    """Poll until run `run_id` has ended; its summary."""
    last = ""
    while True:
        status = api.call("GET", "/scrub")
        current = status.get("current")
        if status["running"] and current and current["id"] == run_id:
            line = progress_line(current)
            if line != last and not quiet:
                print(line, file=sys.stderr, flush=True)
                last = line
            time.sleep(_POLL)
            continue
        for summary in status.get("history", []):
            if summary["id"] == run_id:
                return dict(summary)
        if current and current["id"] == run_id:  # interrupted: the daemon stopped during it
            raise BackendError(f"scrub {run_id} was interrupted (the gateway stopped); it resumes when it starts")
        raise BackendError(f"scrub {run_id} is neither running nor in the history")


def _start(api: AdminClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"repair": args.repair}
    if args.bucket:
        body["bucket"] = args.bucket
    if args.prefix:
        if not args.bucket:
            raise RequestError("--prefix needs --bucket")
        body["prefix"] = args.prefix
    if args.rate is not None:
        body["rate"] = args.rate
    data = api.call("POST", "/scrub", body=body)
    run = data["current"]
    if not args.wait:
        if args.json:
            _print_json(data)
        else:
            print(f"scrub {run['id']} started ({run['total']} items); follow it with `s3ipfs scrub status --wait`")
        return 0
    summary = _follow(api, run["id"], quiet=args.json)
    if args.json:
        _print_json(summary)
    else:
        _print_summary(summary)
    return _outcome(summary)


def _status(api: AdminClient, args: argparse.Namespace) -> int:
    status = api.call("GET", "/scrub")
    current = status.get("current")
    if args.wait and status["running"] and current:
        summary = _follow(api, current["id"], quiet=args.json)
        if args.json:
            _print_json(summary)
        else:
            _print_summary(summary)
        return _outcome(summary)
    if args.json:
        _print_json(status)
    else:
        if current:
            print(progress_line(current))
        if status.get("last"):
            _print_summary(status["last"])
        if not current and not status.get("last"):
            print("no scrub has run yet; start one with `s3ipfs scrub`")
    if status["running"] or not status.get("last"):
        return 0
    return DAMAGE_EXIT if _left_bad(status["last"]) else 0


def _cancel(api: AdminClient, args: argparse.Namespace) -> int:
    data = api.call("DELETE", "/scrub")
    if args.json:
        _print_json(data)
    else:
        print(f"cancelled scrub {data['id']}")
    return 0


def _damage(api: AdminClient, args: argparse.Namespace) -> int:
    data = api.call("GET", f"/damage?limit={args.limit}")
    if args.json:
        _print_json(data)
    else:
        for report in data["reports"]:
            print(
                f"{report['block']}  {report['reason']}  root {report['root']}  seen {report['count']}x"
                f" (by {report['source']})"
            )
        print(f"{data['count']} block(s) with an open damage report", file=sys.stderr)
    return DAMAGE_EXIT if data["count"] else 0


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


_ACTIONS = {"start": _start, "status": _status, "cancel": _cancel, "damage": _damage}


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError("must be an integer from 1 to 10000")
    return int(text)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = __doc__ or ""
    parser = commands.add_parser(
        "scrub",
        help="check every object's blocks and pins on the local node; repair from the peers",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", default="start", choices=tuple(_ACTIONS), help="default: start")
    parser.add_argument("--bucket", default="", help="only this bucket")
    parser.add_argument("--prefix", default="", help="only keys under this prefix (needs --bucket)")
    parser.add_argument("--rate", type=_positive, metavar="N", help="objects per second (default: scrub.rate)")
    parser.add_argument("--repair", action="store_true", help="re-fetch bad or missing blocks, pin again")
    parser.add_argument("--wait", action="store_true", help="follow the run with a progress line until it ends")
    parser.add_argument("--limit", type=_limit, default=1000, help="damage: at most this many reports")
    parser.add_argument("--json", action="store_true", help="print the admin API's JSON")
    add_config_option(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    api = AdminClient.from_config(load(args))
    return _ACTIONS[args.action](api, args)
