"""Embedding: sync hosts through a portal thread, asyncio hosts through trio guest mode."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap

import pytest
import trio

import engine
from engine import EngineClosedError, EngineConfig, SessionState


def test_portal_calls_into_the_engine_from_sync_code() -> None:
    with engine.open_portal(EngineConfig(shutdown_grace=0.5)) as portal:

        async def start() -> engine.Session:
            s = await portal.engine.start_session("from sync", priority="high")
            s.start_soon(trio.sleep_forever)
            return s

        session = portal.call(start)
        assert portal.call_sync(lambda: session.state) is SessionState.ACTIVE
        with pytest.raises(engine.InvalidArgumentError):
            portal.call(portal.engine.start_session, "")
    assert session.state is SessionState.CANCELLED
    with pytest.raises(EngineClosedError):
        portal.call(trio.sleep, 0)


def test_portal_error_in_host_cancels_the_engine() -> None:
    with pytest.raises(RuntimeError, match="host"):
        with engine.open_portal() as portal:

            async def start() -> engine.Session:
                s = await portal.engine.start_session("x")
                s.start_soon(trio.sleep_forever)
                return s

            session = portal.call(start)
            raise RuntimeError("host failed")
    assert session.state is SessionState.CANCELLED


def _interrupted(code: str) -> tuple[str, str, int]:
    """Run a Python host on ``code`` until it prints ``ready``, press Ctrl-C, and return what it
    printed (stdout, stderr) and its exit status; it is killed if it does not end within 20 s.

    SIGINT is back at its default in the child, whoever started the tests (a background job of a
    shell without job control inherits it ignored, and Python then raises no KeyboardInterrupt)."""
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    return out, err, proc.returncode


_SYNC_HOST = textwrap.dedent(
    """
    import sys, time, trio, engine
    try:
        with engine.open_portal(engine.EngineConfig(shutdown_grace=30)) as portal:
            async def start():
                s = await portal.engine.start_session("busy")
                async def work():
                    try:
                        await trio.sleep_forever()
                    finally:
                        print("task cleaned up", flush=True)
                s.start_soon(work)
                return s
            session = portal.call(start)
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
    except KeyboardInterrupt:
        print("interrupted, session", session.state.value, flush=True)
        sys.exit(3)
    """
)


def test_ctrl_c_in_a_sync_host_cancels_the_engine_cleanly() -> None:
    out, err, code = _interrupted(_SYNC_HOST)
    assert code == 3, err
    assert "task cleaned up" in out
    assert "interrupted, session cancelled" in out


def test_asyncio_host_calls_the_engine_in_guest_mode() -> None:
    async def host() -> list[str]:
        seen: list[str] = []
        async with engine.open_asyncio_engine(EngineConfig(shutdown_grace=0.2)) as handle:

            async def start() -> str:
                s = await handle.engine.start_session("guest", priority="low")
                await trio.sleep(0.01)
                return s.state.value

            seen.append(await handle.call(start))
            # asyncio keeps running its own work meanwhile
            await asyncio.sleep(0.01)
            with pytest.raises(engine.InvalidArgumentError):
                await handle.call(handle.engine.start_session, "")

            # cancelling the asyncio caller cancels the trio task and waits for it
            cleaned = asyncio.Event()

            async def long() -> None:
                try:
                    await trio.sleep_forever()
                finally:
                    cleaned.set()

            task = asyncio.create_task(handle.call(long))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert cleaned.is_set()
            seen.append("cancelled-call-cleaned")
            sessions = await handle.call(_states, handle.engine)
            seen.extend(sessions)
        return seen

    assert asyncio.run(host()) == ["active", "cancelled-call-cleaned", "active"]


async def _states(eng: engine.Engine) -> list[str]:
    await trio.lowlevel.checkpoint()
    return [s.state.value for s in eng.sessions()]


def test_asyncio_host_shutdown_cancels_a_stubborn_session() -> None:
    async def host() -> engine.Session:
        async with engine.open_asyncio_engine(EngineConfig(shutdown_grace=0.1)) as handle:

            async def start() -> engine.Session:
                s = await handle.engine.start_session("stubborn")
                s.start_soon(trio.sleep_forever)  # ignores the stop request
                return s

            session = await handle.call(start)
            assert session.state is SessionState.ACTIVE
        return session

    # the block's exit returns once the grace period has run out and the session is cancelled
    assert asyncio.run(host()).state is SessionState.CANCELLED


def test_asyncio_host_ctrl_c() -> None:
    code = textwrap.dedent(
        """
        import asyncio, trio, engine
        async def main():
            async with engine.open_asyncio_engine() as h:
                async def start():
                    s = await h.engine.start_session("x")
                    s.start_soon(trio.sleep_forever)
                await h.call(start)
                print("ready", flush=True)
                await asyncio.sleep(60)
        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """
    )
    out, err, _ = _interrupted(code)
    assert "interrupted" in out, err
