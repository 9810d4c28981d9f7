"""The README's service example works as written: a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import aiohttp
import anyio
from aiohttp import web

README = Path(__file__).resolve().parents[2] / "README.md"


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def _service_snippet() -> str:
    text = README.read_text()
    section = text[text.index("#### In a service") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match
    return match.group(1)


async def test_the_readme_service_example(tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "readme_service"}
    exec(compile(_service_snippet(), "README.md", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, web.Application)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil(), protocol=2))
    clean = tmp_path / "clean.pkl"
    clean.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:

            async def post(path: Path) -> dict:
                async with session.post(
                    f"http://127.0.0.1:{port}/scan", json={"path": str(path)}
                ) as response:
                    assert response.status == 200
                    return await response.json()

            results: dict[int, dict] = {}

            async def one(i: int) -> None:
                results[i] = await post(evil if i % 2 else clean)

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)
    finally:
        await runner.cleanup()
    for i, body in results.items():
        if i % 2:
            assert body["exit_code"] == 1
            assert any("system" in m for m in body["findings"])
        else:
            assert body == {"exit_code": 0, "findings": []}
    assert len(results) == 20
