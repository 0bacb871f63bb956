"""The renderability rule: its limits agree with the renderer (orjson) that writes responses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from packyard.domain.renderable import (
    MAX_DEPTH,
    MAX_INT,
    MIN_INT,
    RENDERER_MAX_DEPTH,
    RESPONSE_DEPTH,
    has_surrogate,
    json_problem,
    stored_json_problem,
    text_problem,
)


def nested(levels: int) -> Any:
    """``levels`` nested arrays and objects around a string."""
    value: Any = "x"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def renders(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


@pytest.mark.parametrize("number", [MIN_INT, MAX_INT, 0, -1, 2**63])
def test_integers_the_renderer_writes_pass(number: int) -> None:
    assert renders(number)
    assert json_problem({"n": number}, "m") is None


@pytest.mark.parametrize("number", [MIN_INT - 1, MAX_INT + 1, 10**40, -(10**40)])
def test_integers_beyond_64_bits_are_refused(number: int) -> None:
    assert not renders(number)
    problem = json_problem({"a": [1, {"n": number}]}, "metadata")
    assert problem is not None and problem.field == "metadata.a[1].n"


def test_the_renderer_depth_limit_is_the_one_assumed() -> None:
    assert renders(nested(RENDERER_MAX_DEPTH))
    assert not renders(nested(RENDERER_MAX_DEPTH + 1))


def test_depth() -> None:
    assert json_problem(nested(MAX_DEPTH), "m") is None
    problem = json_problem(nested(MAX_DEPTH + 1), "m")
    assert problem is not None and "deeper" in problem.reason
    assert len(problem.field) < 200  # the path is cut short
    # What `packyard check` reports: only what a response around the value cannot carry.
    limit = RENDERER_MAX_DEPTH - RESPONSE_DEPTH
    assert stored_json_problem(nested(limit), "m") is None
    assert stored_json_problem(nested(limit + 1), "m") is not None
    assert renders([[[[[[[[nested(limit)]]]]]]]])  # RESPONSE_DEPTH levels around it


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused(number: float) -> None:
    assert orjson.dumps(number) == b"null"  # rendered, but not as stored
    assert json_problem([number], "m") is not None


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc00\ud800", "\ud83d\ude00"])
def test_surrogates_in_values_and_keys(text: str) -> None:
    """Any surrogate code point in a str, paired or not, has no UTF-8 encoding."""
    assert not renders(text)
    assert has_surrogate(text)
    value = {"ok": ["fine", {"deep": text}]}
    problem = json_problem(value, "metadata")
    assert problem is not None and problem.field == "metadata.ok[1].deep"
    assert text_problem(value, "") == problem.__class__("ok[1].deep", problem.reason)
    key_problem = text_problem({"labels": {text: "v"}}, "")
    assert key_problem is not None and key_problem.field == "labels"


def test_valid_text_passes() -> None:
    value = {"\U0001f511": "\U0001f600 \u00e9\u202e", "tab": "\t\n", "": ""}
    assert renders(value)
    assert not has_surrogate("\U0001f600")
    assert json_problem(value, "m") is None
    assert text_problem(value, "") is None


def test_paths_never_echo_odd_keys_raw() -> None:
    problem = json_problem({"a b\ud800": {"x": 2**70}}, "m")
    assert problem is not None
    problem.field.encode("ascii")  # escaped, renderable anywhere
    assert renders({"field": problem.field, "reason": problem.reason})


def test_size() -> None:
    assert json_problem({"s": "x" * 60_000}, "m") is None
    assert json_problem({"s": "x" * 70_000}, "m") is not None
    assert json_problem([0] * 40_000, "m") is not None  # many small values count too
    assert stored_json_problem({"s": "x" * 70_000}, "m") is None  # renderable: not reported


def test_non_json_values_and_keys() -> None:
    assert json_problem({1: "v"}, "m") is not None
    assert json_problem({"v": object()}, "m") is not None
