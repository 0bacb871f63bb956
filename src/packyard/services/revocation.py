"""Revocation and restoration of versions (UpdateVersion)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packyard.domain.models import Caller, Version
from packyard.errors import ApiError, Code
from packyard.store.engine import Store


@dataclass(frozen=True, slots=True)
class RevocationRequest:
    revoke_at: datetime | None
    revoke_in: str | None
    message: str
    restore: bool
    skip_descendants: bool
    disable_rollback: bool

    @property
    def touches_revocation(self) -> bool:
        return bool(self.revoke_at or self.revoke_in or self.restore)


class RevocationService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def update(
        self, caller: Caller, bucket_name: str, fingerprint: str, request: RevocationRequest
    ) -> Version:
        raise ApiError(Code.UNIMPLEMENTED, "Revocation is not implemented yet.")
