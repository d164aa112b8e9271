"""Print the root access key and secret, creating the key pair (mode 0600) if it does not exist yet."""

from __future__ import annotations

import argparse

from appliance.cli.common import add_config_option, load
from appliance.service.identity import load_or_create_root

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    credentials = commands.add_parser("credentials", help="the root key pair")
    actions = credentials.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help=__doc__, description=__doc__)
    add_config_option(show)
    show.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load(args)
    creds, _created = load_or_create_root(config.credentials_path)
    # Plain `name=value` lines so scripts can read them; this command exists to show the secret.
    print(f"access_key={creds.access_key}")
    print(f"secret_key={creds.secret_key}")
    print(f"file={config.credentials_path}")
    return 0
