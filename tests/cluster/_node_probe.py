"""A Dask worker preload for the cluster tests (`dask worker --preload this-file`).

It wraps the node's task function in this worker process only: each shard payload that
reaches the node is written to `MODELAUDIT_TEST_RECORD` (what travelled, byte for byte), and
while the file named by `MODELAUDIT_TEST_HOLD` exists every task waits before scanning, after
starting the node's engine and dropping a marker `<record>/held-<pid>` (a slow node a test
can kill mid-shard, its scan workers running).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any


def dask_setup(worker: Any) -> None:
    from modelaudit.cluster import node

    original = node.scan_shard
    record = os.environ.get("MODELAUDIT_TEST_RECORD")
    hold = os.environ.get("MODELAUDIT_TEST_HOLD")

    def scan_shard(payload: bytes) -> bytes:
        if record:
            name = f"{time.time():.6f}-{os.getpid()}-{uuid.uuid4().hex}"
            with open(os.path.join(record, name + ".part"), "wb") as f:
                f.write(payload)
            os.replace(os.path.join(record, name + ".part"), os.path.join(record, name + ".json"))
        if hold and os.path.exists(hold):
            # The node's engine (its scan workers) runs before the hold, as mid-shard.
            node._node_engine()
            if record:
                with open(os.path.join(record, f"held-{os.getpid()}"), "w") as f:
                    f.write(worker.address)
            while os.path.exists(hold):
                time.sleep(0.05)
        return original(payload)

    node.scan_shard = scan_shard  # type: ignore[assignment]
