"""The visibility rules of :mod:`packyard.domain.visibility` and
:mod:`packyard.domain.access` as SQL conditions.

Reads take two arguments: a :data:`RestrictedScope` (whose restricted channels the caller
sees) and ``visible`` (the ids of the buckets the caller sees; ``None``: every bucket).
The common cases (``True``/``False`` and every bucket visible) run statements built once
at import; only a caller with bucket grants has its statement built per request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, true

from packyard.domain.access import RestrictedScope


def is_precompiled(scope: RestrictedScope, visible: frozenset[str] | None = None) -> bool:
    """Whether a read for ``scope`` and ``visible`` can use a module-level statement: the
    scope is all or nothing (an empty set is nothing) and every bucket is visible."""
    return visible is None and (isinstance(scope, bool) or not scope)


def as_flag(scope: RestrictedScope) -> bool:
    """The key of the precompiled statement for a scope :func:`is_precompiled` accepts."""
    return bool(scope)


def restricted_condition(
    restricted: ColumnElement[Any], bucket_id: ColumnElement[Any], scope: RestrictedScope
) -> ColumnElement[bool]:
    """Rows of a channel (column ``restricted``, its bucket ``bucket_id``) that the scope
    lets the caller see."""
    if scope is True:
        return true()
    if not scope:
        return restricted.is_(False)
    return or_(restricted.is_(False), bucket_id.in_(sorted(scope)))


def visible_condition(
    bucket_id: ColumnElement[Any], visible: frozenset[str] | None
) -> ColumnElement[bool]:
    """Rows whose bucket ``bucket_id`` the caller sees (``None``: every bucket)."""
    if visible is None:
        return true()
    if not visible:
        return false()
    return bucket_id.in_(sorted(visible))


__all__ = ["as_flag", "is_precompiled", "restricted_condition", "visible_condition"]
