"""Caches of immutable content, keyed by CID (never stale: a CID names exactly one byte string)."""
