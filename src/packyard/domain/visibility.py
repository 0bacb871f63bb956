"""Who may see a restricted channel: the one rule every read applies.

A restricted channel exists only for principals who may write to its bucket (see
:mod:`packyard.domain.access`). For everyone else it is absent from every read: listings
leave it out, ancestry names no parent channel for an edge recorded through it (and so
cannot say whether that channel still serves the parent), and a bucket shows no
``latest_version`` (nor anything derived from it) while its managed `latest` channel is
restricted. Asking for one by name answers 403/7, as HCP does.

Services apply :func:`restricted_scope` when they load read models (the store filters in
SQL with it, so no listing costs an extra query) and :func:`can_see_channel` when they
resolve one channel; the response cache keys on the caller's whole view too, so what one
caller saw is never served to a caller who may not see it.
"""

from __future__ import annotations

from packyard.domain.access import RestrictedScope, can_write_bucket, writable_buckets
from packyard.domain.models import Caller, Channel


def sees_restricted_channels(caller: Caller, bucket_id: str) -> bool:
    """Whether ``caller`` sees the bucket's restricted channels: names, assignments, history."""
    return can_write_bucket(caller, bucket_id)


def restricted_scope(caller: Caller) -> RestrictedScope:
    """The buckets whose restricted channels ``caller`` sees, for reads across buckets."""
    return writable_buckets(caller)


def can_see_channel(caller: Caller, channel: Channel) -> bool:
    return not channel.restricted or sees_restricted_channels(caller, channel.bucket_id)


__all__ = ["can_see_channel", "restricted_scope", "sees_restricted_channels"]
