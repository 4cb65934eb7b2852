"""The private psycopg API the trio-thread PostgreSQL driver leans on, checked against the installed psycopg.

The driver in ``adapters/postgres`` runs simple statements on the trio thread by driving psycopg's
non-blocking generator ``Cursor._execute_gen(query, params)`` itself: the generator yields what it waits
for (``psycopg.waiting.Wait``: read, write or both, the ``selectors`` event flags) and is sent what became
ready, until it stops with the result on the cursor; errors come out of the generator as psycopg's own.
That is not public API, so ``pyproject.toml`` pins psycopg to the tested minor version and these tests
fail, saying what to do, as soon as an upgrade changes any of it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import select
import selectors
import tomllib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.abc
import psycopg.errors
import psycopg.pq
import psycopg.rows
import psycopg.waiting
import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@contextlib.contextmanager
def _private_api(what: str) -> Iterator[None]:
    """Turn any mismatch inside into a failure that says what changed and what must be updated."""
    try:
        yield
    except (AssertionError, AttributeError, TypeError, ValueError, StopIteration) as exc:
        pytest.fail(
            f"psycopg's private _execute_gen API changed ({what}: {exc!r}): the trio-thread driver "
            "in adapters/postgres (it drives Cursor._execute_gen on the connection's socket) must be "
            "updated, or psycopg pinned back to the tested range in pyproject.toml",
            pytrace=True,
        )


def _drive(gen: Generator[Any, Any, Any], fileno: int) -> tuple[list[int], object]:
    """Run the generator to its end the way the driver does (waiting on the socket, sending what is
    ready); returns the waits it yielded and the value it stopped with."""
    waits: list[int] = []
    try:
        wait = next(gen)
        while True:
            waits.append(wait)
            assert wait in (psycopg.waiting.Wait.R, psycopg.waiting.Wait.W, psycopg.waiting.Wait.RW)
            readers = [fileno] if wait & selectors.EVENT_READ else []
            writers = [fileno] if wait & selectors.EVENT_WRITE else []
            readable, writable, _ = select.select(readers, writers, [], 30)
            ready = (selectors.EVENT_READ if readable else 0) | (
                selectors.EVENT_WRITE if writable else 0
            )
            assert ready, "the socket never became ready"
            wait = gen.send(ready)
    except StopIteration as stop:
        return waits, stop.value


def test_the_installed_psycopg_is_in_the_pinned_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [requirement] = [Requirement(d) for d in dependencies if Requirement(d).name == "psycopg"]
    installed = importlib.metadata.version("psycopg")
    assert requirement.specifier.contains(installed), (
        f"psycopg {installed} is installed, but pyproject.toml pins {requirement.specifier}: run this "
        "module against the new version and move the pin only when it passes"
    )
    # The pin is an upper bound too: a new minor version is not taken untested.
    assert any(spec.operator == "<" for spec in requirement.specifier)


def test_execute_gen_has_the_signature_the_driver_calls() -> None:
    with _private_api("signature"):
        method = psycopg.Cursor._execute_gen
        assert inspect.isgeneratorfunction(method), "_execute_gen is no longer a generator function"
        parameters = list(inspect.signature(method).parameters.values())
        assert [p.name for p in parameters[:3]] == ["self", "query", "params"]
        assert parameters[2].default is None
        assert all(
            p.default is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD
            for p in parameters[3:]
        ), "_execute_gen takes a new required argument"
        # What the generators yield and are sent: the selectors event flags.
        assert psycopg.waiting.Wait.R == selectors.EVENT_READ
        assert psycopg.waiting.Wait.W == selectors.EVENT_WRITE
        assert psycopg.waiting.Wait.RW == selectors.EVENT_READ | selectors.EVENT_WRITE
        assert psycopg.waiting.Ready.R == selectors.EVENT_READ
        assert psycopg.waiting.Ready.W == selectors.EVENT_WRITE
        assert psycopg.abc.PQGen is not None


def test_execute_gen_yields_waits_and_leaves_the_result_on_the_cursor(
    any_fresh_pg_url: str,
) -> None:
    with psycopg.connect(any_fresh_pg_url, autocommit=True) as conn:
        fileno = conn.pgconn.socket
        with _private_api("behaviour of a query with parameters"):
            assert isinstance(fileno, int)
            cur = conn.cursor()
            gen = cur._execute_gen("SELECT %s::int + %s::int AS n", (2, 3))
            assert inspect.isgenerator(gen)
            waits, value = _drive(gen, fileno)
            assert waits, "_execute_gen finished without waiting on the socket once"
            assert value is None
            assert cur.fetchone() == (5,)
            assert cur.description is not None and cur.description[0].name == "n"
        with _private_api("behaviour with named parameters and a row factory"):
            cur = conn.cursor(row_factory=psycopg.rows.dict_row)
            _drive(cur._execute_gen("SELECT %(a)s::text AS a", {"a": "x"}), fileno)
            assert cur.fetchall() == [{"a": "x"}]
            assert cur.rowcount == 1
        with _private_api("behaviour of a failing statement"):
            cur = conn.cursor()
            with pytest.raises(psycopg.errors.UndefinedTable):
                _drive(cur._execute_gen("SELECT * FROM no_such_table_here", None), fileno)
            # The connection is left idle and usable, as after a failed execute().
            assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
            _drive(cur._execute_gen("SELECT 1", None), fileno)
            assert cur.fetchone() == (1,)
