"""``scribe demo``: the engine at work, printed as it happens."""

from __future__ import annotations

import trio
import trio.lowlevel
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from .._core._config import EngineConfig
from .._core._engine import Engine, open_engine
from .._core._priority import Priority
from .._core._session import Session
from .._core._state import SessionKind
from ._cli_render import STATE_STYLE


def _tree(engine: Engine) -> Tree:
    root = Tree("[bold]engine[/bold]")

    def add(node: Tree, s: Session) -> None:
        style = STATE_STYLE.get(s.state.value, "white")
        label = (
            f"{s.name} [dim]{s.id[:8]}[/dim] [{style}]{s.state.value}[/{style}] "
            f"prio={s.priority.name} tasks={s.task_count}"
        )
        if s.error is not None:
            label += f" [red]error={type(s.error).__name__}: {s.error}[/red]"
        branch = node.add(label)
        for child in s.children:
            add(branch, child)

    for s in engine.sessions(include_finished=True):
        if s.parent is None:
            add(root, s)
    return root


def _stats(engine: Engine) -> Table:
    st = engine.statistics()
    table = Table(title="statistics", show_header=True)
    table.add_column("gate")
    table.add_column("capacity", justify="right")
    table.add_column("borrowed", justify="right")
    table.add_column("waiting", justify="right")
    table.add_column("granted", justify="right")
    table.add_column("cancelled", justify="right")
    for name, g in st.gates.items():
        table.add_row(
            name,
            str(g.capacity),
            str(g.borrowed),
            str(g.waiting),
            str(g.granted_total),
            str(g.cancelled_total),
        )
    table.caption = (
        f"sessions by state: {st.sessions_by_state}  live={st.live_sessions}  "
        f"events={st.events_published}"
    )
    return table


async def run_demo(console: Console | None = None, *, step: float = 0.2) -> list[str]:
    """Run the demo and return the admission order it observed.

    Cancellation ends the demo; the engine shuts its sessions down on the way out.
    """
    out = console or Console()
    admitted: list[str] = []
    all_admitted = trio.Event()
    config = EngineConfig(gates={"worker": 1}, shutdown_grace=1.0)
    async with open_engine(config) as engine:
        gate = engine.gate("worker")

        def show(title: str) -> None:
            out.rule(f"[bold]{title}")
            out.print(_tree(engine))
            out.print(_stats(engine))

        async def job(session: Session, label: str) -> None:
            async with session.admit(gate):
                admitted.append(label)
                if len(admitted) == 6:
                    all_admitted.set()
                out.print(f"  admitted [bold]{label}[/bold] ({session.priority.name})")
                await trio.sleep(step / 4)

        out.print("[bold]1. Sessions of mixed priority contend for one worker slot[/bold]")
        planner = await engine.start_session(
            "planner B-1040", priority=Priority.LOW, kind=SessionKind.PLANNING, tags=("plan",)
        )
        coder = await engine.start_session(
            "implement B-1042", priority=Priority.HIGH, backlog_id="B-1042", tags=("feat",)
        )
        reviewer = await engine.start_session("review B-1041", priority=Priority.MEDIUM)
        fork = await engine.start_session("fork of B-1042", priority=Priority.HIGH, parent=coder)
        async with gate.acquire(Priority.HIGH):
            for s, label in ((planner, "planner"), (reviewer, "reviewer"), (coder, "coder")):
                for i in range(2):
                    s.start_soon(job, s, f"{label}#{i}")
            await trio.sleep(step / 4)
            show("queued behind a busy slot")
        # every job is admitted one after another; a loaded machine only makes that take longer
        with trio.move_on_after(max(step * 50, 10.0)):
            await all_admitted.wait()
        out.print(f"admission order: {admitted}", soft_wrap=True)

        out.print("[bold]2. A session crashes; its siblings carry on[/bold]")

        async def crash() -> None:
            await trio.sleep(step / 10)
            raise RuntimeError("tool call failed")

        reviewer.start_soon(crash)
        await reviewer.wait()
        show("after the crash")

        out.print("[bold]3. A session is cancelled with a grace period[/bold]")

        async def flushing_worker(session: Session) -> None:
            try:
                await session.wait_stop_requested()
                out.print("  stop requested: flushing the worklog ...")
                await trio.sleep(step / 2)
                out.print("  flushed")
            finally:
                pass

        planner.start_soon(flushing_worker, planner)
        await trio.lowlevel.checkpoint()
        planner.cancel(grace=step * 5)
        show("stopping with grace")
        await planner.wait()
        show("after the cancel")

        out.print("[bold]4. Shutdown stops every remaining session[/bold]")
        fork.start_soon(trio.sleep_forever)
    show("after shutdown")
    return admitted
