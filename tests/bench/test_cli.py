"""The harness's command line refuses what it cannot do before it starts a run."""

from __future__ import annotations

import pytest

from bench import cli


def test_profile_without_py_spy_is_refused_before_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "py_spy", lambda: None)
    started: list[object] = []

    def ensure_tools(*args: object, **kwargs: object) -> dict[str, str]:
        started.append(args)
        return {}

    monkeypatch.setattr(cli, "ensure_tools", ensure_tools)
    assert cli.main(["run", "--size", "S", "--profile"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: --profile needs py-spy")
    assert started == []  # nothing was looked for, seeded or measured
