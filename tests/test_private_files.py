"""The data directory is 0700 and what Packyard writes in it 0600, whatever the umask;
database URLs are stored and shown without their password."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from packyard.config import (
    Advertised,
    load_advertised,
    read_database_url_file,
    redact_url,
    save_advertised,
    without_password,
)
from packyard.files import create_private_file, ensure_private_dir, write_private
from packyard.startup import StartupError
from packyard.store.engine import Store, sqlite_url
from packyard.store.migrate import upgrade


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_created_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    ensure_private_dir(data)
    assert mode(data) == 0o700
    create_private_file(data / "lock")
    write_private(data / "x.json", b"{}")
    assert (mode(data / "lock"), mode(data / "x.json")) == (0o600, 0o600)
    (data / "loose").write_bytes(b"old")
    os.chmod(data / "loose", 0o644)
    write_private(data / "loose", b"new")
    assert mode(data / "loose") == 0o600 and (data / "loose").read_bytes() == b"new"


@pytest.mark.usefixtures("open_umask")
def test_sqlite_database_and_its_journal_files_are_private(tmp_path: Path) -> None:
    store = Store(sqlite_url(str(tmp_path / "packyard.db")))
    try:
        upgrade(store)
        with store.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        names = {p.name: mode(p) for p in tmp_path.iterdir()}
    finally:
        store.dispose()
    assert {"packyard.db", "packyard.db-wal", "packyard.db-shm"} <= set(names)
    assert set(names.values()) == {0o600}, names


def test_our_loose_data_dir_is_tightened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "packyard.db").write_bytes(b"")
    os.chmod(data, 0o755)  # noqa: S103
    ensure_private_dir(data)
    assert mode(data) == 0o700
    assert str(data) in capsys.readouterr().err


def test_a_shared_directory_is_left_alone_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "someone-elses").write_text("")
    os.chmod(shared, 0o1777)  # noqa: S103
    ensure_private_dir(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert str(shared) in capsys.readouterr().err


def test_a_file_in_the_way_is_reported(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    with pytest.raises(NotADirectoryError):
        ensure_private_dir(tmp_path / "data")


URL = "postgresql://packyard:s3cret%40pw@db.example:5432/packyard?sslmode=require"


def test_urls_are_shown_and_stored_without_their_password(tmp_path: Path) -> None:
    assert "s3cret" not in redact_url(URL) and "db.example:5432" in redact_url(URL)
    stripped = without_password(URL)
    assert stripped == "postgresql://packyard@db.example:5432/packyard?sslmode=require"
    assert "s3cret" not in redact_url("postgresql://u@h/db?password=s3cret")
    save_advertised(tmp_path, Advertised("h:1", tls=True, self_signed=True, database_url=URL))
    assert b"s3cret" not in (tmp_path / "server.json").read_bytes()
    assert mode(tmp_path / "server.json") == 0o600
    loaded = load_advertised(tmp_path)
    assert loaded is not None and loaded.database_url == stripped


def test_a_url_file_is_read_again_by_the_admin_commands(tmp_path: Path) -> None:
    url_file = tmp_path / "db-url"
    url_file.write_text(f"\n  {URL}  \n")
    url_file.chmod(0o600)
    assert read_database_url_file(url_file) == URL
    save_advertised(
        tmp_path,
        Advertised(
            "h:1", tls=True, self_signed=True, database_url=URL, database_url_file=str(url_file)
        ),
    )
    loaded = load_advertised(tmp_path)
    assert loaded is not None and loaded.database_url == URL
    url_file.write_text("\n")
    with pytest.raises(StartupError):
        read_database_url_file(url_file)
