"""What every command shares: the --config option and loading the config it names."""

from __future__ import annotations

import argparse
import os

from appliance.config import AppConfig, load_config

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "add_config_option", "load"]

DEFAULT_CONFIG = "/etc/s3ipfs/s3ipfs.yaml"
CONFIG_ENV = "S3IPFS_CONFIG"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"the YAML config file (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})",
    )


def load(args: argparse.Namespace) -> AppConfig:
    """The validated config named by --config; raises ConfigError."""
    path = args.config or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    # S3IPFS_CONFIG names the file; it is not a config key override.
    env = {name: value for name, value in os.environ.items() if name != CONFIG_ENV}
    return load_config(path, env)
