"""Keyset pagination with opaque, tamper-evident page tokens.

A token carries the sort key of the last (or first) row of the page it came
from, so a page is stable while rows are added or removed elsewhere, and every
row is returned exactly once when walking forward.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Integer, Select, and_, bindparam, or_

from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.errors import invalid
from packyard.store.lean import LeanSelect

# Tokens are not secrets; the MAC only makes tampering and garbage detectable.
_TOKEN_KEY = b"packyard-page-token-v1"


@dataclass(frozen=True, slots=True)
class SortColumn:
    expr: ColumnElement[Any]
    is_time: bool = False


def _encode(payload: dict[str, Any]) -> str:
    body = orjson.dumps(payload)
    mac = hmac.new(_TOKEN_KEY, body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + body).decode().rstrip("=")


# A token carries one value per sort key (each field at most once) plus the row id:
# real ones stay far below this, and nothing longer is decoded.
MAX_TOKEN_CHARS = 8192


def _decode(token: str, field: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid("Invalid page token.", field=field)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, body = raw[:12], raw[12:]
        if len(raw) < 13 or not hmac.compare_digest(
            mac, hmac.new(_TOKEN_KEY, body, hashlib.sha256).digest()[:12]
        ):
            raise ValueError("bad mac")
        payload = orjson.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("bad payload")
        return payload
    except (ValueError, orjson.JSONDecodeError):
        raise invalid("Invalid page token.", field=field) from None


_INT64 = 2**63


def _cursor_value(value: Any, expr: ColumnElement[Any], is_time: bool) -> Any:
    """A cursor value of the sort column's type; anything else is a forged token.

    The MAC key is public, so a token's payload is only as trustworthy as this check.
    """
    if is_time:
        if not isinstance(value, str):
            raise TypeError("time")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed
    try:
        python_type = expr.type.python_type
    except NotImplementedError:
        python_type = str
    if python_type is int:
        if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
            raise TypeError("int")
        return value
    if not isinstance(value, str) or len(value) > 4096:
        raise TypeError("str")
    return value


@dataclass(frozen=True, slots=True)
class _Request:
    """A page request read against a listing: its order, the keys that order the rows
    (the sort columns, then the row id), and the decoded cursor if a token was given."""

    order: tuple[SortKey, ...]
    signature: str
    keys: list[tuple[ColumnElement[Any], bool, bool]]  # (column, descending, is_time)
    cursor: list[Any] | None
    backwards: bool


def _request(
    page: PageRequest,
    scope: str,
    sort_columns: dict[str, SortColumn],
    default_order: Sequence[SortKey],
    id_column: ColumnElement[Any],
) -> _Request:
    order = tuple(page.order_by) or tuple(default_order)
    signature = scope + "|" + ",".join(f"{k.field}:{int(k.descending)}" for k in order)
    keys: list[tuple[ColumnElement[Any], bool, bool]] = [
        (sort_columns[k.field].expr, k.descending, sort_columns[k.field].is_time) for k in order
    ]
    keys.append((id_column, order[-1].descending if order else False, False))

    if page.next_token and page.previous_token:
        raise invalid(
            "Set at most one of pagination.next_page_token and pagination.previous_page_token.",
            field="pagination",
        )
    token = page.next_token or page.previous_token
    if not token:
        return _Request(order, signature, keys, None, False)
    field = "pagination.next_page_token" if page.next_token else "pagination.previous_page_token"
    payload = _decode(token, field)
    if payload.get("s") != signature or not isinstance(payload.get("k"), list):
        raise invalid("Invalid page token for this listing.", field=field)
    cursor = payload["k"]
    if len(cursor) != len(keys):
        raise invalid("Invalid page token.", field=field)
    try:
        cursor = [
            _cursor_value(v, expr, is_time)
            for v, (expr, _, is_time) in zip(cursor, keys, strict=True)
        ]
    except (TypeError, ValueError):
        raise invalid("Invalid page token.", field=field) from None
    return _Request(order, signature, keys, cursor, bool(page.previous_token))


def _paged(
    query: Select[Any], request: _Request, cursor: Sequence[Any] | None, limit: Any
) -> Select[Any]:
    """``query`` after ``cursor`` in the request's order, ``limit`` rows, with its keys."""
    keys, backwards = request.keys, request.backwards
    if cursor is not None:
        query = query.where(_after(keys, cursor, backwards))
    ordering = [expr.desc() if desc != backwards else expr.asc() for expr, desc, _ in keys]
    key_columns = [expr.label(f"{_KEY}{i}") for i, (expr, _, _) in enumerate(keys)]
    return query.order_by(*ordering).limit(limit).add_columns(*key_columns)


# The rows' sort keys are selected under these names (a named tuple's fields cannot
# begin with an underscore).
_KEY = "page_key_"


