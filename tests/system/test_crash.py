"""kill -9 of the whole gateway in the middle of concurrent uploads: every acknowledged object survives the restart,
byte for byte, and nothing half-written appears."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from appliance.ipfsconn.devnode import LocalNode
from tests.support.gateway import _kill_group, start_gateway, stop_gateway


def _client(gw: Any) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.endpoint,
        aws_access_key_id=gw.access_key,
        aws_secret_access_key=gw.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
    )


def test_kill_9_loses_no_acknowledged_object(tmp_path: Path, node: LocalNode) -> None:
    gw = start_gateway(tmp_path, node, workers=2, name="crashy")
    acknowledged: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _client(gw).create_bucket(Bucket="crash")

        def writer(n: int) -> None:
            s3 = _client(gw)
            i = 0
            while not stop.is_set():
                key = f"w{n}/{i}"
                data = os.urandom(20_000 + i * 7)
                try:
                    s3.put_object(Bucket="crash", Key=key, Body=data)
                except Exception:
                    return  # the gateway is gone: this PUT was not acknowledged
                with lock:
                    acknowledged[key] = hashlib.md5(data).hexdigest()
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(3.0)
        _kill_group(gw)  # SIGKILL to the main process and every worker, mid-upload
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        stop_gateway(gw)
    assert len(acknowledged) > 10
    again = start_gateway(tmp_path, node, workers=2, name="crashy")
    try:
        s3 = _client(again)
        listed = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash"):
            listed.update({o["Key"]: o["ETag"].strip('"') for o in page.get("Contents", [])})
        for key, md5 in acknowledged.items():
            assert listed.get(key) == md5, key
            assert hashlib.md5(s3.get_object(Bucket="crash", Key=key)["Body"].read()).hexdigest() == md5
        # Anything listed beyond the acknowledged ones was committed just before the kill: it must be whole.
        for key in set(listed) - set(acknowledged):
            body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            assert hashlib.md5(body).hexdigest() == listed[key]
    finally:
        stop_gateway(again)
