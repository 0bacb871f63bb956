"""Drive the ``packyard`` CLI in-process (typer's CliRunner) against a test server."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from packyard.cli.main import app
from packyard.domain.enums import Role
from tests.support.factories import TenantFixture
from tests.support.hcp_env import hcp_env


class Cli:
    def __init__(self, base_url: str, tenant: TenantFixture, role: Role = Role.ADMIN) -> None:
        self.env = hcp_env(base_url, tenant, role)
        self.env["COLUMNS"] = "250"  # wide tables: ids are not folded across lines
        self.runner = CliRunner()

    def run(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return self.runner.invoke(app, list(args), env={**self.env, **env}, input=input)

    def ok(self, *args: str, **env: str | None) -> Result:
        result = self.run(*args, **env)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **env: str | None) -> Any:
        return json.loads(self.ok(*args, "--format", "json", **env).stdout)

    def fails(self, code: int, *args: str, **env: str | None) -> Result:
        """Run, expect exit ``code``, a one-line error and no traceback."""
        result = self.run(*args, **env)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result
