"""A throwaway PostgreSQL cluster for the test session (initdb + pg_ctl, private socket)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from tests.support.serve_process import free_port


class PostgresUnavailable(RuntimeError):
    pass


def _bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise PostgresUnavailable("pg_config not found: PostgreSQL server binaries are missing")
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
    bindir = Path(out.stdout.strip())
    if not (bindir / "initdb").exists():
        raise PostgresUnavailable(f"initdb not found in {bindir}")
    return bindir


def unix_socket(db_url: str) -> str:
    """The Unix socket a test database's URL (:meth:`PostgresCluster.url`) connects to."""
    query = make_url(db_url).query
    return f"{query['host']}/.s.PGSQL.{query['port']}"


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socketdir(self) -> Path:
        return self.root / "sock"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socketdir}&port={self.port}"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socketdir.mkdir(exist_ok=True)
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            for path in (self.root, self.socketdir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ),
            check=True,
            capture_output=True,
        )
        opts = (
            f"-c listen_addresses='' -c unix_socket_directories={self.socketdir} "
            f"-p {self.port} -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-o",
                opts,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"
            ),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            dbname="postgres",
            user="postgres",
            host=str(self.socketdir),
            port=self.port,
            autocommit=True,
        )

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.admin() as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster() -> PostgresCluster:
    bindir = _bindir()
    run_as = "postgres" if os.geteuid() == 0 else None
    # one cluster per pytest-xdist worker (gw0, gw1, …): its own directory, socket and port
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    root = Path(tempfile.mkdtemp(prefix=f"packyard-pg-{worker}-"))
    if run_as:
        os.chmod(root.parent, os.stat(root.parent).st_mode)  # /tmp is world-writable already
    cluster = PostgresCluster(bindir=bindir, root=root, port=free_port(), run_as=run_as)
    cluster.start()
    return cluster
