"""`python -m appliance.cli`: the same as the `s3ipfs` command."""

from __future__ import annotations

from appliance.cli.main import entry

if __name__ == "__main__":
    entry()
