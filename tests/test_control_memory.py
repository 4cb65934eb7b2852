"""The memory control operations (remember, recall, decide, rehydrate, cache_lookup, cache_store)
through a real ``scribe serve`` daemon's control socket, on the real embedded PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import ControlDaemon
from git_repos import git, make_repo
from pg_support import create_database, drop_database
from scribe_support import open_stack

import adapters
import engine
from engine.app._control_memory import ControlMemory

Daemon = ControlDaemon


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("shop") / "work", files={"app.py": "a = 1\n"})
    git(root, "checkout", "-q", "-b", "feat/B-77-memory")
    (root / "deploy").mkdir()
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, pg_url: str, repo: Path) -> Iterator[Daemon]:
    url = create_database(pg_url)
    d = Daemon(tmp_path_factory.mktemp("home"), url, repo)
    try:
        yield d
    finally:
        d.close()
        drop_database(url)


@pytest.fixture(scope="module")
def sessions(daemon: Daemon, repo: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two sessions on the one repository."""
    first = daemon.call("start", repo=str(repo), name="first", idle_timeout=None)
    second = daemon.call("start", repo=str(repo), name="second", idle_timeout=None)
    return first, second


def test_remember_and_recall_messages_and_facts(daemon: Daemon) -> None:
    stored = daemon.call("remember", text="the staging database is called nightingale")
    assert stored["kind"] == "message" and stored["session_id"] == "default"
    assert stored["seq"] >= 1 and stored["repo"] is None
    fact = daemon.call("remember", text="nightingale listens on port 5433", kind="fact")
    assert fact["kind"] == "fact" and fact["fact_type"] == "note"
    assert fact["key"].startswith("nightingale-listens-on-port-5433-")
    again = daemon.call("remember", text="nightingale listens on port 5433", kind="fact")
    assert again["key"] == fact["key"]  # the same text is one fact
    pinned = daemon.call(
        "remember",
        text="always ask before dropping nightingale tables",
        kind="fact",
        fact_type="rule",
        key="drops",
        pinned=True,
        ttl=3600,
    )
    assert (pinned["id"], pinned["pinned"]) == ("rule/drops", True)
    tool = daemon.call("remember", text="nightingale: 3 tables vacuumed", role="tool")
    assert tool["seq"] == stored["seq"] + 1

    found = daemon.call("recall", query="nightingale database")
    kinds = [h["kind"] for h in found["hits"]]
    assert kinds[0] == "message" and found["hits"][0]["text"] == (
        "the staging database is called nightingale"
    )
    assert {"message", "fact"} <= set(kinds) and found["vector"] == "used"  # the default embedder
    scores = [h["score"] for h in found["hits"]]
    assert scores == sorted(scores, reverse=True) and all(h["ranks"] for h in found["hits"])
    facts = daemon.call("recall", query="nightingale port", kind="facts")["hits"]
    assert [h["text"] for h in facts][:1] == ["nightingale listens on port 5433"]
    assert daemon.call("recall", query="nightingale", kind="messages", k=1)["hits"][0]["role"]
    assert len(daemon.call("recall", query="nightingale", kind="messages", k=1)["hits"]) == 1
    assert daemon.call("recall", query="zeppelin", kind="messages")["hits"] == []


