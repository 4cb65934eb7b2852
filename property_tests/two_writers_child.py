"""One writer process of ``test_two_writers``: updates one session of a shared registry as a daemon
would, retrying a typed conflict, and prints what it did as one JSON line.

Usage: ``python two_writers_child.py URL SESSION_ID WRITER OPS`` where OPS is a comma-separated list
of ``describe`` (read, append a token to the description, write back naming the version read) and
``tag`` (add a token as a tag). It prints ``ready``, waits for a line on stdin, then writes.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import trio

import adapters
import engine


async def main(url: str, sid: str, writer: str, ops: list[str]) -> None:
    async with (
        adapters.open_database(url, pool_size=1, migrate=False) as db,
        adapters.open_session_registry(db, owner_id=writer, lease=60) as registry,
    ):
        stdin = trio.lowlevel.FdStream(0)
        print("ready", flush=True)
        await stdin.receive_some()
        writes = conflicts = 0
        for i, op in enumerate(ops):
            token = f"{writer}.{i}"
            if op == "tag":
                await registry.add_tags(sid, [token])
                writes += 1
                continue
            while True:
                record = await registry.get(sid)
                described = f"{record.description} {token}".strip()
                try:
                    await registry.update(dataclasses.replace(record, description=described))
                except engine.StoreConflictError:
                    conflicts += 1  # the other writer got there first: read again
                else:
                    writes += 1
                    break
        print(json.dumps({"writes": writes, "conflicts": conflicts}), flush=True)


if __name__ == "__main__":
    url, sid, writer, ops = sys.argv[1:5]
    trio.run(main, url, sid, writer, ops.split(","))
