"""`packyard backup` / `packyard restore` against a real `packyard serve` on SQLite."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
import time
from pathlib import Path

from sqlalchemy import select

from packyard.services.check import check_store
from packyard.store.engine import Store, sqlite_url
from packyard.store.schema import builds, versions
from tests.support.robust import Pusher, admin_token
from tests.support.serve_process import plain_http_server, run_cli

WRITERS = 3
COMPONENTS = ("amazon-ebs.a", "docker.c")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _done_builds(database: Path) -> dict[str, list[str]]:
    """fingerprint → statuses of its builds, in the restored database."""
    store = Store(sqlite_url(str(database)))
    try:
        assert check_store(store).ok
        with store.read() as conn:
            rows = conn.execute(
                select(versions.c.fingerprint, builds.c.status).select_from(
                    versions.join(builds, builds.c.version_id == versions.c.id)
                )
            ).all()
    finally:
        store.dispose()
    found: dict[str, list[str]] = {}
    for fingerprint, status in rows:
        found.setdefault(fingerprint, []).append(status)
    return found


def test_backup_during_writes_restores_every_acknowledged_push(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    target = tmp_path / "backups" / "packyard.db"
    target.parent.mkdir()
    acked: list[tuple[str, float]] = []
    begun: list[tuple[str, float]] = []
    lock = threading.Lock()
    stop = threading.Event()
    with plain_http_server(data_dir) as server:
        token, org, project = admin_token(server.base_url, data_dir)
        pushers = [Pusher(server.base_url, token, org, project) for _ in range(WRITERS)]

        def writer(n: int, pusher: Pusher) -> None:
            i = 0
            while not stop.is_set() and i < 300:
                fingerprint = f"backup-{n}-{i}"
                with lock:
                    begun.append((fingerprint, time.monotonic()))
                pusher.push("backup", fingerprint, COMPONENTS)
                with lock:
                    acked.append((fingerprint, time.monotonic()))
                i += 1

        threads = [threading.Thread(target=writer, args=(n, p)) for n, p in enumerate(pushers)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 60
            while len(acked) < 4 * WRITERS and time.monotonic() < deadline:
                time.sleep(0.02)
            started = time.monotonic()
            done = run_cli("backup", str(target), "--data-dir", str(data_dir), "--format", "json")
            finished = time.monotonic()
            time.sleep(0.3)  # the writers go on after the backup too

            # refusals while the server runs: restore onto it, back up over FILE
            busy = run_cli("restore", str(target), "--data-dir", str(data_dir), "--force")
            before = target.read_bytes()
            again = run_cli("backup", str(target), "--data-dir", str(data_dir))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=120)
            for p in pushers:
                p.close()

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"path", "size", "revision"}
    assert Path(report["path"]) == target and report["size"] == target.stat().st_size
    assert _mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["packyard.db"]
    assert any(started <= at for _, at in acked), "the writes stopped before the backup"
    assert busy.returncode == 1 and len(busy.stderr.strip().splitlines()) == 1
    assert again.returncode == 1 and target.read_bytes() == before

    restored_dir = tmp_path / "restored"
    restore = run_cli("restore", str(target), "--data-dir", str(restored_dir), "--format", "json")
    assert restore.returncode == 0, restore.stderr
    result = json.loads(restore.stdout)
    assert result["revision"] == result["restored_revision"] == report["revision"]
    database = restored_dir / "packyard.db"
    assert _mode(database) == 0o600 and _mode(restored_dir) == 0o700
    assert run_cli("check", "--data-dir", str(restored_dir)).returncode == 0

    found = _done_builds(database)
    before_backup = [f for f, at in acked if at < started]
    assert len(before_backup) >= 4 * WRITERS
    for fingerprint in before_backup:
        assert sorted(found.get(fingerprint, [])) == ["BUILD_DONE"] * len(COMPONENTS), fingerprint
    after_backup = {f for f, at in begun if at > finished}
    assert after_backup and not after_backup & set(found)  # a snapshot, not a later state


def test_restore_refuses_a_file_that_is_not_a_packyard_database(tmp_path: Path) -> None:
    plain = tmp_path / "plain.db"
    conn = sqlite3.connect(plain)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    for candidate in (plain, text, tmp_path / "missing.db"):
        done = run_cli("restore", str(candidate), "--data-dir", str(tmp_path / "data"))
        assert done.returncode == 1, done.stdout
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "packyard.db").exists()


def test_postgresql_is_left_to_pg_dump(tmp_path: Path) -> None:
    done = run_cli(
        "backup",
        str(tmp_path / "out.db"),
        "--data-dir",
        str(tmp_path / "data"),
        PACKYARD_DATABASE_URL="postgresql://packyard@127.0.0.1:1/packyard",
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.db").exists()


def test_restore_requires_a_data_directory(tmp_path: Path) -> None:
    assert run_cli("restore", str(tmp_path / "backup.db")).returncode == 2
