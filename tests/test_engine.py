"""The engine: shutdown, closed-engine errors, bad input, services, statistics, exports."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import trio
import trio.testing

import engine
import engine._scribe._capture
import engine.app
from engine import (
    EngineClosedError,
    EngineConfig,
    InvalidArgumentError,
    ScribeError,
    SessionLimits,
    SessionNotFoundError,
    SessionState,
)


async def test_open_engine_needs_no_config() -> None:
    async with engine.open_engine() as eng:
        assert not eng.closed
        assert eng.statistics().state == "running"
    assert eng.closed
    assert eng.statistics().state == "closed"


async def test_shutdown_stops_every_session_with_grace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flushed: list[str] = []
    async with engine.open_engine(EngineConfig(shutdown_grace=2.0)) as eng:
        sessions = [await eng.start_session(f"s{i}") for i in range(5)]
        child = await eng.start_session("child", parent=sessions[0])

        async def flush_on_stop(s: engine.Session) -> None:
            await s.wait_stop_requested()
            await trio.sleep(1)
            flushed.append(s.name)

        for s in (*sessions, child):
            s.start_soon(flush_on_stop, s)
        sessions[1].start_soon(trio.sleep_forever)
        t0 = trio.current_time()
    assert trio.current_time() - t0 == pytest.approx(2.0)
    assert sorted(flushed) == sorted(s.name for s in (*sessions, child))
    assert all(s.state is SessionState.CANCELLED for s in (*sessions, child))
    with pytest.raises(EngineClosedError):
        await eng.start_session("late")
    with pytest.raises(EngineClosedError):
        eng.start_service(trio.sleep_forever)


async def test_body_error_cancels_sessions_at_once() -> None:
    with pytest.raises(ZeroDivisionError):
        async with engine.open_engine() as eng:
            s = await eng.start_session("s")
            s.start_soon(trio.sleep_forever)
            1 / 0  # noqa: B018
    assert s.state is SessionState.CANCELLED


async def test_outer_cancellation_ends_every_session() -> None:
    with trio.move_on_after(0.05):
        async with engine.open_engine() as eng:
            s = await eng.start_session("s")
            s.start_soon(trio.sleep_forever)
            await trio.sleep_forever()
    assert s.state is SessionState.CANCELLED


async def test_bad_input_gets_typed_errors() -> None:
    async with engine.open_engine() as eng:
        for kwargs in (
            {"name": ""},
            {"name": "   "},
            {"name": "x" * 201},
            {"name": "bad\nname"},
            {"name": 42},
            {"name": "ok", "priority": 9},
            {"name": "ok", "priority": "urgent"},
            {"name": "ok", "kind": "dancing"},
            {"name": "ok", "tags": "notalist"},
            {"name": "ok", "tags": ["has space"]},
            {"name": "ok", "backlog_id": ""},
            {"name": "ok", "limits": {"quota": 1}},
        ):
            with pytest.raises(InvalidArgumentError):
                await eng.start_session(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            SessionLimits(quota=0)
        with pytest.raises(SessionNotFoundError):
            eng.get_session("nope")
        with pytest.raises(SessionNotFoundError):
            await eng.start_session("orphan child", parent="nope")
        s = await eng.start_session("ok", session_id="fixed-id")
        with pytest.raises(InvalidArgumentError):
            await eng.start_session("dup", session_id="fixed-id")
        with pytest.raises(InvalidArgumentError):
            s.cancel(grace=-1)
        with pytest.raises(InvalidArgumentError):
            eng.gate("")
        assert eng.get_session("fixed-id") is s
    with pytest.raises(InvalidArgumentError):
        EngineConfig(shutdown_grace=-1)
    with pytest.raises(InvalidArgumentError):
        EngineConfig(gates={"git": 0})
    with pytest.raises(InvalidArgumentError):
        async with engine.open_engine("not a config"):  # type: ignore[arg-type]
            pass  # pragma: no cover
    assert issubclass(InvalidArgumentError, ScribeError)


async def test_max_sessions() -> None:
    async with engine.open_engine(EngineConfig(max_sessions=2)) as eng:
        await eng.start_session("a")
        await eng.start_session("b")
        with pytest.raises(InvalidArgumentError):
            await eng.start_session("c")


async def test_gates_are_shared_and_configured() -> None:
    async with engine.open_engine(EngineConfig(gates={"git": 7})) as eng:
        assert eng.gate("git") is eng.gate("git")
        assert eng.gate("git").capacity == 7
        assert eng.gate("db").capacity == eng.config.default_gate_capacity
        async with engine.admit(eng.gate("git")):
            assert eng.statistics().gates["git"].borrowed == 1


async def test_engine_service_gives_up_without_crashing_the_engine(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def broken() -> None:
        raise OSError("no socket")

    async with engine.open_engine() as eng:
        eng.start_service(broken, name="feed")
        await trio.sleep(30)
        stats = eng.statistics()
        assert "feed" in stats.service_errors and "no socket" in stats.service_errors["feed"]
        s = await eng.start_session("still works")
        assert s.state is SessionState.ACTIVE


async def test_services_stop_at_shutdown() -> None:
    stopped = trio.Event()

    async def service() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stopped.set()

    async with engine.open_engine() as eng:
        eng.start_service(service)
        await trio.testing.wait_all_tasks_blocked()
    assert stopped.is_set()


async def test_tree_and_statistics() -> None:
    async with engine.open_engine() as eng:
        a = await eng.start_session("a")
        await eng.start_session("a1", parent=a)
        await eng.start_session("b")
        tree = eng.tree()
        assert [n["name"] for n in tree] == ["a", "b"]
        assert [n["name"] for n in tree[0]["children"]] == ["a1"]
        stats = eng.statistics()
        assert stats.live_sessions == 3 and stats.sessions_by_state == {"active": 3}


async def test_finished_sessions_are_counted_by_state_within_their_history() -> None:
    async with engine.open_engine(engine.EngineConfig(finished_history=2)) as eng:
        live = await eng.start_session("live")
        for name in ("first", "second", "third"):
            session = await eng.start_session(name)
            session.cancel()
            await session.wait()
        # the first one left the history of two: it is counted no more
        assert eng.statistics().sessions_by_state == {"active": 1, "cancelled": 2}
        live.cancel()
        await live.wait()
        assert eng.statistics().sessions_by_state == {"cancelled": 2}
        assert [s.name for s in eng.sessions(include_finished=True)] == ["third", "live"]


async def test_subscription_drops_oldest_when_full() -> None:
    async with engine.open_engine() as eng:
        async with eng.open_subscription(["x.*"], max_buffer=3) as sub:
            for i in range(5):
                eng.publish_nowait("x.y", {"i": i})
            eng.publish_nowait("other", {})
            got = [sub.receive_nowait().payload["i"] for _ in range(3)]
            assert got == [2, 3, 4] and sub.dropped == 2
            with pytest.raises(trio.WouldBlock):
                sub.receive_nowait()


#: The public packages: each re-exports its names one at a time from the private module defining them.
PUBLIC_PACKAGES = ("engine", "adapters", "engine.app", "engine.testing", "scribe_cli")


def _public_packages() -> list[types.ModuleType]:
    out = []
    for name in PUBLIC_PACKAGES:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return out


def _reexports(package: types.ModuleType) -> list[tuple[str, str, ast.ImportFrom]]:
    """``(name, defining module, statement)`` for each ``from .mod import Name as Name``."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    out = []
    # names loaded on first use are re-exported for the type checker under TYPE_CHECKING
    nodes = [n for top in tree.body for n in (top.body if isinstance(top, ast.If) else [top])]
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            assert node.level == 1 and node.module, ast.unparse(node)
            for alias in node.names:
                out.append((alias.asname or alias.name, f"{package.__name__}.{node.module}", node))
    return out


