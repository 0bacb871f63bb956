"""Identifier generation: ULIDs for registry objects, UUIDs for tenants."""

from __future__ import annotations

import uuid

from ulid import ULID


def new_id() -> str:
    """A new ULID: 26 upper-case Crockford base32 characters, time ordered."""
    return str(ULID())


def new_uuid() -> str:
    return str(uuid.uuid4())
