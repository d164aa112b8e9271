"""Pinning adapters: where the gateway's pins live (an IPFS-Cluster, or the local Kubo)."""
