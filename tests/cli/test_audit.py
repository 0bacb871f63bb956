"""``packyard audit list|tail`` against a real server (``tail`` as a real process, ended by
Ctrl-C)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from typer.testing import CliRunner

from packyard.cli.main import app
from packyard.client import PackerClient
from packyard.domain.enums import Role
from packyard.domain.events import AuditAction
from packyard.services.container import Services
from packyard.store.engine import Store
from tests.support.audit import add, add_failure, caller
from tests.support.cli import Cli
from tests.support.factories import TenantFixture
from tests.support.hcp_env import hcp_env
from tests.support.serve_process import PACKYARD, cli_env


def _fill(services: Services, tenant: TenantFixture) -> None:
    project, org = tenant.project_id, tenant.organization_id
    add(services.store, project, caller(project, "alice", organization_id=org), bucket="web")
    add(
        services.store,
        project,
        caller(project, "bob", organization_id=org),
        "Revoked version",
        action=AuditAction.UPDATE,
        bucket="web",
    )
    add_failure(services.store, project, caller(project, "bob", organization_id=org))


def _mine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["actor"]["principal_id"].startswith("sp-")]


def test_list_json_and_plain(cli: Cli, services: Services, tenant: TenantFixture) -> None:
    _fill(services, tenant)
    rows = _mine(cli.json("audit", "list"))
    assert [(r["description"], r["status"], r["actor"]["service"]["name"]) for r in rows] == [
        ("Created bucket", "FAILED", "bob"),
        ("Revoked version", "OK", "bob"),
        ("Created bucket", "OK", "alice"),
    ]
    assert [r["description"] for r in cli.json("audit", "list", "--actor", "bob")] == [
        "Created bucket",
        "Revoked version",
    ]
    assert [r["seq"] for r in cli.json("audit", "list", "--status", "failed", "--since", "1h")] == [
        rows[0]["seq"]
    ]
    lines = cli.ok("audit", "list", "--format", "plain", "--bucket", "web").stdout.splitlines()
    assert lines[0].split() == [
        "TIME",
        "SEQ",
        "STATUS",
        "ACTION",
        "ACTOR",
        "BUCKET",
        "DESCRIPTION",
    ]
    parsed = [line.split(maxsplit=6) for line in lines[1:]]
    assert [(p[2], p[3], p[4], p[5], p[6]) for p in parsed] == [
        ("OK", "update", "bob", "web", "Revoked version"),
        ("OK", "create", "alice", "web", "Created bucket"),
    ]
    assert parsed[0][0].endswith("Z") and int(parsed[0][1]) == rows[1]["seq"]


def test_bad_options_are_one_line(cli: Cli, base_url: str, tenant: TenantFixture) -> None:
    for args in (("--since", "last week"), ("--status", "maybe"), ("--until", "2026-12-05")):
        result = cli.fails(2, "audit", "list", *args)
        assert len(result.stderr.strip().splitlines()) == 1
    viewer = Cli(base_url, tenant, Role.VIEWER)
    result = viewer.fails(1, "audit", "list")
    assert result.stderr.startswith("error:")


# A test run started in the background by a shell without job control ignores SIGINT, and
# its children inherit that: the command is started with Ctrl-C's default action, as from
# a terminal.
_WITH_CTRL_C = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _tail(*args: str) -> list[str]:
    command = [str(PACKYARD), "audit", "tail", "--interval", "0.2", *args]
    return [sys.executable, "-c", _WITH_CTRL_C, *command]


def _read_json_lines(stream: IO[str], count: int, timeout: float = 20) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        line = stream.readline()
        if line:
            found.append(json.loads(line))
    return found


def test_tail_prints_existing_then_new_entries_until_ctrl_c(
    base_url: str, hcp: PackerClient, services: Services, tenant: TenantFixture
) -> None:
    project, org = tenant.project_id, tenant.organization_id
    for name in ("one", "two", "three"):
        add(services.store, project, caller(project, name, organization_id=org))
    env = cli_env(**{k: v for k, v in hcp_env(base_url, tenant).items() if v is not None})
    process = subprocess.Popen(
        _tail("--actor", "sp-two", "--format", "json", "-n", "5"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        [existing] = _read_json_lines(process.stdout, 1)
        assert existing["actor"]["service"]["name"] == "two"
        for _ in range(3):
            add(services.store, project, caller(project, "two", organization_id=org))
            add(services.store, project, caller(project, "other", organization_id=org))
        new = _read_json_lines(process.stdout, 3)
        assert [e["seq"] for e in new] == sorted(e["seq"] for e in new)
        assert all(e["actor"]["service"]["name"] == "two" for e in new)
        time.sleep(0.6)  # more polls: nothing is printed twice
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert rest.strip() == ""
    seen = [existing["id"], *(e["id"] for e in new)]
    assert len(set(seen)) == 4


def test_tail_plain_has_one_header(
    base_url: str, hcp: PackerClient, services: Services, tenant: TenantFixture
) -> None:
    project, org = tenant.project_id, tenant.organization_id
    add(services.store, project, caller(project, "one", organization_id=org))
    env = cli_env(**{k: v for k, v in hcp_env(base_url, tenant).items() if v is not None})
    process = subprocess.Popen(
        _tail("--actor", "one", "--format", "plain", "--since", "1h"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        header = process.stdout.readline().split()
        first = process.stdout.readline().split(maxsplit=6)
        add(services.store, project, caller(project, "one", organization_id=org))
        second = process.stdout.readline().split(maxsplit=6)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert header[:3] == ["TIME", "SEQ", "STATUS"]
    assert int(second[1]) == int(first[1]) + 1
    assert (first[4], second[4]) == ("one", "one")
    assert "TIME" not in rest


def test_the_operator_reads_every_scope_from_the_database(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    from packyard.domain.models import Operator

    project = "b7d1c0de-0000-4000-8000-000000000001"
    add(store, project, caller(project, "alice"), bucket="web")
    add(store, None, Operator(), "Created project")
    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data"), "--database-url", db_url]
    result = runner.invoke(app, ["audit", "list", *where, "-o", "json"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, (result.stdout, result.stderr)
    rows = json.loads(result.stdout)
    assert {(r["project_id"], r["description"]) for r in rows} >= {
        (project, "Created bucket"),
        ("", "Created project"),
    }
    outside = runner.invoke(app, ["audit", "list", *where, "--project-id", "", "-o", "plain"])
    assert outside.exit_code == 0, outside.stderr
    lines = outside.stdout.splitlines()
    assert lines[0].split()[:3] == ["TIME", "PROJECT", "SEQ"]
    assert {line.split(maxsplit=7)[7] for line in lines[1:]} >= {"Created project"}
    assert all(line.split()[1] == "-" for line in lines[1:])


def test_the_sdk_follows_pages(
    hcp: PackerClient, services: Services, tenant: TenantFixture
) -> None:
    project, org = tenant.project_id, tenant.organization_id
    for _ in range(5):
        add(services.store, project, caller(project, "pager", organization_id=org))
    events = list(hcp.list_audit(actor="pager", page_size=2))
    assert [e.seq for e in events] == sorted((e.seq for e in events), reverse=True)
    assert len({e.id for e in events}) == 5
    assert events[0].actor.name == "pager" and events[0].status == "OK"
    assert events[0].timestamp is not None and events[0].timestamp.tzinfo is not None
    since = events[-1].timestamp
    assert since is not None
    assert len(list(hcp.list_audit(actor="pager", since=since))) == 5
