"""Who may see a restricted channel: the one rule every read applies.

A restricted channel exists only for principals who may write to the registry.
For everyone else it is absent from every read: listings leave it out, ancestry
names no parent channel for an edge recorded through it (and so cannot say
whether that channel still serves the parent), and a bucket shows no
``latest_version`` (nor anything derived from it) while its managed `latest`
channel is restricted. Asking for one by name answers 403/7, as HCP does.

Services apply :func:`sees_restricted_channels` when they load read models (the
store filters in SQL with it, so no listing costs an extra query) and
:func:`can_see_channel` when they resolve one channel; the response cache keys
on :func:`sees_restricted_channels` too, so what one caller saw is never served
to a caller who may not see it.
"""

from __future__ import annotations

from packyard.domain.enums import Role
from packyard.domain.models import Channel


def sees_restricted_channels(role: Role) -> bool:
    """Whether ``role`` sees restricted channels: their names, assignments and history."""
    return role.can_write


def can_see_channel(role: Role, channel: Channel) -> bool:
    return not channel.restricted or sees_restricted_channels(role)


__all__ = ["can_see_channel", "sees_restricted_channels"]
