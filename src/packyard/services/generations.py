"""How long a read response computed now stays exact (see :mod:`packyard.store.generations`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packyard.domain.rules import utcnow
from packyard.store import generations
from packyard.store.engine import Store


@dataclass(frozen=True, slots=True)
class Validity:
    """A response is exact while the project is at ``generation`` and, if set, before ``until``."""

    generation: int
    until: datetime | None


class GenerationService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def validity(self, project_id: str) -> Validity:
        """Read this **before** computing a response: the response is then at least as new."""
        with self.store.read() as conn:
            return Validity(
                generations.current(conn, project_id),
                generations.next_scheduled_revocation(conn, project_id, utcnow()),
            )
