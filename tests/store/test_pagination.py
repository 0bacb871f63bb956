"""A :class:`Listing` (statement built once, cursor and size bound as parameters) pages
exactly as :func:`paginate` does: the same rows and the same tokens, forwards and back,
for every order, on both backends; its kept statements are bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

from packyard.domain.paging import Page, PageRequest, SortKey
from packyard.store.engine import Store
from packyard.store.pagination import Listing, SortColumn, paginate
from packyard.store.types import UTCDateTime

_meta = MetaData()
_items = Table(
    "paged_items",
    _meta,
    Column("id", String(20), primary_key=True),
    Column("owner", String(20), nullable=False),
    Column("name", String(20), nullable=False),
    Column("size", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
_T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
_SORT = {
    "name": SortColumn(_items.c.name),
    "size": SortColumn(_items.c.size),
    "at": SortColumn(_items.c.at, is_time=True),
}
_QUERY = select(_items).where(_items.c.owner == bindparam("owner"))
_ORDER = (SortKey("name"),)


def _convert(row: Any) -> tuple[str, str, int]:
    return (row.id, row.name, row.size)


_LISTING = Listing(
    _QUERY, sort_columns=_SORT, default_order=_ORDER, id_column=_items.c.id, convert=_convert
)


@pytest.fixture
def items(store: Store) -> Iterator[Store]:
    _meta.create_all(store.engine)
    rows = [
        # repeated names and sizes: the id breaks the ties
        {"id": f"i{n:02d}", "owner": "me", "name": f"n{n % 4}", "size": n % 3,
         "at": _T0 + timedelta(microseconds=n * 1500)}
        for n in range(11)
    ] + [{"id": "x", "owner": "other", "name": "n0", "size": 0, "at": _T0}]  # fmt: skip
    with store.write() as conn:
        conn.execute(_items.insert(), rows)
    yield store
    _meta.drop_all(store.engine)


def _both(store: Store, page: PageRequest) -> tuple[Page[Any], Page[Any]]:
    with store.read() as conn:
        plain = paginate(
            conn, _QUERY, page, sort_columns=_SORT, default_order=_ORDER,
            id_column=_items.c.id, convert=_convert, scope="items:me", params={"owner": "me"},
        )  # fmt: skip
        listed = _LISTING.page(conn, page, scope="items:me", params={"owner": "me"})
    return plain, listed


@pytest.mark.parametrize(
    "order",
    [
        (),
        (SortKey("name", descending=True),),
        (SortKey("at"),),
        (SortKey("size"), SortKey("at", descending=True)),
    ],
)
def test_a_listing_walks_forwards_and_back_as_paginate_does(
    items: Store, order: tuple[SortKey, ...]
) -> None:
    pages: list[Page[Any]] = []
    page = PageRequest(size=3, order_by=order)
    while True:
        plain, listed = _both(items, page)
        assert listed == plain
        pages.append(listed)
        if not listed.next_token:
            break
        page = PageRequest(size=3, order_by=order, next_token=listed.next_token)
    assert sorted(i[0] for p in pages for i in p.items) == [f"i{n:02d}" for n in range(11)]
    assert [len(p.items) for p in pages] == [3, 3, 3, 2]
    back = PageRequest(size=3, order_by=order, previous_token=pages[-1].previous_token)
    back_plain, back_listed = _both(items, back)
    assert back_listed == back_plain
    assert back_listed.items == pages[-2].items


def test_page_sizes_are_parameters_of_one_statement(items: Store) -> None:
    listing = Listing(
        _QUERY, sort_columns=_SORT, default_order=_ORDER, id_column=_items.c.id, convert=_convert
    )
    with items.read() as conn:
        pages = [
            listing.page(conn, PageRequest(size=n), scope="s", params={"owner": "me"})
            for n in (1, 5, 50)
        ]
    sizes = [len(p.items) for p in pages]
    assert sizes == [1, 5, 11]
    assert len(listing._statements) == 1


def test_kept_statements_are_bounded(items: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    listing = Listing(
        _QUERY, sort_columns=_SORT, default_order=_ORDER, id_column=_items.c.id, convert=_convert
    )
    monkeypatch.setattr(Listing, "MAX_KEPT", 2)
    orders = [(SortKey("name"),), (SortKey("size"),), (SortKey("at"),), (SortKey("at", True),)]
    with items.read() as conn:
        for order in orders:
            request = PageRequest(size=2, order_by=order)
            got = listing.page(conn, request, scope="s", params={"owner": "me"})
            assert len(got.items) == 2
    assert len(listing._statements) == 2


def test_a_narrowed_page_is_that_of_the_narrowed_query(items: Store) -> None:
    small = _items.c.size == 1
    page = PageRequest(size=2, order_by=(SortKey("at"),))
    with items.read() as conn:
        expected = paginate(
            conn, _QUERY.where(small), page, sort_columns=_SORT, default_order=_ORDER,
            id_column=_items.c.id, convert=_convert, scope="s", params={"owner": "me"},
        )  # fmt: skip
        got = _LISTING.page(conn, page, scope="s", params={"owner": "me"}, where=small)
    assert got == expected
    assert [i[2] for i in got.items] == [1, 1]
