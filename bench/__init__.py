"""`make bench`: gateway throughput and latency against baselines measured in the same run (see bench/run.py)."""
