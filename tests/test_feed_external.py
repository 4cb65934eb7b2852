"""The feed with clients that are not ours: the `websockets` library (asyncio, in a thread) and
Node's `ws` (a separate process). Each subscribes, receives, disconnects and resumes with nothing
lost; bad input gets close codes."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import websockets
from feed_support import open_feed, wait_until
from websockets.asyncio.client import connect

JS = Path(__file__).parent / "js"


def publisher(eng: Any, session_id: str) -> Callable[[int, int], None]:
    def publish(start: int, stop: int) -> None:
        for i in range(start, stop):
            eng.publish_nowait("session.worklog", {"i": i}, session_id=session_id)

    return publish


def websockets_resume(url: str, token: str, topic: str, publish: Callable[[int, int], None]) -> Any:
    """Runs in a worker thread with its own asyncio loop; calls back into trio to publish."""

    async def collect(ws: Any, want: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while len(got) < want:
            message = json.loads(await ws.recv())
            if message["type"] == "events":
                got.extend(e for e in message["events"] if e["topic"] == topic)
        return got

    async def until(ws: Any, kind: str) -> dict[str, Any]:
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return dict(message)

    async def main() -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with connect(url, additional_headers=headers) as ws:
            welcome = await until(ws, "welcome")
            await ws.send(json.dumps({"type": "subscribe", "topic": topic, "id": "a"}))
            first = await until(ws, "subscribed")
            await until(ws, "snapshot")
            trio.from_thread.run_sync(publish, 0, 10)
            one = await collect(ws, 10)
        trio.from_thread.run_sync(publish, 10, 25)  # while disconnected
        since = {"epoch": welcome["epoch"], "offset": one[-1]["offset"]}
        async with connect(f"{url}?token={token}") as ws:
            await until(ws, "welcome")
            await ws.send(json.dumps({"type": "subscribe", "topic": topic, "since": since}))
            resumed = await until(ws, "subscribed")
            two = await collect(ws, 15)
            trio.from_thread.run_sync(publish, 25, 30)  # live again
            three = await collect(ws, 5)
        # Bad input from this client: a binary frame, then an oversized message.
        async with connect(url, additional_headers=headers) as ws:
            await until(ws, "welcome")
            await ws.send(b"\x00binary")
            try:
                await until(ws, "never")
            except websockets.ConnectionClosed as exc:
                binary_code = exc.rcvd.code if exc.rcvd else None
        async with connect(url, additional_headers=headers) as ws:
            await until(ws, "welcome")
            await ws.send(json.dumps({"type": "ping", "id": "x" * 70_000}))
            try:
                await until(ws, "never")
            except websockets.ConnectionClosed as exc:
                oversize_code = exc.rcvd.code if exc.rcvd else None
        return {
            "first_recovered": first["recovered"],
            "recovered": resumed["recovered"],
            "offsets": [e["offset"] for e in one + two + three],
            "values": [e["data"]["i"] for e in one + two + three],
            "binary_code": binary_code,
            "oversize_code": oversize_code,
        }

    return asyncio.run(main())


async def test_websockets_library_client_resumes_without_loss(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_feed(tmp_path) as feed:
            topic = "worklog:py"
            result = await trio.to_thread.run_sync(
                websockets_resume,
                feed.server.url,
                feed.token(),
                topic,
                publisher(feed.eng, "py"),
            )
            assert result["first_recovered"] is False  # a fresh subscription gets a snapshot
            assert result["recovered"] is True
            assert result["offsets"] == list(range(1, 31))
            assert result["values"] == list(range(30))
            assert result["binary_code"] == 1003
            assert result["oversize_code"] == 1009
            await wait_until(lambda: feed.server.statistics().clients == 0)


class Lines:
    """JSON lines from a process's stdout."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            assert chunk, f"the client process ended; output so far: {self._buffer!r}"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return dict(json.loads(line))


async def test_node_ws_client_resumes_without_loss(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "scripts/test.sh installs Node.js"
    assert (JS / "node_modules" / "ws").is_dir(), "scripts/test.sh runs npm install in tests/js"
    with trio.fail_after(30):
        async with open_feed(tmp_path) as feed:
            topic = "worklog:js"
            publish = publisher(feed.eng, "js")
            process = await trio.lowlevel.open_process(
                [
                    node,
                    str(JS / "feed_resume.mjs"),
                    feed.server.url,
                    feed.token(),
                    topic,
                    "10",
                    "30",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            try:
                assert process.stdout is not None and process.stdin is not None
                lines = Lines(process.stdout)
                assert (await lines.next())["event"] == "subscribed"
                publish(0, 10)
                phase1 = await lines.next()
                assert phase1["event"] == "phase1", phase1
                assert phase1["offsets"] == list(range(1, 11))
                assert phase1["code"] == 1000
                publish(10, 30)  # all while it is away
                await process.stdin.send_all(b"resume\n")
                done = await lines.next()
                assert done["event"] == "done", done
                assert done["recovered"] is True
                assert done["offsets"] == list(range(11, 31))
                assert done["values"] == list(range(30))
                assert await process.wait() == 0
            finally:
                with trio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.kill()
                    await process.wait()
                    for pipe in (process.stdin, process.stdout):
                        if pipe is not None:
                            await pipe.aclose()
