"""The local Kubo and IPFS-Cluster daemons: config files for a private LAN network, status, development start/stop.

Pure builders (`kubo_repo`, `cluster_dir`, `identity`, `secrets`, `multiaddr`), all-or-nothing file writing
(`files`), `node init` planning (`setup`), the status gatherer (`status`) and the development process manager
(`devprocs`). `appliance.cli.node` is the command line on top.
"""

from __future__ import annotations
