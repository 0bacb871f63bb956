"""``packyard --version``."""

from __future__ import annotations

from typer.testing import CliRunner

from packyard import __version__
from packyard.cli.main import app


def test_version_option_prints_the_version_and_exits_0() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"packyard {__version__}\n"


def test_commands_still_run_without_the_option() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert f"packyard {__version__}" not in result.stdout
    assert "--data-dir" in result.stdout
