"""Operator commands on the server's database: principals, keys, organizations, projects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from packyard.cli.main import app
from packyard.services.bootstrap import load_credentials
from tests.support.serve_process import PACKYARD


class Operator:
    def __init__(self, data_dir: Path, db_url: str) -> None:
        self.where = ["--data-dir", str(data_dir), "--database-url", db_url]
        self.runner = CliRunner()

    def run(self, *args: str) -> Result:
        return self.runner.invoke(app, [*args, *self.where], env={"COLUMNS": "250"})

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--format", "json")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return json.loads(result.stdout)

    def fails(self, code: int, *args: str) -> None:
        """Exit ``code`` without a traceback; our own errors on one line (typer's usage
        errors keep typer's format)."""
        result = self.run(*args)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        if not result.stderr.startswith("Usage:"):
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def operator(tmp_path: Path, db_url: str) -> Operator:
    return Operator(tmp_path / "data", db_url)


def test_principal_lifecycle(operator: Operator) -> None:
    created = operator.json("principal", "create", "--name", "ci", "--role", "viewer")
    assert created["role"] == "viewer"
    assert created["client_secret"]
    client_id = created["client_id"]
    listed = operator.json("principal", "list")
    assert [p["name"] for p in listed] == ["admin", "ci"]
    assert "client_secret" not in listed[1]

    assert operator.json("principal", "set-role", client_id, "contributor")["role"] == "contributor"
    assert operator.json("principal", "disable", client_id)["status"] == "disabled"
    assert operator.json("principal", "enable", client_id)["status"] == "enabled"
    rotated = operator.json("principal", "rotate-secret", client_id, "--revoke-tokens")
    assert rotated["client_secret"] != created["client_secret"]

    deleted = operator.run("principal", "delete", client_id, "--yes")
    assert deleted.exit_code == 0, deleted.stderr
    assert [p["name"] for p in operator.json("principal", "list")] == ["admin"]
    operator.fails(1, "principal", "disable", client_id)


def test_the_table_output_reads_well(operator: Operator) -> None:
    operator.json("principal", "create", "--name", "ci", "--role", "viewer")
    table = operator.run("principal", "list", "--format", "table")
    assert table.exit_code == 0
    rows = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in table.stdout.splitlines()
        if line.startswith("│")
    ]
    assert [rows[0][i] for i in (1, 2, 4)] == ["admin", "enabled", "admin"]
    assert [rows[1][i] for i in (1, 2, 4)] == ["viewer", "enabled", "ci"]


def test_rotating_the_admin_secret_updates_the_env_block(
    operator: Operator, tmp_path: Path
) -> None:
    operator.json("principal", "list")  # the first use bootstraps the data directory
    saved = load_credentials(tmp_path / "data")
    assert saved is not None
    rotated = operator.json("principal", "rotate-secret", saved.client_id)
    after = load_credentials(tmp_path / "data")
    assert after is not None
    assert after.client_secret == rotated["client_secret"] != saved.client_secret


def test_the_last_admin_and_bad_references_fail_on_one_line(operator: Operator) -> None:
    admin = operator.json("principal", "list")[0]["client_id"]
    operator.fails(1, "principal", "disable", admin)
    operator.fails(1, "principal", "delete", admin, "--yes")
    operator.fails(1, "principal", "set-role", admin, "viewer")
    operator.fails(2, "principal", "set-role", admin, "owner")
    operator.fails(1, "principal", "list", "--project-id", "no-such-project")
    operator.fails(1, "principal", "create", "--name", " ", "--role", "viewer")
    assert operator.json("principal", "list")[0]["status"] == "enabled"


def test_key_rotation(operator: Operator) -> None:
    first = operator.json("key", "list")
    assert [k["state"] for k in first] == ["signing"]
    rotated = operator.json("key", "rotate")  # a grace of an hour by default
    assert rotated["old_keys"] == 1
    keys = operator.json("key", "list")
    assert {k["key_id"]: k["state"] for k in keys}[rotated["key_id"]] == "signing"
    assert len(keys) == 2
    operator.json("key", "rotate", "--grace", "0s")
    assert len(operator.json("key", "list")) == 1  # no grace: the others stop at once
    operator.fails(2, "key", "rotate", "--grace", "soon")
    for key in operator.json("key", "list"):
        assert set(key) == {"key_id", "state", "created_at", "retire_at"}  # never a secret


def test_organizations_and_projects(operator: Operator) -> None:
    org = operator.json("org", "create", "--name", "acme", "--project-name", "images")
    assert org["admin_client_secret"]
    assert org["project_name"] == "images"
    project = operator.json(
        "project", "create", "--org", org["organization_id"], "--name", "windows"
    )
    assert project["organization_id"] == org["organization_id"]
    names = [p["name"] for p in operator.json("project", "list", "--org", org["organization_id"])]
    assert names == ["images", "windows"]
    assert "acme" in [o["name"] for o in operator.json("org", "list")]
    admins = operator.json("principal", "list", "--project-id", project["project_id"])
    assert [(p["name"], p["role"]) for p in admins] == [("admin", "admin")]
    operator.fails(1, "project", "create", "--org", "no-such-org", "--name", "x")


def test_a_damaged_credentials_file_is_one_line(operator: Operator, tmp_path: Path) -> None:
    operator.json("principal", "list")
    (tmp_path / "data" / "credentials.json").write_text("{not json")
    result = subprocess.run(
        [PACKYARD, "env", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_user_commands(operator: Operator) -> None:
    made = operator.json("user", "create", "--email", "Ana@Example.com", "--role", "viewer")
    assert set(made) == {"email", "role", "password"}
    assert (made["email"], made["role"]) == ("ana@example.com", "viewer")
    assert len(made["password"]) >= 20
    listed = operator.json("user", "list")
    assert [(u["email"], u["role"], u["status"]) for u in listed] == [
        ("ana@example.com", "viewer", "enabled")
    ]
    assert "password" not in listed[0]
    assert operator.json("user", "set-role", "ana@example.com", "admin")["role"] == "admin"
    assert operator.json("user", "disable", "ana@example.com")["status"] == "disabled"
    assert operator.json("user", "enable", "ana@example.com")["status"] == "enabled"
    reset = operator.json("user", "reset-password", "ana@example.com")
    assert reset["password"] != made["password"]
    operator.fails(1, "user", "create", "--email", "not-an-email", "--role", "viewer")
    operator.fails(1, "user", "create", "--email", "ana@example.com", "--role", "viewer")
    operator.fails(1, "user", "disable", "nobody@example.com")
    assert len(operator.json("user", "list")) == 1


@pytest.mark.parametrize(
    "command", [("principal", "list"), ("runtask", "reset-keys", "--yes"), ("key", "list")]
)
def test_operator_commands_never_create_a_registry(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo"
    result = subprocess.run(
        [str(PACKYARD), *command, "--data-dir", str(missing)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line] == [
        f"error: no database in {missing}; pass --data-dir or --database-url."
    ]
    assert not missing.exists()
