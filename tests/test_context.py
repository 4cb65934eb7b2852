"""The context provider: parallel sources with their own deadlines, the live cache and its dirtying."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import trio
from fs_support import make_fifo, make_socket, unblocking
from git_repos import git, make_repo
from scribe_support import next_event, open_stack, open_test_repo

import adapters
import engine
from engine import (
    ContextError,
    ContextProvider,
    ContextTarget,
    SourceSpec,
    SourceStatus,
    default_sources,
    get_context_sync,
)
from engine._scribe._rules import Aspect

FILES = {"src/app.py": "a = 1\n", "TODO.md": "- [ ] ship\n", "README.md": "# r\n"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files=FILES)
    git(root, "checkout", "-q", "-b", "feat/B-3")
    return root


async def _target(repo: Path, **kw: Any) -> ContextTarget:
    return ContextTarget(
        session_id="s-1",
        git=await open_test_repo(repo),
        fs=adapters.ScopedFileSystem(repo),
        files=("TODO.md", "missing.md"),
        **kw,
    )


def _failing(spec: SourceSpec) -> SourceSpec:
    async def fetch(t: ContextTarget) -> Any:
        raise ContextError(f"{spec.name} is broken")

    return dataclasses.replace(spec, fetch=fetch)


def _hanging(spec: SourceSpec) -> SourceSpec:
    async def fetch(t: ContextTarget) -> Any:
        await trio.sleep_forever()

    return dataclasses.replace(spec, fetch=fetch, timeout=0.2)


GIT_AND_FILES = ("branch", "status", "log", "diff", "files")


@pytest.mark.parametrize("broken", GIT_AND_FILES)
@pytest.mark.parametrize("how", ["error", "timeout"])
async def test_one_failing_source_never_fails_the_whole(repo: Path, broken: str, how: str) -> None:
    sources = {name: spec for name, spec in default_sources().items() if name in GIT_AND_FILES}
    sources[broken] = (_failing if how == "error" else _hanging)(sources[broken])
    roles = {"r": engine.RoleProfile(GIT_AND_FILES, files=("TODO.md",))}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        provider.attach(await _target(repo))
        ctx = await provider.context("s-1", "r")
    assert list(ctx.sources) == list(GIT_AND_FILES)
    bad = ctx.sources[broken]
    assert bad.status is (SourceStatus.ERROR if how == "error" else SourceStatus.TIMEOUT)
    assert bad.value is None and bad.error
    if how == "error":
        assert bad.error == f"ContextError: {broken} is broken"
    for name in GIT_AND_FILES:
        if name != broken:
            assert ctx.sources[name].status is SourceStatus.OK, ctx.sources[name]
    assert not ctx.ok
    # a failed source is not cached: the next gather tries it again, the rest answer from memory
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        provider.attach(await _target(repo))
        await provider.context("s-1", "r")
        assert provider.dirty("s-1") == {broken}
        again = await provider.context("s-1", "r")
        assert again.sources[broken].status is bad.status and not again.sources[broken].cached
        assert all(again.sources[n].cached for n in GIT_AND_FILES if n != broken)


async def test_real_sources_report_real_values(repo: Path) -> None:
    (repo / "src" / "app.py").write_text("a = 2\nb = 3\n")
    (repo / "new.txt").write_text("n\n")
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng)
        provider.attach(await _target(repo, backlog_id="B-3"))
        ctx = await provider.context("s-1", "implementer")
    assert ctx.value("branch")["branch"] == "feat/B-3"
    st = ctx.value("status")
    assert st["changed"] == [{"path": "src/app.py", "index": ".", "worktree": "M"}]
    assert st["untracked"] == ["new.txt"] and not st["clean"]
    assert ctx.value("diff")["files"][0] == {
        "path": "src/app.py",
        "added": 2,
        "deleted": 1,
        "old_path": None,
    }
    assert [c["subject"] for c in ctx.value("log")] == ["initial"]
    assert ctx.value("files") == [{"path": "TODO.md", "text": "- [ ] ship\n"}]
    # no worklog store attached: those sources report errors, the rest answer
    assert ctx.sources["worklog"].status is SourceStatus.ERROR
    assert ctx.sources["summary"].status is SourceStatus.ERROR


async def test_unborn_repository_has_an_empty_diff(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "empty")
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng)
        provider.attach(ContextTarget("s", git=await open_test_repo(root)))
        ctx = await provider.context("s", "coder")
    assert ctx.value("diff")["unborn"] is True
    assert ctx.value("branch")["head"] is None


async def test_bad_requests_are_typed_errors(repo: Path) -> None:
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng)
        with pytest.raises(engine.SessionNotFoundError):
            await provider.context("nobody", "coder")
        provider.attach(await _target(repo))
        with pytest.raises(engine.InvalidArgumentError, match="unknown role"):
            await provider.context("s-1", "astronaut")
        with pytest.raises(engine.InvalidArgumentError):
            ContextProvider(eng, roles={"x": engine.RoleProfile(("nope",))})


async def test_concurrent_requests_share_one_fetch(repo: Path) -> None:
    calls = 0
    gate = trio.Event()

    async def slow(t: ContextTarget) -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    sources = {"slow": SourceSpec("slow", slow, frozenset({Aspect.TREE}))}
    roles = {"r": engine.RoleProfile(("slow",))}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        provider.attach(ContextTarget("s"))
        results: list[Any] = []

        async def ask() -> None:
            results.append((await provider.context("s", "r")).value("slow"))

        async with trio.open_nursery() as n:
            for _ in range(5):
                n.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            # a change while the fetch runs keeps the source dirty (the answer may be stale)
            provider.invalidate("s", {Aspect.TREE})
            gate.set()
        assert calls == 1 and results == [1] * 5
        assert provider.dirty("s") == {"slow"}
        assert (await provider.context("s", "r")).value("slow") == 2
        assert provider.dirty("s") == frozenset()


async def test_cancelled_leader_hands_over(repo: Path) -> None:
    calls = 0

    async def fetch(t: ContextTarget) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await trio.sleep_forever()
        return calls

    sources = {"x": SourceSpec("x", fetch, frozenset({Aspect.TREE}))}
    roles = {"r": engine.RoleProfile(("x",))}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        provider.attach(ContextTarget("s"))
        got: list[Any] = []
        async with trio.open_nursery() as n:
            leader = trio.CancelScope()

            async def lead() -> None:
                with leader:
                    await provider.context("s", "r")

            async def follow() -> None:
                got.append((await provider.context("s", "r")).value("x"))

            n.start_soon(lead)
            await trio.testing.wait_all_tasks_blocked()
            n.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            leader.cancel()
        assert got == [2]
        assert provider.dirty("s") == frozenset()


async def test_sync_callers_go_through_the_engine_thread(repo: Path) -> None:
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng)
        provider.attach(await _target(repo))
        ctx = await trio.to_thread.run_sync(get_context_sync, provider, "s-1", "coder")
        assert ctx.value("branch")["branch"] == "feat/B-3"
        with pytest.raises(engine.SessionNotFoundError):
            await trio.to_thread.run_sync(get_context_sync, provider, "nobody", "coder")


async def test_the_watcher_dirties_exactly_what_changed(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        provider = s.context
        for role in provider.roles:
            await s.scribe.context_for(rec.id, role)
        assert provider.dirty(rec.id) == frozenset()
        fetched = provider.statistics().fetched
        unchanged = await s.scribe.context_for(rec.id, "implementer")
        assert unchanged.from_cache and provider.statistics().fetched == fetched

        async def dirtied_by(action: Any) -> frozenset[str]:
            for role in provider.roles:
                await s.scribe.context_for(rec.id, role)
            assert provider.dirty(rec.id) == frozenset()
            async with s.engine.open_subscription(["session.worklog"]) as sub:
                action()
                await next_event(sub, lambda e: e.session_id == rec.id)
            return provider.dirty(rec.id)

        # an edit of a source file: status and diff only (the worklog is written through)
        assert await dirtied_by(lambda: (repo / "src" / "app.py").write_text("a = 5\n")) == {
            "status",
            "diff",
        }
        after = await s.scribe.context_for(rec.id, "implementer")
        ran = {n for n, r in after.sources.items() if not r.cached}
        assert ran == {"status", "diff"}
        assert after.value("worklog")[-1]["kind"] == "files"
        # an edit of a chosen file also dirties the files source
        assert await dirtied_by(lambda: (repo / "TODO.md").write_text("- [x] ship\n")) == {
            "status",
            "diff",
            "files",
        }
        # a commit moves HEAD: branch and log, and status and diff (they compare with HEAD)
        assert await dirtied_by(lambda: git(repo, "commit", "-q", "-am", "work")) == {
            "branch",
            "log",
            "status",
            "diff",
        }
        committed = await s.scribe.context_for(rec.id, "implementer")
        assert committed.value("log")[0]["subject"] == "work"
        assert committed.value("status")["clean"]
        # a summary arriving is written through as well
        await s.pipeline.wait_idle()
        assert "summary" not in provider.dirty(rec.id)


async def test_context_events_are_published(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.context"]) as sub:
            await s.scribe.context_for(rec.id, "coder")
            gathered = await next_event(sub, lambda e: e.payload["event"] == "gathered")
            assert gathered.session_id == rec.id and gathered.payload["role"] == "coder"
            (repo / "src" / "app.py").write_text("changed\n")
            dirty = await next_event(sub, lambda e: e.payload["event"] == "dirty")
            assert set(dirty.payload["sources"]) == {"status", "diff"}
        await s.scribe.stop(rec.id)
        # a finished session's context is gathered on demand without a cache
        ctx = await s.scribe.context_for(rec.id, "reviewer")
        assert ctx.value("branch")["branch"] == "feat/B-3"
        assert ctx.value("worklog")[-1]["kind"] == "session_stop"
        assert ctx.sources["related"].status is SourceStatus.OK


async def test_incremental_refresh_equals_a_full_fetch(repo: Path) -> None:
    (repo / "lib").mkdir()
    for i in range(5):
        (repo / "lib" / f"m{i}.py").write_text(f"v = {i}\n")
    git(repo, "add", "--all")
    git(repo, "commit", "-q", "-m", "lib")
    steps: list[tuple[str, ...]] = []

    def write(path: str, text: str) -> tuple[str, ...]:
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return (path,)

    def delete(path: str) -> tuple[str, ...]:
        (repo / path).unlink()
        return (path,)

    # (change, git processes the refresh of status and diff may take)
    ops = [
        (lambda: write("lib/m0.py", "v = 100\nw = 1\n"), 1),
        (lambda: write("new file [1].txt", "untracked\n"), 2),  # untracked or ignored: ask git
        (lambda: write("new file [1].txt", "still untracked\n"), 1),
        (lambda: delete("lib/m1.py"), 1),
        (lambda: write("fresh/dir/a.py", "a\n") + write("fresh/dir/b.py", "b\n"), 2),
        (lambda: write("lib/m0.py", "v = 0\n"), 1),  # back to the committed content
        (lambda: write("lib/m1.py", "v = 1\n"), 1),  # restored
        (lambda: delete("new file [1].txt"), 1),
        (lambda: write("TODO.md", "- [x] ship\n"), 1),
        (lambda: write("lib/m2.py", "v = 2\nmore\n") + delete("lib/m3.py"), 1),
    ]
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng)
        git_repo = await adapters.open_repository(repo)
        target = dataclasses.replace(await _target(repo), git=git_repo)
        provider.attach(target)
        await provider.context("s-1", "coder")
        for op, most in ops:
            changed = op()
            steps.append(changed)
            provider.invalidate("s-1", {Aspect.TREE}, changed)
            before = provider.statistics().refreshed
            processes = git_repo.processes
            ctx = await provider.context("s-1", "coder")
            assert provider.statistics().refreshed == before + 2, steps
            # status and diff of the changed paths came from one or two small git processes
            assert git_repo.processes - processes <= most, steps
            fresh = ContextProvider(eng)
            full = await fresh.context(
                "x", "coder", target=dataclasses.replace(target, session_id="x")
            )
            assert ctx.value("status") == full.value("status"), steps
            assert ctx.value("diff") == full.value("diff"), steps
        # a HEAD move asks for a full fetch again
        git(repo, "add", "--all")
        git(repo, "commit", "-q", "-m", "more")
        provider.invalidate("s-1", {Aspect.HEAD})
        before = provider.statistics().refreshed
        ctx = await provider.context("s-1", "coder")
        assert provider.statistics().refreshed == before
        assert ctx.value("status")["clean"] and ctx.value("diff")["files"] == []


def test_a_sync_host_asks_through_the_portal(repo: Path) -> None:
    # A host that is not async: the engine runs in the portal's thread, the host calls in.
    with engine.open_portal() as portal:

        async def attach() -> ContextProvider:
            provider = ContextProvider(portal.engine)
            provider.attach(await _target(repo))
            return provider

        provider = portal.call(attach)
        ctx = get_context_sync(provider, "s-1", "coder")
        assert ctx.value("branch")["branch"] == "feat/B-3" and not ctx.from_cache
        again = get_context_sync(provider, "s-1", "coder")
        assert all(again.sources[n].cached for n in ("branch", "status", "diff", "files"))
        with pytest.raises(engine.InvalidArgumentError):
            get_context_sync(provider, "s-1", "astronaut")


async def test_source_deadlines_run_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    async def after(seconds: float, value: str) -> Any:
        await trio.sleep(seconds)
        return value

    async def fast(t: ContextTarget) -> Any:
        return await after(0.1, "fast")

    async def slow(t: ContextTarget) -> Any:
        return await after(60, "slow")

    sources = {
        "fast": SourceSpec("fast", fast, frozenset({Aspect.TREE}), timeout=1.0),
        "slow": SourceSpec("slow", slow, frozenset({Aspect.TREE}), timeout=3.0),
    }
    async with engine.open_engine() as eng:
        provider = ContextProvider(
            eng, sources=sources, roles={"r": engine.RoleProfile(("slow", "fast"))}
        )
        provider.attach(ContextTarget("s"))
        start = trio.current_time()
        ctx = await provider.context("s", "r")
        assert trio.current_time() - start == pytest.approx(3.0)
        assert list(ctx.sources) == ["slow", "fast"]
        assert ctx.sources["fast"].status is SourceStatus.OK
        assert ctx.sources["fast"].elapsed == pytest.approx(0.1)
        assert ctx.sources["slow"].status is SourceStatus.TIMEOUT
        assert ctx.sources["slow"].error == "no answer within 3 s"
        assert ctx.sources["slow"].elapsed == pytest.approx(3.0)
        assert ctx.elapsed == pytest.approx(3.0)
        assert provider.dirty("s") == {"slow"}
        stats = provider.statistics()
        assert (stats.fetched, stats.timeouts, stats.errors) == (2, 1, 0)


async def test_a_cancelled_gather_leaves_the_cache_consistent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []
    calls = 0

    async def slow(t: ContextTarget) -> Any:
        nonlocal calls
        calls += 1
        try:
            await trio.sleep(2)
        except trio.Cancelled:
            cancelled.append(t.session_id)
            raise
        return calls

    sources = {"x": SourceSpec("x", slow, frozenset({Aspect.TREE}), timeout=10.0)}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles={"r": engine.RoleProfile(("x",))})
        provider.attach(ContextTarget("s"))
        with trio.move_on_after(1) as scope:
            await provider.context("s", "r")
        assert scope.cancelled_caught and cancelled == ["s"]
        # the fetch was abandoned: still dirty, nothing cached, no fetch left running
        assert provider.dirty("s") == {"x"}
        ctx = await provider.context("s", "r")
        assert ctx.value("x") == 2 and not ctx.sources["x"].cached
        assert provider.dirty("s") == frozenset()


async def test_callers_share_a_fetch_that_times_out(autojump_clock: trio.testing.MockClock) -> None:
    calls = 0

    async def hang(t: ContextTarget) -> Any:
        nonlocal calls
        calls += 1
        await trio.sleep_forever()

    sources = {"x": SourceSpec("x", hang, frozenset({Aspect.TREE}), timeout=1.0)}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles={"r": engine.RoleProfile(("x",))})
        provider.attach(ContextTarget("s"))
        statuses: list[SourceStatus] = []

        async def ask() -> None:
            statuses.append((await provider.context("s", "r")).sources["x"].status)

        start = trio.current_time()
        async with trio.open_nursery() as n:
            for _ in range(3):
                n.start_soon(ask)
        assert trio.current_time() - start == pytest.approx(1.0)
        assert calls == 1 and statuses == [SourceStatus.TIMEOUT] * 3
        assert provider.dirty("s") == {"x"}


async def test_bad_chosen_files_fail_only_themselves(repo: Path, tmp_path: Path) -> None:
    # what a work tree may hold where a chosen file is expected; none stops the others being read
    fifo = make_fifo(repo / "tasks.md")
    (repo / "loop.md").symlink_to("loop.md")
    (tmp_path / "secret").write_text("secret")
    (repo / "out.md").symlink_to(tmp_path / "secret")
    (repo / "docs").mkdir()
    (repo / "latin1.md").write_bytes(b"caf\xe9\n")
    chosen = ("TODO.md", "tasks.md", "loop.md", "out.md", "docs", "sock", "latin1.md", "gone.md")
    roles = {"r": engine.RoleProfile(("files",), files=chosen)}
    with make_socket(repo / "sock"), unblocking(fifo):
        async with engine.open_engine() as eng:
            provider = ContextProvider(eng, roles=roles)
            provider.attach(ContextTarget("s-1", fs=adapters.ScopedFileSystem(repo), files=chosen))
            ctx = await provider.context("s-1", "r")
    files = ctx.sources["files"]
    assert files.status is SourceStatus.OK, files.error
    assert files.value == [
        {"path": "TODO.md", "text": "- [ ] ship\n"},
        {"path": "tasks.md", "text": None, "error": "not a regular file (a FIFO)"},
        {
            "path": "loop.md",
            "text": None,
            "error": "cannot be read: too many levels of symbolic links",
        },
        {"path": "out.md", "text": None, "error": "outside the work tree"},
        {"path": "docs", "text": None, "error": "not a regular file (a directory)"},
        {"path": "sock", "text": None, "error": "not a regular file (a socket)"},
        {"path": "latin1.md", "text": None, "error": "not UTF-8 text"},
    ]  # a missing one (gone.md) is left out: roles name candidates


async def test_two_unreadable_chosen_files_read_plainly(repo: Path, tmp_path: Path) -> None:
    (repo / "loop.md").symlink_to("loop.md")
    (tmp_path / "secret").write_text("secret")
    (repo / "out.md").symlink_to(tmp_path / "secret")
    chosen = ("loop.md", "out.md", "TODO.md")
    roles = {"r": engine.RoleProfile(("files",), files=chosen)}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, roles=roles)
        provider.attach(ContextTarget("s-1", fs=adapters.ScopedFileSystem(repo), files=chosen))
        ctx = await provider.context("s-1", "r")
    files = ctx.sources["files"]
    assert files.status is SourceStatus.OK and files.error is None
    assert [(f["path"], f.get("error")) for f in files.value] == [
        ("loop.md", "cannot be read: too many levels of symbolic links"),
        ("out.md", "outside the work tree"),
        ("TODO.md", None),
    ]
    assert "ExceptionGroup" not in repr(files.value)


async def test_a_source_failing_twice_over_reads_plainly(repo: Path) -> None:
    async def fetch(t: ContextTarget) -> Any:
        async with trio.open_nursery() as n:
            for what in ("status", "log"):
                n.start_soon(_raise, what)

    async def _raise(what: str) -> None:
        raise ContextError(f"{what} is broken")

    sources = {"files": dataclasses.replace(default_sources()["files"], fetch=fetch)}
    roles = {"r": engine.RoleProfile(("files",))}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        provider.attach(ContextTarget("s-1"))
        ctx = await provider.context("s-1", "r")
    error = ctx.sources["files"].error
    assert error is not None and "ExceptionGroup" not in error and "sub-exception" not in error
    assert sorted(error.split("; ")) == [
        "ContextError: log is broken",
        "ContextError: status is broken",
    ]


async def test_a_changed_symlink_out_of_the_tree_refreshes_the_status(
    repo: Path, tmp_path: Path
) -> None:
    from engine._context._git_sources import status_refresh, status_source

    target = await _target(repo)
    before = await status_source(target)
    (tmp_path / "secret").write_text("secret")
    (repo / "out.md").symlink_to(tmp_path / "secret")
    make_fifo(repo / "pipe.md")
    after = await status_refresh(target, before, frozenset({"out.md", "pipe.md"}))
    assert after == await status_source(target)
    assert after["untracked"] == ["out.md"]  # git shows the symlink itself, and skips a FIFO


async def test_an_answer_says_how_long_its_aged_values_stay_fresh(repo: Path) -> None:
    sources = {name: spec for name, spec in default_sources().items() if name in GIT_AND_FILES}
    roles = {"r": engine.RoleProfile(GIT_AND_FILES)}
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        provider.attach(await _target(repo))
        assert (await provider.context("s-1", "r")).fresh_for is None  # none has a max_age
        aged = {**sources, "branch": dataclasses.replace(sources["branch"], max_age=30.0)}
        provider = ContextProvider(eng, sources=aged, roles=roles)
        provider.attach(await _target(repo))
        first = await provider.context("s-1", "r")
        again = await provider.context("s-1", "r")
    assert first.fresh_for is not None and 0.0 < first.fresh_for <= 30.0
    assert again.from_cache and again.fresh_for is not None and again.fresh_for <= first.fresh_for
    assert again.as_dict()["fresh_for"] == again.fresh_for
