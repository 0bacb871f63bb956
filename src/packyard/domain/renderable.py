"""What a response can carry: the limits of the JSON renderer, checked before anything is stored.

Responses are written by orjson (``api/responses.py``), which refuses — turning the read
into a 500 for everyone, for as long as the value is stored —

- integers outside ``[-2**63, 2**64 - 1]``;
- nesting deeper than 254 arrays and objects, counted from the top of the response (a
  build's metadata sits about eight levels down in ListBuckets and channel history);
- strings, values or object keys, that are not Unicode text: a surrogate code point
  (U+D800-U+DFFF) has no UTF-8 encoding;
- object keys that are not strings.

It writes NaN and ±Infinity as ``null``, which would silently change a stored value.
Python's ``json`` module, which decodes request bodies, accepts every one of these (a
``"\\ud800"`` escape, or the raw bytes ``ED A0 80``, decode to a lone surrogate), so they
are refused here, with the same limits and a margin, before a write stores them.

Pure functions; the walk is iterative (no recursion limit) and visits each node once.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
# orjson writes at most this many nested arrays and objects.
RENDERER_MAX_DEPTH = 254
# Levels a response puts around a stored value, with a spare: ListBuckets renders a
# build's metadata object at level 7 (response, buckets, bucket, latest_version, builds,
# build, metadata).
RESPONSE_DEPTH = 8
# What a write may store: the nesting of one free-form value (a build's metadata object
# counts as level 1), far below what the renderer takes, and about its JSON-encoded size
# in characters.
MAX_DEPTH = 64
MAX_SIZE = 64 * 1024

_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SCALAR_SIZE = 8  # a number, true, false or null, counted as this many characters
_CONTAINERS = (dict, list, tuple)
_MAX_STEPS = 12  # steps of a path shown in an error


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point, which no UTF-8 text can carry."""
    return not text.isascii() and _SURROGATE.search(text) is not None


@dataclass(frozen=True, slots=True)
class Problem:
    """Where a value breaks a rule (a field path such as ``metadata.packer.plugins[0]``)
    and why, in words that never echo the offending text."""

    field: str
    reason: str


def text_problem(value: Any, field: str) -> Problem | None:
    """The first string or object key in ``value`` holding a surrogate, at any depth.

    Only text is checked: numbers, depth and size are left to the field's own rules.
    """
    if isinstance(value, str):  # the common case: no walk
        return Problem(field, _NOT_TEXT) if has_surrogate(value) else None
    if not _holds_surrogate(value):
        return None
    return _check(value, field, text_only=True, max_depth=0, max_size=0, trails=True)


def json_problem(
    value: Any, field: str, *, max_depth: int = MAX_DEPTH, max_size: int = MAX_SIZE
) -> Problem | None:
    """The first reason ``value`` (decoded JSON) cannot be stored and rendered, or None."""
    found = _check(value, field, text_only=False, max_depth=max_depth, max_size=max_size)
    if found is None:
        return None
    # Walk again, this time remembering where each node is, to name the path.
    return _check(
        value, field, text_only=False, max_depth=max_depth, max_size=max_size, trails=True
    )


def stored_json_problem(value: Any, field: str) -> Problem | None:
    """Why a stored value cannot be rendered at all (``packyard check``), or None.

    The renderer's own limits rather than the stricter ones writes apply: a value stored
    before them is only reported if reads really fail on it (or would alter it).
    """
    return json_problem(
        value, field, max_depth=RENDERER_MAX_DEPTH - RESPONSE_DEPTH, max_size=sys.maxsize
    )


_NOT_TEXT = "is not valid Unicode text (it holds a lone surrogate)"
_KEY_NOT_TEXT = "has a key that is not valid Unicode text (it holds a lone surrogate)"

# A node's position: (parent's trail, key or index); None at the top.
_Trail = tuple[Any, Any] | None


