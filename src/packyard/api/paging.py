"""Parsing ``pagination.*`` and ``sorting.order_by`` query parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from packyard.domain.paging import DEFAULT_PAGE_SIZE, PageRequest, parse_order_by, parse_page_size


def page_params(
    sortable: set[str], default_size: int = DEFAULT_PAGE_SIZE
) -> Callable[[Request], Awaitable[PageRequest]]:
    async def dependency(request: Request) -> PageRequest:  # async: no thread hop
        q = request.query_params
        return PageRequest(
            size=parse_page_size(q.get("pagination.page_size"), default_size),
            next_token=q.get("pagination.next_page_token") or None,
            previous_token=q.get("pagination.previous_page_token") or None,
            order_by=parse_order_by(q.getlist("sorting.order_by"), sortable),
        )

    return dependency
