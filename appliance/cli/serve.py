"""Run the gateway: S3 workers, the admin API and background jobs, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse

from appliance import daemon
from appliance.cli.common import add_config_option, load

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help=__doc__, description=__doc__)
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return daemon.run(load(args))
