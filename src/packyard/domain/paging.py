"""Pagination and sorting requests, as the domain sees them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from packyard.errors import invalid

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,12}")
MAX_PAGE_SIZE = 1000
# More sort keys than any listing has sortable fields; each field may appear once anyway.
MAX_ORDER_KEYS = 8


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class PageRequest:
    size: int = DEFAULT_PAGE_SIZE
    next_token: str | None = None
    previous_token: str | None = None
    order_by: tuple[SortKey, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str = ""
    previous_token: str = ""
    total: int | None = None


def parse_page_size(raw: str | None, default: int = DEFAULT_PAGE_SIZE) -> int:
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if not _INTEGER_RE.fullmatch(text):  # int() would also take "1_000" and non-ASCII digits
        raise invalid(
            f"pagination.page_size must be a whole number from 0 to {MAX_PAGE_SIZE}, not "
            f"{raw[:32]!r}.",
            field="pagination.page_size",
        )
    size = int(text)
    if size < 0 or size > MAX_PAGE_SIZE:
        raise invalid(
            f"pagination.page_size must be between 0 and {MAX_PAGE_SIZE}.",
            field="pagination.page_size",
        )
    return size or default


def parse_order_by(values: list[str], allowed: set[str]) -> tuple[SortKey, ...]:
    """Parse repeated ``sorting.order_by`` entries: ``field`` or ``field asc|desc``.

    An entry may also hold several comma-separated keys (AIP-132 style). Each field
    may be named once, so a listing sorts by at most as many keys as it has
    sortable fields: every key adds a term to the page condition of every key after
    it, and thousands of repeated keys made one request occupy a worker (and the
    database) for minutes.
    """
    keys: list[SortKey] = []
    named: set[str] = set()
    for value in values:
        for part in value.split(","):
            words = part.split()
            if not words:
                continue
            if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
                raise invalid(
                    f"Invalid sorting.order_by entry {part.strip()[:64]!r}: use 'field' or "
                    "'field asc|desc'.",
                    field="sorting.order_by",
                )
            name = words[0]
            if name not in allowed:
                if not allowed:
                    raise invalid(
                        "This listing has a fixed order: sorting.order_by is not supported.",
                        field="sorting.order_by",
                    )
                raise invalid(
                    f"Cannot sort by {name[:64]!r}; sortable fields: {', '.join(sorted(allowed))}.",
                    field="sorting.order_by",
                )
            if len(keys) == MAX_ORDER_KEYS:
                raise invalid(
                    f"sorting.order_by has more than {MAX_ORDER_KEYS} keys.",
                    field="sorting.order_by",
                )
            if name in named:
                raise invalid(
                    f"sorting.order_by names {name!r} more than once; name each field at most "
                    "once.",
                    field="sorting.order_by",
                )
            named.add(name)
            keys.append(SortKey(name, len(words) == 2 and words[1].lower() == "desc"))
    return tuple(keys)
