"""Start-up migrations run in a child process: Alembic never enters the server's memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from packyard.server import prepare
from packyard.startup import StartupError
from packyard.store.migrate import alembic_config

_PREPARE = """
import json, os, sys
from pathlib import Path
from sqlalchemy import text
from packyard.server import prepare
services, created = prepare(Path(sys.argv[1]), os.environ.get("TEST_DATABASE_URL") or None)
with services.store.read() as conn:
    version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
services.store.dispose()
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"alembic", "mako", "pygments"})
print(json.dumps({"created": created, "version": version, "loaded": loaded}))
"""


def _prepare_in_fresh_process(data_dir: Path, url: str | None) -> dict[str, object]:
    env = {**os.environ, "TEST_DATABASE_URL": url or ""}
    out = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_prepare_migrates_to_head_without_loading_alembic(tmp_path: Path, db_url: str) -> None:
    url = None if db_url.startswith("sqlite") else db_url
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    first = _prepare_in_fresh_process(tmp_path / "data", url)
    assert first == {"created": True, "version": head, "loaded": []}
    again = _prepare_in_fresh_process(tmp_path / "data", url)
    assert again == {"created": False, "version": head, "loaded": []}


def test_a_failed_migration_is_one_startup_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "packyard.db").write_text("this is a text file, not a database\n")
    with pytest.raises(StartupError) as caught:
        prepare(data_dir, None)
    assert caught.value.message.startswith("cannot open the database ")
    assert "\n" not in caught.value.message
