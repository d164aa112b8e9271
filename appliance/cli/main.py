"""The `s3ipfs` command: parse argv, dispatch to one module per command, map domain errors to exit codes."""

from __future__ import annotations

import argparse
import sys

from appliance.cli import admin, audit, config_check, credentials, doctor, iam, node, pins, scrub, serve, tls, tui
from appliance.errors import S3IpfsError

__all__ = ["build_parser", "entry", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3ipfs", description="S3-compatible object storage whose bytes live in IPFS."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_parser(commands)
    config_check.add_parser(commands)
    credentials.add_parser(commands)
    node.add_parser(commands)
    pins.add_parser(commands)
    scrub.add_parser(commands)
    doctor.add_parser(commands)
    iam.add_parser(commands)
    tls.add_parser(commands)
    tui.add_parser(commands)
    admin.add_parser(commands)
    audit.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (2 for a bad config or bad usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        code: int = args.handler(args)
    except S3IpfsError as exc:
        print(f"s3ipfs: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
