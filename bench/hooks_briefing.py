"""Hook benchmark (issue 12), the memory behind the SessionStart figure: a git work tree whose
repository memory holds :data:`MESSAGES` messages and one open decision, for ``bench/hooks.py`` to
time ``SessionStart`` on (its briefing must quote the decision).

The messages are written straight through the memory store of a stack opened on the daemon's own
home (the database the running ``scribe serve`` uses), in batches, as many past conversations
imported would be; the decision goes through the daemon (``decide``), as an agent records one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MESSAGES = 100_000
BATCH = 2_000
DECISION = "keep prices in integer cents; round per line, not per cart"
_TOPICS = (
    "the cart total", "VAT rounding", "the checkout flow", "stock reservations", "the invoice PDF",
    "currency conversion", "the refund path", "discount codes", "shipping zones", "tax exemptions",
)  # fmt: skip


def _make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    ident = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    (path / "cart.py").write_text("def total(prices):\n    return sum(prices)\n")
    subprocess.run(["git", *ident, "-C", str(path), "add", "."], check=True, env=env)
    subprocess.run(
        ["git", *ident, "-C", str(path), "commit", "-q", "-m", "cart"], check=True, env=env
    )
    return path.resolve()


def _importable() -> None:
    # this folder holds bench/mcp.py, which would shadow the mcp package the adapters import
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]


async def _fill(home: Path, repo: Path, count: int) -> None:
    import engine
    from engine.app import load_config, open_stack

    config = load_config({"home": str(home), "feed": False, "dashboard": False})
    async with open_stack(config, scribe=False) as stack:
        session = f"repo:{repo}"
        await stack.memory.ensure_session(session, repo=str(repo))
        for start in range(0, count, BATCH):
            batch = [
                engine.NewMessage(
                    role="user" if n % 2 == 0 else "assistant",
                    content=f"message {n} about {_TOPICS[n % len(_TOPICS)]}: "
                    f"we changed {_TOPICS[(n * 7) % len(_TOPICS)]} and checked it in review {n // 10}",
                )
                for n in range(start, min(start + BATCH, count))
            ]
            await stack.memory.add_messages(session, batch)


def fill_memory(home: Path, count: int = MESSAGES) -> tuple[Path, str]:
    """A work tree under ``home`` with ``count`` messages of repository memory and one decision;
    returns the tree and the decision's text."""
    _importable()
    import trio

    import adapters

    repo = _make_repo(home / "shop")
    began = time.perf_counter()
    trio.run(_fill, home, repo, count)
    client = adapters.ControlClient(home / "scribe.sock", timeout=60)
    client.call("decide", {"text": DECISION, "repo": str(repo)})
    print(f"  {count:,} messages and a decision stored in {time.perf_counter() - began:.1f} s")
    return repo, DECISION
