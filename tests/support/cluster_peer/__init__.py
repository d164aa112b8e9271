"""A test peer speaking the IPFS-Cluster REST API (reference/ipfs-cluster-api.md) over real IPFS nodes.

    python -m tests.support.cluster_peer --port P --node http://127.0.0.1:A [--node …] --state FILE
        [--basic-auth USER:PASS] [--capacity BYTES] [--tag INDEX:NAME=VALUE] [--replication-min N]
        [--replication-max N] [--allocate-by tag:group,freespace] [--pin-timeout S] [--disable-repinning]

One cluster peer (peer0…peerN-1) per node; the process answers for peer0. Pins really go to the nodes with
`pin/add`; statuses are read back with `pin/ls`. Faults: `POST /_test/faults` (see faults.py) or
`ClusterPeer.set_faults`.
"""

from __future__ import annotations

from tests.support.cluster_peer.handle import ClusterPeer, ClusterPeerError

__all__ = ["ClusterPeer", "ClusterPeerError"]