def _top_level(module: types.ModuleType) -> dict[str, tuple[ast.stmt, ast.stmt | None]]:
    """Each name bound at the top of ``module``: its statement and the statement after it."""
    tree = ast.parse(inspect.getsource(module))
    found: dict[str, tuple[ast.stmt, ast.stmt | None]] = {}
    body = tree.body
    for i, node in enumerate(body):
        after = body[i + 1] if i + 1 < len(body) else None
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = (node, after)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = (node, after)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = (node, after)
    return found


def _documented(module: types.ModuleType, node: ast.stmt, after: ast.stmt | None) -> bool:
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return bool(ast.get_docstring(node))
    # A constant or alias: a ``#:`` comment just above it, or a string literal just after it.
    lines = inspect.getsource(module).splitlines()
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    literal_after = (
        isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    )
    return above.startswith("#:") or literal_after


def test_every_public_name_is_exported_once_from_where_it_is_defined() -> None:
    problems: list[str] = []
    packages = _public_packages()
    assert {"engine", "adapters", "engine.app"} <= {p.__name__ for p in packages}
    for package in packages:
        exports = _reexports(package)
        names = [name for name, _, _ in exports]
        problems += [
            f"{package.__name__}.{n} exported twice" for n in set(names) if names.count(n) > 1
        ]
        for name, source, node in exports:
            alias = next(a for a in node.names if (a.asname or a.name) == name)
            where = f"{package.__name__}.{name} (from {source})"
            if alias.asname != alias.name:
                problems.append(f"{where}: re-export it as `import {alias.name} as {alias.name}`")
            if not source.rpartition(".")[2].startswith("_"):
                problems.append(f"{where}: public names live in private modules")
            defining = importlib.import_module(source)
            bound = _top_level(defining).get(name)
            if bound is None:
                problems.append(f"{where}: not defined there, export it from its own module")
                continue
            obj = getattr(package, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ != source:
                problems.append(f"{where}: defined in {obj.__module__}")
            if not _documented(defining, *bound):
                problems.append(f"{where}: no docstring (or ``#:`` comment for a constant)")
        public = {
            n
            for n, v in vars(package).items()
            if not n.startswith("_") and not isinstance(v, types.ModuleType)
        }
        problems += [
            f"{package.__name__}.{n} is public but not re-exported" for n in public - set(names)
        ]
    assert not problems, "\n".join(problems)


#: The daemon's own modules: what they define (its control handler, lock, socket, record rendering) is
#: daemon internals, never part of a public package.
DAEMON_MODULES = ("engine.app._daemon", "engine.app._control_handler")


def test_no_daemon_internals_are_public() -> None:
    leaked = [
        f"{package.__name__}.{name} comes from {source}"
        for package in _public_packages()
        if package.__name__ != "engine.app"
        for name, source, _ in _reexports(package)
        if source.startswith("engine.app.")
    ]
    assert leaked == []
    internals = {
        name
        for module in DAEMON_MODULES
        for name in _top_level(importlib.import_module(module))
        if not name.startswith("_")
    }
    assert "ControlHandler" in internals
    exported = {name for package in _public_packages() for name, _, _ in _reexports(package)}
    assert sorted(internals & exported) == []


#: Classes that hold a resource or a task: only their ``open_*`` function or their owner builds them.
NO_PUBLIC_CONSTRUCTOR = (
    engine.Engine,
    engine.Session,
    engine.Subscription,
    engine.EnginePortal,
    engine.AsyncioEngine,
    engine.Scribe,
    engine._scribe._capture.Capture,
    engine.app.Stack,
)


@pytest.mark.parametrize("cls", NO_PUBLIC_CONSTRUCTOR, ids=lambda c: c.__name__)
def test_objects_with_a_lifetime_have_no_public_constructor(cls: type) -> None:
    assert isinstance(cls, engine.NoPublicConstructor)
    with pytest.raises(TypeError, match="no public constructor"):
        cls()
    with pytest.raises(TypeError, match="no public constructor"):
        cls(object(), name="x")


def test_every_class_handed_out_by_an_open_function_has_no_public_constructor() -> None:
    handed_out = re.compile(r"get one from\s+:(?:func|meth):`[^`]*open_", re.IGNORECASE)
    found, missing = [], []
    for path in sorted((Path(engine.__file__).parent).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and handed_out.search(ast.get_docstring(node) or ""):
                found.append(node.name)
                metaclass = {k.arg: ast.unparse(k.value) for k in node.keywords}.get("metaclass")
                if metaclass != "NoPublicConstructor":
                    missing.append(f"{path.name}:{node.lineno} {node.name}")
    assert {"Engine", "Session", "Scribe", "Subscription"} <= set(found)
    assert missing == []


async def test_what_the_engine_builds_is_the_real_thing() -> None:
    async with engine.open_engine() as eng:
        async with eng.open_session("s") as session, eng.open_subscription() as sub:
            assert type(eng) is engine.Engine and type(session) is engine.Session
            assert type(sub) is engine.Subscription


def test_engine_imports_no_driver() -> None:
    code = (
        "import sys, engine; bad = [m for m in ('psycopg', 'psycopg_pool', 'trio_websocket', "
        "'inotify_simple', 'hypercorn', 'asyncpg') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
