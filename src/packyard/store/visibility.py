"""The visibility rules of :mod:`packyard.domain.visibility` and
:mod:`packyard.domain.access` as SQL conditions.

Reads take two arguments: a :data:`RestrictedScope` (whose restricted channels the caller
sees) and ``visible`` (the ids of the buckets the caller sees; ``None``: every bucket).
The common cases (``True``/``False`` and every bucket visible) run statements built once
at import; only a caller with bucket grants has its statement built per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, false, or_, true

from packyard.domain.access import RestrictedScope
from packyard.store.lean import LeanSelect


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


class PerScope:
    """A read statement that depends on what the caller sees: built once at import for
    the scopes :func:`is_precompiled` accepts, otherwise for the call."""

    def __init__(self, build: Callable[[RestrictedScope, frozenset[str] | None], Select[Any]]):
        self._build = build
        self._common = {seen: LeanSelect(build(seen, None)) for seen in (True, False)}

    def statement(
        self, scope: RestrictedScope, visible: frozenset[str] | None
    ) -> LeanSelect | Select[Any]:
        if is_precompiled(scope, visible):
            return self._common[as_flag(scope)]
        return self._build(scope, visible)

    def rows(
        self,
        conn: Connection,
        params: Mapping[str, Any],
        scope: RestrictedScope,
        visible: frozenset[str] | None,
    ) -> list[Any]:
        query = self.statement(scope, visible)
        if isinstance(query, LeanSelect):
            return query.rows(conn, params)
        return list(conn.execute(query, params))


__all__ = ["PerScope", "as_flag", "is_precompiled", "restricted_condition", "visible_condition"]
