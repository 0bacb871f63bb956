"""Counting the SQL statements a piece of work sends to the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.sqlcount import BACKGROUND_THREADS
from sqlalchemy import Engine, event

# Requests run their database work on the server's event loop (SQLite) or in its
# worker threads (PostgreSQL); background jobs run in threads of their own (BACKGROUND_THREADS).


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __repr__(self) -> str:
        return f"StatementLog({self.count} statements)\n" + "\n---\n".join(self.statements)


@contextmanager
def count_statements(engine: Engine, *, every_thread: bool = False) -> Iterator[StatementLog]:
    """Record the statements executed on ``engine`` inside the block.

    Statements of the server's background jobs do not count unless ``every_thread``,
    so a request to the in-process test server is measured without the scheduler's
    polling. ``BEGIN`` and ``COMMIT`` go straight to the driver and do not count.
    """
    log = StatementLog()

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if every_thread or threading.current_thread().name not in BACKGROUND_THREADS:
            log.statements.append(statement)

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
