"""Check this appliance and say how to fix what is wrong: config, state dir, ports, disk, metadata store, IPFS node,
cluster, clock and TLS certificates. Each check prints OK, WARN or FAIL and, when not OK, how to fix it.

Exit codes: 0 every check is OK; 1 at least one warning and no failure; 2 at least one failure (an invalid config
is a failure: nothing else is checked then).

--bundle FILE also writes a support tarball (system info, the redacted config, `node status`, the recent journal, a
metrics snapshot and these results) with every secret redacted; send that file, never the config itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from appliance.cli.bundle import write_bundle
from appliance.cli.common import CONFIG_ENV, DEFAULT_CONFIG, add_config_option, load
from appliance.cli.doctor_checks import FAIL, OK, WARN, Check, run_checks
from appliance.config import AppConfig
from appliance.errors import ConfigError

__all__ = ["EXIT_FAIL", "EXIT_OK", "EXIT_WARN", "add_parser", "exit_code", "run"]

EXIT_OK, EXIT_WARN, EXIT_FAIL = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the appliance and say how to fix what is wrong",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print the checks as a JSON list")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per network check (default 5)")
    parser.add_argument("--bundle", metavar="FILE", help="also write a redacted support tarball (.tar.gz) to FILE")
    parser.set_defaults(handler=run)


def exit_code(checks: list[Check]) -> int:
    statuses = {check.status for check in checks}
    if FAIL in statuses:
        return EXIT_FAIL
    return EXIT_WARN if WARN in statuses else EXIT_OK


def diagnose(args: argparse.Namespace) -> tuple[AppConfig | None, list[Check]]:
    """The config (None if invalid) and every check's result."""
    path = args.config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    try:
        config = load(args)
    except ConfigError as exc:
        return None, [Check("config", FAIL, exc.message, f"edit {path}, then run `s3ipfs config check`")]
    checks = [Check("config", OK, f"{path} is valid")]
    checks += asyncio.run(run_checks(config, wait=args.timeout))
    return config, checks


def _print(checks: list[Check]) -> None:
    width = max(len(check.name) for check in checks)
    for check in checks:
        print(f"{check.status:<4}  {check.name:<{width}}  {check.detail}")
        if check.status != OK and check.fix:
            print(f"{'':<4}  {'':<{width}}  fix: {check.fix}")


def run(args: argparse.Namespace) -> int:
    config, checks = diagnose(args)
    results = json.dumps([check.as_json() for check in checks], indent=2) + "\n"
    if args.json:
        print(results, end="")
    else:
        _print(checks)
    if args.bundle:
        if config is None:
            print("s3ipfs doctor: no bundle: the config is invalid (fix it first)")
        else:
            path = args.config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
            members = write_bundle(Path(args.bundle), config, path, results)
            if not args.json:
                print(f"support bundle written to {args.bundle} ({', '.join(members)}); secrets redacted")
    return exit_code(checks)