def _page_of(rows: list[Any], page: PageRequest, request: _Request, convert: Any) -> Page[Any]:
    more = len(rows) > page.size
    rows = rows[: page.size]
    if request.backwards:
        rows.reverse()
    names = [f"{_KEY}{i}" for i in range(len(request.keys))]

    def key_of(row: Any) -> list[Any]:
        values = [getattr(row, name) for name in names]
        return [v.isoformat() if isinstance(v, datetime) else v for v in values]

    next_token = previous_token = ""
    if rows:
        has_next = more if not request.backwards else True
        has_prev = (request.cursor is not None) if not request.backwards else more
        if has_next:
            next_token = _encode({"s": request.signature, "k": key_of(rows[-1])})
        if has_prev:
            previous_token = _encode({"s": request.signature, "k": key_of(rows[0])})
    return Page(
        items=[convert(r) for r in rows], next_token=next_token, previous_token=previous_token
    )


def paginate(
    conn: Any,
    query: Select[Any],
    page: PageRequest,
    *,
    sort_columns: dict[str, SortColumn],
    default_order: Sequence[SortKey],
    id_column: ColumnElement[Any],
    convert: Any,
    scope: str,
    params: dict[str, Any] | None = None,
) -> Page[Any]:
    """Run ``query`` one page at a time.

    ``scope`` names the listing (and its filters) so a token from one listing is
    refused by another. ``convert`` maps result rows to domain objects; ``params``
    are the values of the query's bound parameters. A listing whose statement is built
    once (no values of a request in it) is paged faster by :class:`Listing`.
    """
    request = _request(page, scope, sort_columns, default_order, id_column)
    paged = _paged(query, request, request.cursor, page.size + 1)
    return _page_of(list(conn.execute(paged, params)), page, request, convert)


class Listing:
    """A listing whose statement is built once, with bound parameters only: each page is
    one :class:`LeanSelect`, built and compiled once per order and direction, the cursor
    and the page size bound as parameters. Pages as :func:`paginate` does, for about a
    fifth of its Python (SQLAlchemy builds, caches and executes a new statement per
    page otherwise)."""

    # Orders come from requests (``sorting.order_by``): past this many, a page's
    # statement is built for the request and not kept.
    MAX_KEPT = 32

    def __init__(
        self,
        query: Select[Any],
        *,
        sort_columns: dict[str, SortColumn],
        default_order: Sequence[SortKey],
        id_column: ColumnElement[Any],
        convert: Any,
    ) -> None:
        self.query = query
        self.sort_columns = sort_columns
        self.default_order = tuple(default_order)
        self.id_column = id_column
        self.convert = convert
        self._statements: dict[tuple[tuple[SortKey, ...], bool, bool], LeanSelect] = {}

    def page(
        self,
        conn: Any,
        page: PageRequest,
        *,
        scope: str,
        params: dict[str, Any] | None = None,
        where: ColumnElement[bool] | None = None,
    ) -> Page[Any]:
        """One page, as :func:`paginate` gives it; ``params`` bind the query's parameters.
        ``where`` narrows the listing with values of the request (a caller's buckets, a
        status at a time): that page's statement is built for it."""
        if where is not None:
            return paginate(
                conn,
                self.query.where(where),
                page,
                sort_columns=self.sort_columns,
                default_order=self.default_order,
                id_column=self.id_column,
                convert=self.convert,
                scope=scope,
                params=params,
            )
        request = _request(page, scope, self.sort_columns, self.default_order, self.id_column)
        values = dict(params or {})
        values[_LIMIT] = page.size + 1
        for i, value in enumerate(request.cursor or ()):
            values[f"{_CURSOR}{i}"] = value
        rows = self._statement(request).rows(conn, values)
        return _page_of(rows, page, request, self.convert)

    def _statement(self, request: _Request) -> LeanSelect:
        shape = (request.order, request.backwards, request.cursor is not None)
        known = self._statements.get(shape)
        if known is not None:
            return known
        cursor = None
        if request.cursor is not None:
            cursor = [
                bindparam(f"{_CURSOR}{i}", type_=expr.type)
                for i, (expr, _, _) in enumerate(request.keys)
            ]
        statement = LeanSelect(
            _paged(self.query, request, cursor, bindparam(_LIMIT, type_=Integer))
        )
        if len(self._statements) < self.MAX_KEPT:
            self._statements[shape] = statement
        return statement


_LIMIT, _CURSOR = "page_limit", "page_cursor_"


def _after(
    keys: list[tuple[ColumnElement[Any], bool, bool]], cursor: Sequence[Any], backwards: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in the listing order (before it when backwards)."""
    clauses = []
    for i, (expr, desc, _) in enumerate(keys):
        equal_prefix = [keys[j][0] == cursor[j] for j in range(i)]
        forward_greater = desc == backwards
        cmp = expr > cursor[i] if forward_greater else expr < cursor[i]
        clauses.append(and_(*equal_prefix, cmp))
    return or_(*clauses)
