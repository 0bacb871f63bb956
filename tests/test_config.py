"""Numeric settings from the environment never stop the server."""

from __future__ import annotations

import pytest

from packyard.config import env_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 64.0),
        ("", 64.0),
        ("0", 0.0),
        ("12.5", 12.5),
        ("abc", 64.0),
        ("-1", 64.0),
        ("nan", 64.0),
        ("inf", 64.0),
    ],
)
def test_env_number(monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: float) -> None:
    if raw is None:
        monkeypatch.delenv("PACKYARD_TEST_NUMBER", raising=False)
    else:
        monkeypatch.setenv("PACKYARD_TEST_NUMBER", raw)
    assert env_number("PACKYARD_TEST_NUMBER", 64) == expected
