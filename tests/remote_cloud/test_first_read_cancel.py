"""A scan cancelled while a bucket key's first reads (S3, GCS) wait for their answers lets
go of the store's client: before, the reader those reads fill kept its hold on the client,
whose session was then never closed, and the loop logged "Unclosed client session" as an
ERROR once it was collected (in a service, after every such cancelled call). The store is a
real loopback listener that takes the connections and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

import modelaudit
from tests.remote_cloud import test_gcs, test_s3
from tests.remote_cloud._remote_cloud_servers import clean_env


@contextmanager
def silent_store() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback endpoint that takes every connection and never answers; the connections
    taken so far."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    taken: list[socket.socket] = []

    def take() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            taken.append(conn)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", taken
    finally:
        # (on Linux, what wakes the accept; a close alone leaves it waiting)
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for conn in taken:
            conn.close()
        thread.join(5)


async def _cancelled_while_reading_first(uri: str, taken: list[socket.socket]) -> list[str]:
    """What the loop logged of the scan of `uri`, cancelled once its two first reads are
    sent, by the time what it left is collected."""
    logged: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: logged.append(str(context["message"])))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(modelaudit.scan, uri)
            with anyio.fail_after(30):
                while len(taken) < 2:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
        gc.collect()
        await anyio.sleep(0.05)
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    return logged


async def test_an_s3_key_cancelled_in_its_first_reads_closes_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with silent_store() as (url, taken):
        env = clean_env(
            AWS_ENDPOINT_URL=url,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        test_s3.use_env(monkeypatch, env)
        logged = await _cancelled_while_reading_first("s3://bucket/model.safetensors", taken)
    assert logged == []


async def test_a_gcs_key_cancelled_in_its_first_reads_closes_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with silent_store() as (url, taken):
        test_gcs.use_env(monkeypatch, clean_env(STORAGE_EMULATOR_HOST=url))
        logged = await _cancelled_while_reading_first("gs://bucket/model.safetensors", taken)
    assert logged == []