def _holds_surrogate(value: Any) -> bool:
    """A quick scan of decoded JSON for text holding a surrogate (most text is ASCII)."""
    search = _SURROGATE.search
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if isinstance(key, str) and not key.isascii() and search(key):
                    return True
                if isinstance(child, str):
                    if not child.isascii() and search(child):
                        return True
                elif isinstance(child, _CONTAINERS):
                    push(child)
        elif isinstance(node, list | tuple):
            for child in node:
                if isinstance(child, str):
                    if not child.isascii() and search(child):
                        return True
                elif isinstance(child, _CONTAINERS):
                    push(child)
        elif isinstance(node, str) and has_surrogate(node):
            return True
    return False


def _check(
    value: Any,
    field: str,
    *,
    text_only: bool,
    max_depth: int,
    max_size: int,
    trails: bool = False,
) -> Problem | None:
    """One iterative walk over ``value``, parents before children, in document order.

    Without ``trails`` the problem's path is only ``field`` (a quicker walk, to find out
    whether there is a problem at all).
    """
    size = 0
    stack: list[tuple[Any, _Trail, int]] = [(value, None, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, trail, depth = pop()
        if isinstance(node, str):
            if has_surrogate(node):
                return Problem(_path(field, trail), _NOT_TEXT)
            size += len(node) + 2
        elif isinstance(node, dict):
            if not text_only and depth > max_depth:
                return Problem(_path(field, trail), f"is nested deeper than {max_depth} levels")
            size += 2
            for key in node:
                if not isinstance(key, str):
                    if text_only:
                        continue
                    return Problem(_path(field, trail), "has a key that is not a string")
                if has_surrogate(key):
                    return Problem(_path(field, trail), _KEY_NOT_TEXT)
                size += len(key) + 4
            for key, child in reversed(node.items()):
                push((child, (trail, key) if trails else None, depth + 1))
        elif isinstance(node, list | tuple):
            if not text_only and depth > max_depth:
                return Problem(_path(field, trail), f"is nested deeper than {max_depth} levels")
            size += 2 + len(node)
            for i in range(len(node) - 1, -1, -1):
                push((node[i], (trail, i) if trails else None, depth + 1))
        elif text_only:
            continue
        elif node is None or isinstance(node, bool):
            size += _SCALAR_SIZE
        elif isinstance(node, int):
            if not MIN_INT <= node <= MAX_INT:
                return Problem(_path(field, trail), f"is an integer outside [{MIN_INT}, {MAX_INT}]")
            size += _SCALAR_SIZE
        elif isinstance(node, float):
            if not math.isfinite(node):
                return Problem(_path(field, trail), "is not a finite number")
            size += _SCALAR_SIZE
        else:
            return Problem(_path(field, trail), "is not a JSON value")
        if size > max_size and not text_only:
            return Problem(field, f"is larger than about {max_size} characters of JSON")
    return None


def _path(field: str, trail: _Trail) -> str:
    """The printable path of a node (``metadata.packer.plugins[0]``), built only to report."""
    steps: list[Any] = []
    while trail is not None:
        trail, step = trail
        steps.append(step)
    steps.reverse()
    out = field
    shown = steps if len(steps) <= _MAX_STEPS else steps[:_MAX_STEPS]
    for step in shown:
        if isinstance(step, int) and not isinstance(step, bool):
            out += f"[{step}]"
        elif isinstance(step, str) and _PLAIN_KEY.fullmatch(step):
            out += f".{step}" if out else step
        else:
            out += f"[{_quoted(step)}]"
    if len(steps) > len(shown):
        out += f"...({len(steps) - len(shown)} more levels)"
    return out


def _quoted(key: Any) -> str:
    """A key as an ASCII JSON string (surrogates and control characters escaped), cut short."""
    text = key if isinstance(key, str) else repr(key)
    if len(text) > 64:
        text = text[:64] + "..."
    return json.dumps(text)


__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_SIZE",
    "MIN_INT",
    "RENDERER_MAX_DEPTH",
    "RESPONSE_DEPTH",
    "Problem",
    "has_surrogate",
    "json_problem",
    "stored_json_problem",
    "text_problem",
]
