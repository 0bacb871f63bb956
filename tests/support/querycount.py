"""Counting the SQL statements a piece of work sends to the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

# FastAPI runs sync dependencies and handlers in anyio's worker threads; background
# jobs of the server (e.g. the revocation scheduler) run in threads of their own.
REQUEST_THREAD = "AnyIO worker thread"


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __repr__(self) -> str:
        return f"StatementLog({self.count} statements)\n" + "\n---\n".join(self.statements)


@contextmanager
def count_statements(
    engine: Engine, *, thread_name: str | None = REQUEST_THREAD
) -> Iterator[StatementLog]:
    """Record the statements executed on ``engine`` inside the block.

    With the default ``thread_name`` only statements run by request-serving
    threads count, so a request to the in-process test server is measured
    without the server's background polling; ``None`` counts every thread.
    ``BEGIN`` issued for SQLite transactions counts too: one per transaction.
    """
    log = StatementLog()

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if thread_name is None or threading.current_thread().name == thread_name:
            log.statements.append(statement)

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