def test_memory_of_one_repository_is_found_from_its_other_sessions(
    daemon: Daemon, repo: Path, sessions: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    first, second = sessions
    said = daemon.call("remember", text="the helm chart pins redis to 7.2", session=first["id"])
    assert said["session_id"] == first["id"] and said["repo"] == str(repo)
    by_prefix = daemon.call(
        "remember", text="helm upgrades run with --atomic", session=first["id"][:8], kind="fact"
    )
    assert by_prefix["session_id"] == first["id"]
    # only a path inside the work tree: the repository's own memory session
    loose = daemon.call(
        "remember", text="helm values live in deploy/values.yaml", repo=str(repo / "deploy")
    )
    assert loose["session_id"] == f"repo:{repo}" and loose["repo"] == str(repo)
    decided = daemon.call(
        "decide", text="Deploy with helm", body="not kustomize", session="B-77", files=["deploy/"]
    )
    assert decided["session_id"] in {first["id"], second["id"]} and decided["repo"] == str(repo)
    daemon.call("remember", text="helm is also used by the other project", repo="/elsewhere/other")

    # from the other session's view of the repository: everything remembered on it
    hits = daemon.call("recall", query="helm", repo=str(repo), k=20)["hits"]
    texts = {h["text"] for h in hits}
    assert {
        "the helm chart pins redis to 7.2",
        "helm upgrades run with --atomic",
        "helm values live in deploy/values.yaml",
        "Deploy with helm",
    } <= texts
    assert "helm is also used by the other project" not in texts
    assert {h["session_id"] for h in hits} <= {first["id"], second["id"], f"repo:{repo}"}
    # narrowed to the second session: nothing of the first (the decision went to the newest)
    own = daemon.call("recall", query="helm", session=second["id"], kind="messages")["hits"]
    assert own == []
    bundle = daemon.call("rehydrate", query="helm redis chart", repo=str(repo), role="coder")
    cited = {item["citation"]: item for item in bundle["items"]}
    assert f"messages:{said['id']}" in cited and bundle["repo"] == str(repo)
    assert "the helm chart pins redis to 7.2" in bundle["text"]
    assert all(item["citation"].count(":") >= 1 and item["source"] for item in bundle["items"])
    assert {s["name"] for s in bundle["sources"]} >= {"messages", "decisions", "facts"}
    assert all(s["status"] == "ok" for s in bundle["sources"])
    assert bundle["tokens"] <= bundle["token_budget"] == 2000
    worklogs = [i for i in bundle["items"] if i["source"] == "worklogs"]
    assert worklogs and {i["metadata"]["session_id"] for i in worklogs} <= {
        first["id"],
        second["id"],
    }  # the registered sessions on the repository
    other = daemon.call("rehydrate", query="helm redis chart", repo="/elsewhere/other")
    assert f"messages:{said['id']}" not in {i["citation"] for i in other["items"]}
    assert not [i for i in other["items"] if i["source"] in {"worklogs", "summaries"}]
    # given a session and a repository: what either holds
    mixed = daemon.call("recall", query="helm", session=second["id"], repo="/elsewhere/other")
    assert {h["text"] for h in mixed["hits"]} == {
        "Deploy with helm",
        "helm is also used by the other project",
    }
    with_own = daemon.call("recall", query="helm", session=second["id"], repo=str(repo), k=20)
    assert {h["text"] for h in with_own["hits"]} == {h["text"] for h in hits}
    # writing to a session on another work tree than the repository named
    refused = daemon.refused("remember", text="x", session=first["id"], repo="/elsewhere/other")
    assert refused.type == "InvalidArgumentError" and "works on" in refused.message


def test_decisions_are_recorded_and_superseded(daemon: Daemon) -> None:
    first = daemon.call("decide", text="Cache bundles for 30 seconds", entities=["cache"])
    assert first["status"] == "open" and first["supersedes"] is None
    assert first["session_id"] == "default" and first["entities"] == ["cache"]
    second = daemon.call(
        "decide",
        text="Cache bundles for 60 seconds",
        body="30 was too short",
        supersedes=first["id"],
    )
    assert second["supersedes"] == first["id"] and second["session_id"] == "default"
    hits = daemon.call("recall", query="cache bundles seconds", kind="decisions")["hits"]
    assert [h["id"] for h in hits] == [second["id"]]
    with_old = daemon.call(
        "recall", query="cache bundles seconds", kind="decisions", include_superseded=True
    )["hits"]
    old = next(h for h in with_old if h["id"] == first["id"])
    assert old["status"] == "superseded" and old["superseded_by"] == second["id"]
    again = daemon.refused("decide", text="Cache for 90 s", supersedes=first["id"])
    assert again.type == "DecisionStateError"
    missing = daemon.refused("decide", text="Cache for 90 s", supersedes=999_999)
    assert missing.type == "MemoryNotFoundError"


def test_the_generation_cache_round_trips(daemon: Daemon) -> None:
    settings = {"temperature": 0.2, "stop": ["\n\n"], "tools": {"grep": {"max": 3}}}
    prompt = "Summarize the worklog of the memory operations in one sentence"
    miss = daemon.call("cache_lookup", prompt=prompt, model="m-1", settings=settings)
    assert miss["hit"] is False and miss["response"] is None and len(miss["key"]) == 64
    stored = daemon.call(
        "cache_store", prompt=prompt, model="m-1", settings=settings, response="It added memory."
    )
    assert stored["key"] == miss["key"] == engine.generation_key(prompt, "m-1", settings)
    hit = daemon.call("cache_lookup", prompt=prompt, model="m-1", settings=settings)
    assert (hit["hit"], hit["outcome"], hit["response"]) == (True, "exact", "It added memory.")
    assert hit["similarity"] == 1.0 and hit["key"] == stored["key"]
    near = daemon.call(
        "cache_lookup", prompt=prompt.replace("Summarize", "Please summarize"), model="m-1",
        settings=settings,
    )  # fmt: skip
    assert near["outcome"] == "similar" and near["matched_key"] == stored["key"]
    other = daemon.call("cache_lookup", prompt=prompt, model="m-2", settings=settings)
    assert other["hit"] is False
    unset = daemon.call("cache_lookup", prompt=prompt, model="m-1")
    assert unset["hit"] is False  # other settings ({}): another key
    daemon.call("cache_store", prompt="p", model="m-1", response="", ttl=60)
    empty = daemon.call("cache_lookup", prompt="p", model="m-1")
    assert (empty["hit"], empty["response"]) == (True, "")


def test_the_generation_cache_keeps_no_private_text_or_secret(daemon: Daemon) -> None:
    key = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    prompt = f"deploy with <private>the staging password is swordfish</private> token {key}"
    stored = daemon.call(
        "cache_store", prompt=prompt, model="m-1", response=f"use {key}; <private>x</private>"
    )
    hit = daemon.call("cache_lookup", prompt=prompt, model="m-1")
    assert hit["hit"] is True and hit["key"] == stored["key"]
    assert key not in hit["response"] and "<private>" not in hit["response"]
    rows = [
        r[0]
        for r in daemon.rows(
            "SELECT concat_ws(' ', prompt, response, settings::text) FROM memory_generation_cache"
        )
    ]
    assert rows and not any("swordfish" in r or key in r for r in rows)


@pytest.mark.parametrize(
    ("op", "args", "error", "says"),
    [
        ("remember", {"text": "x" * (engine.MEMORY_TEXT_MAX + 1)}, "ControlProtocolError", "length <="),
        ("remember", {"text": ""}, "ControlProtocolError", "length >= 1"),
        ("remember", {"text": "x", "kind": "opinion"}, "ControlProtocolError", "args.kind"),
        ("remember", {"text": "x", "role": "robot"}, "ControlProtocolError", "args.role"),
        ("remember", {"text": "x", "ttl": 0}, "ControlProtocolError", "> 0"),
        ("remember", {"text": "x", "pinned": True}, "InvalidArgumentError", "only a fact"),
        ("remember", {"text": "x", "session": "nosuchsession"}, "SessionNotFoundError", "no session"),
        ("remember", {"text": "x", "repo": "relative/path"}, "InvalidArgumentError", "absolute"),
        ("remember", {"text": "x", "repo": "/" + "r" * engine.PATH_MAX}, "ControlProtocolError", "length <="),
        ("remember", {"text": "x", "key": "k" * (engine.NAME_MAX + 1), "kind": "fact"}, "ControlProtocolError", "args.key"),
        ("remember", {"text": "x", "colour": "red"}, "ControlProtocolError", "unknown field"),
        ("recall", {"query": "q" * (engine.QUERY_MAX + 1)}, "ControlProtocolError", "length <="),
        ("recall", {"query": "q", "kind": "everything"}, "ControlProtocolError", "args.kind"),
        ("recall", {"query": "q", "k": 0}, "ControlProtocolError", ">= 1"),
        ("recall", {"query": "q", "k": engine.RECALL_MAX + 1}, "ControlProtocolError", "<= 100"),
        ("recall", {"query": "q", "session": "nosuchsession"}, "SessionNotFoundError", "no session"),
        ("decide", {"text": "t" * (engine.DESCRIPTION_MAX + 1)}, "ControlProtocolError", "length <="),
        ("decide", {"text": "t", "files": ["f"] * (engine.LIST_MAX + 1)}, "ControlProtocolError", "args.files"),
        ("decide", {"text": "t", "supersedes": 0}, "ControlProtocolError", ">= 1"),
        ("decide", {"text": "t", "session": "nosuchsession"}, "SessionNotFoundError", "no session"),
        ("rehydrate", {"query": "q", "role": "pilot"}, "ControlProtocolError", "args.role"),
        ("rehydrate", {"query": "q", "budget": engine.REHYDRATE_BUDGET_MAX + 1}, "ControlProtocolError", "args.budget"),
        ("rehydrate", {"query": "q", "timeout": 3600}, "ControlProtocolError", "args.timeout"),
        ("rehydrate", {"query": "q", "session": "nosuchsession"}, "SessionNotFoundError", "no session"),
        ("cache_lookup", {"prompt": "p", "model": "m", "settings": {"k": "v" * engine.SETTINGS_MAX}}, "ControlProtocolError", "bytes of JSON"),
        ("cache_lookup", {"prompt": "p", "model": "m", "settings": {"a": [[[[[[[[1]]]]]]]]}}, "ControlProtocolError", "nested deeper"),
        ("cache_lookup", {"prompt": "p", "model": "m", "settings": {str(i): i for i in range(engine.LIST_MAX + 1)}}, "ControlProtocolError", "args.settings"),
        ("cache_lookup", {"prompt": "p", "model": "m", "settings": [1]}, "ControlProtocolError", "Expected `object`"),
        ("cache_store", {"prompt": "p", "model": "m"}, "ControlProtocolError", "missing required field `response`"),
        ("cache_store", {"prompt": "", "model": "m", "response": "r"}, "ControlProtocolError", "length >= 1"),
        ("cache_store", {"prompt": "p", "model": "m" * (engine.NAME_MAX + 1), "response": "r"}, "ControlProtocolError", "args.model"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_typed_error(
    daemon: Daemon, op: str, args: dict[str, Any], error: str, says: str
) -> None:
    refused = daemon.refused(op, **args)
    assert refused.type == error and says in refused.message, refused
    assert daemon.call("ping")["pong"] is True  # and the daemon carries on


def test_huge_nesting_is_refused_and_nothing_of_bad_input_is_stored(daemon: Daemon) -> None:
    deep = json.loads("[" * 500 + "]" * 500)
    refused = daemon.refused(
        "cache_store", prompt="deep", model="m", settings={"a": deep}, response="r"
    )
    assert refused.type == "ControlProtocolError"
    line = (
        b'{"op": "cache_store", "args": {"prompt": "deep", "model": "m", "response": "r",'
        b' "settings": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}}\n"
    )
    with pytest.raises(adapters.ControlProtocolError, match="nested too deeply"):
        adapters.parse_control_request(line)
    assert daemon.call("cache_lookup", prompt="deep", model="m")["hit"] is False
    daemon.refused("remember", text="never stored: unknown session", session="nosuchsession")
    daemon.refused("remember", text="never stored: pinned message", pinned=True)
    assert daemon.call("recall", query="never stored", kind="messages")["hits"] == []


def test_roles_on_the_wire_are_the_engines() -> None:
    assert set(adapters.RehydrateRole.__args__) == set(engine.ROLES)  # type: ignore[attr-defined]
    assert {"remember", "recall", "decide", "rehydrate", "cache_lookup", "cache_store"} <= set(
        adapters.CONTROL_OPERATIONS
    )


async def test_a_repository_is_named_by_its_work_tree_root(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    root = make_repo(tmp_path / "shop", files={"src/app.py": "a = 1\n"})
    (tmp_path / "link").symlink_to(root)
    probes: list[Path] = []

    async def counted(path: Path) -> Path:
        probes.append(path)
        return (await adapters.open_repository(path)).root

    async with open_stack(fresh_pg_url) as stack:
        memory = ControlMemory(
            memory=stack.memory,
            sources=stack.memory_sources,
            cache=stack.generation_cache,
            scribe=stack.scribe,
            default_session="default",
            repo_root=counted,
        )
        for path in (root, root / "src", tmp_path / "link" / "src"):
            assert await memory.repo_key(str(path)) == str(root)
        assert await memory.repo_key(str(root / "src")) == str(root)
        assert len(probes) == 3  # a root found is remembered for its path
        outside = tmp_path / "plain" / ".." / "plain"
        assert await memory.repo_key(str(outside)) == str(tmp_path / "plain")
        assert await memory.repo_key("/no/such/place") == "/no/such/place"
        with pytest.raises(engine.InvalidArgumentError, match="absolute"):
            await memory.repo_key("shop/src")


def test_a_recall_answer_stays_well_under_the_line_limit(daemon: Daemon) -> None:
    for i in range(12):
        daemon.call("remember", text=f"zebrafish {i} " + "z" * (engine.MEMORY_TEXT_MAX - 20))
    found = daemon.call("recall", query="zebrafish", kind="messages", k=12)
    assert 1 <= len(found["hits"]) < 12 and found["more"] is True
    assert sum(len(h["text"]) for h in found["hits"]) <= adapters.MAX_CONTROL_LINE // 2
    assert all(h["text"].startswith("zebrafish") for h in found["hits"])
    files = ["f" * (engine.PATH_MAX - 1) + str(i % 10) for i in range(engine.LIST_MAX)]
    big = daemon.call("decide", text="quagga " + "q" * 4000, files=files, entities=files)
    answer = daemon.call("recall", query="quagga", kind="decisions")
    (hit,) = answer["hits"]
    assert hit["id"] == big["id"] and hit["truncated"] is True
    assert len(json.dumps(hit)) <= adapters.MAX_CONTROL_LINE // 2
