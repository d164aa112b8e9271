"""Validate the config file and print the effective config (secrets redacted); exit 2 if it is invalid."""

from __future__ import annotations

import argparse

import yaml

from appliance.cli.common import add_config_option, load
from appliance.config import redacted

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser("config", help="inspect the configuration")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help=__doc__, description=__doc__)
    add_config_option(check)
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    print("config OK")
    print(yaml.safe_dump(redacted(config), sort_keys=False, default_flow_style=False), end="")
    return 0
