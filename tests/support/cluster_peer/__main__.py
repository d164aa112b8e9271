"""Command line of the test peer: `python -m tests.support.cluster_peer --port P --node URL … --state FILE`."""

from __future__ import annotations

import sys

from tests.support.cluster_peer.server import main

if __name__ == "__main__":
    sys.exit(main())
