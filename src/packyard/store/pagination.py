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
from sqlalchemy import ColumnElement, Select, and_, or_

from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.errors import invalid

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
    are the values of the query's bound parameters.
    """
    order = tuple(page.order_by) or tuple(default_order)
    signature = scope + "|" + ",".join(f"{k.field}:{int(k.descending)}" for k in order)
    keys: list[tuple[ColumnElement[Any], bool, bool]] = [
        (sort_columns[k.field].expr, k.descending, sort_columns[k.field].is_time) for k in order
    ]
    keys.append((id_column, order[-1].descending if order else False, False))

    backwards = False
    cursor: list[Any] | None = None
    if page.next_token and page.previous_token:
        raise invalid(
            "Set at most one of pagination.next_page_token and pagination.previous_page_token.",
            field="pagination",
        )
    token = page.next_token or page.previous_token
    if token:
        field = (
            "pagination.next_page_token" if page.next_token else "pagination.previous_page_token"
        )
        payload = _decode(token, field)
        if payload.get("s") != signature or not isinstance(payload.get("k"), list):
            raise invalid("Invalid page token for this listing.", field=field)
        cursor = payload["k"]
        if len(cursor) != len(keys):
            raise invalid("Invalid page token.", field=field)
        backwards = bool(page.previous_token)
        try:
            cursor = [
                _cursor_value(v, expr, is_time)
                for v, (expr, _, is_time) in zip(cursor, keys, strict=True)
            ]
        except (TypeError, ValueError):
            raise invalid("Invalid page token.", field=field) from None

    q = query
    if cursor is not None:
        q = q.where(_after(keys, cursor, backwards))
    ordering = []
    for expr, desc, _ in keys:
        reverse = desc != backwards
        ordering.append(expr.desc() if reverse else expr.asc())
    q = q.order_by(*ordering).limit(page.size + 1)
    key_exprs = [expr.label(f"_k{i}") for i, (expr, _, _) in enumerate(keys)]
    q = q.add_columns(*key_exprs)
    rows = list(conn.execute(q, params))
    more = len(rows) > page.size
    rows = rows[: page.size]
    if backwards:
        rows.reverse()

    def key_of(row: Any) -> list[Any]:
        values = [row._mapping[f"_k{i}"] for i in range(len(keys))]
        return [v.isoformat() if isinstance(v, datetime) else v for v in values]

    next_token = previous_token = ""
    if rows:
        has_next = more if not backwards else True
        has_prev = (cursor is not None) if not backwards else more
        if has_next:
            next_token = _encode({"s": signature, "k": key_of(rows[-1])})
        if has_prev:
            previous_token = _encode({"s": signature, "k": key_of(rows[0])})
    return Page(
        items=[convert(r) for r in rows], next_token=next_token, previous_token=previous_token
    )


def _after(
    keys: list[tuple[ColumnElement[Any], bool, bool]], cursor: list[Any], backwards: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in the listing order (before it when backwards)."""
    clauses = []
    for i, (expr, desc, _) in enumerate(keys):
        equal_prefix = [keys[j][0] == cursor[j] for j in range(i)]
        forward_greater = desc == backwards
        cmp = expr > cursor[i] if forward_greater else expr < cursor[i]
        clauses.append(and_(*equal_prefix, cmp))
    return or_(*clauses)
