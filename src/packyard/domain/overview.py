"""Read models of the console's registry pages: a filtered bucket listing, and one bucket
with its channels, lineage and the version a data source would resolve to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from packyard.domain.ancestry import AncestryRelation
from packyard.domain.models import Bucket, Channel, Version
from packyard.domain.paging import SortKey
from packyard.domain.renderable import has_surrogate
from packyard.domain.rules import MAX_LABEL_KEY, MAX_LABEL_VALUE
from packyard.errors import invalid

# How a listing of buckets can be sorted: the name (A to Z) or the last update (newest first).
BUCKET_SORTS: dict[str, tuple[SortKey, ...]] = {
    "name": (SortKey("name"),),
    "updated": (SortKey("updated_at", descending=True),),
}
MAX_NAME_FILTER = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class BucketQuery:
    """Which buckets to list: names containing ``text`` (case-insensitive), carrying the
    label ``label_key`` (with the value ``label_value``, or any value when it is ``None``),
    in the order named by ``sort``."""

    text: str = ""
    label_key: str = ""
    label_value: str | None = None
    sort: str = "name"

    @property
    def filtered(self) -> bool:
        return bool(self.text or self.label_key)

    @property
    def order_by(self) -> tuple[SortKey, ...]:
        return BUCKET_SORTS[self.sort]

    @classmethod
    def parse(cls, text: str | None, label: str | None, sort: str | None) -> BucketQuery:
        """The query of a search form: ``label`` is ``key=value`` or ``key``."""
        name = _filter_text(text, field="q", what="A name to search for", limit=MAX_NAME_FILTER)
        raw = _filter_text(
            label, field="label", what="A label", limit=MAX_LABEL_KEY + 1 + MAX_LABEL_VALUE
        )
        key, value = raw, None
        if "=" in raw:
            key, value = (part.strip() for part in raw.split("=", 1))
        if raw and not key:
            raise invalid("Name the label's key: key=value, or the key alone.", field="label")
        if len(key) > MAX_LABEL_KEY:
            raise invalid(f"A label key has at most {MAX_LABEL_KEY} characters.", field="label")
        order = (sort or "").strip() or "name"
        if order not in BUCKET_SORTS:
            raise invalid(f"Sort by one of: {', '.join(BUCKET_SORTS)}.", field="sort")
        return cls(text=name, label_key=key, label_value=value, sort=order)


def _filter_text(value: str | None, *, field: str, what: str, limit: int) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise invalid(f"{what} has at most {limit} characters.", field=field)
    if _CONTROL.search(text) or has_surrogate(text):
        raise invalid(f"{what} cannot contain control characters.", field=field)
    return text


@dataclass(slots=True)
class ChannelChip:
    """A channel as a bucket listing names it, with the version it serves (``None``: it
    serves nothing). The version is its row: no builds."""

    name: str
    restricted: bool
    version_id: str | None
    version: Version | None = None


@dataclass(slots=True)
class BucketSummary:
    """A row of the bucket listing: the bucket (with its latest version, unless
    ``latest_hidden``: its managed `latest` channel is restricted and the reader may not
    see it) and its user channels."""

    bucket: Bucket
    channels: list[ChannelChip] = field(default_factory=list)
    latest_hidden: bool = False


@dataclass(frozen=True, slots=True)
class VersionChoice:
    """A complete version offered in a version picker."""

    name: str
    fingerprint: str
    revoke_at: datetime | None


@dataclass(slots=True)
class DataSource:
    """What a data source for the bucket would resolve: the version served by ``channel``,
    or the version picked by fingerprint (``channel`` is then ``None``). ``error`` says why
    nothing resolves (an unknown channel or version, a channel serving nothing)."""

    channel: Channel | None = None
    version: Version | None = None
    error: str | None = None


@dataclass(slots=True)
class BucketOverview:
    """One bucket as its page shows it, read in one transaction.

    ``latest_hidden``: the managed `latest` channel is restricted and the reader may not
    see it, so neither the latest version nor its parents are shown. ``parents``: the
    latest version's parents. ``children``: per child bucket, the edges into its newest
    version built from this bucket (``children_truncated`` when there are more child
    buckets than shown)."""

    bucket: Bucket
    latest_hidden: bool
    channels: list[Channel]
    parents: list[AncestryRelation]
    parents_total: int
    children: list[AncestryRelation]
    children_truncated: bool
    versions: list[VersionChoice]
    source: DataSource


__all__ = [
    "BUCKET_SORTS",
    "BucketOverview",
    "BucketQuery",
    "BucketSummary",
    "ChannelChip",
    "DataSource",
    "VersionChoice",
]
