"""The PostgreSQL driver and SQLAlchemy's PostgreSQL dialect are loaded by PostgreSQL servers
only (memory of a SQLite server)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from packyard.store.probe import PostgresProbe

_LOADED = """
import json, sys
import packyard.cli.main
import packyard.server
from packyard.api.app import create_app
names = ("psycopg", "sqlalchemy.dialects.postgresql", "packyard.store.probe")
print(json.dumps({name: name in sys.modules for name in names}))
"""


def test_server_modules_do_not_load_the_postgresql_driver_or_dialect() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(out.stdout)
    assert loaded == {
        "psycopg": False,
        "sqlalchemy.dialects.postgresql": False,
        "packyard.store.probe": True,
    }


def test_postgres_probe_answers_none_when_the_database_cannot_be_reached() -> None:
    # Port 1 on loopback refuses at once: the driver's error is caught, the request
    # takes the uncached path.
    probe = PostgresProbe("postgresql://nobody@127.0.0.1:1/none", {})

    async def ask() -> int | None:
        try:
            return await probe.generation("project", None)
        finally:
            await probe.aclose()

    assert asyncio.run(ask()) is None
    assert "psycopg" in sys.modules
