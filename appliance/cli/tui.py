"""`s3ipfs tui`: the operator console (Textual) over the running gateway's admin API (admin.host/admin.port).

Keys: 1 health, 2 pins and cluster, ctrl+p command palette, t light/dark theme, s start the daemon, q quit.
NO_COLOR is honoured. Exit codes: 0 on quit; 2 for a bad config or usage.
"""

from __future__ import annotations

import argparse
import sys

from appliance.cli.common import add_config_option, load

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    if args.setup:
        print("s3ipfs tui: the setup wizard is not available yet; use `s3ipfs config check`", file=sys.stderr)
        return 2
    config = load(args)
    # Lazily: Textual is only needed by this command, and importing it costs ~0.3 s for every other one.
    from tui.api import AdminApi
    from tui.app import S3ipfsApp, systemd_start_command

    app = S3ipfsApp(AdminApi.from_config(config), start_command=systemd_start_command(), refresh_seconds=args.refresh)
    app.run()
    return 0


def _refresh(text: str) -> float:
    value = float(text)
    if not 0.5 <= value <= 60.0:
        raise argparse.ArgumentTypeError("--refresh must be between 0.5 and 60 seconds")
    return value


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("tui", help="the operator console", description=__doc__)
    add_config_option(parser)
    parser.add_argument("--setup", action="store_true", help="run the setup wizard (not available yet)")
    parser.add_argument("--refresh", type=_refresh, default=1.0, help="dashboard refresh in seconds (default 1)")
    parser.set_defaults(handler=_run)
