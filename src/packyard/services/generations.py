"""How long a read response computed now stays exact (see :mod:`packyard.store.generations`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from packyard.domain.rules import utcnow
from packyard.store import generations
from packyard.store.engine import Store
from packyard.store.generations import Buckets


@dataclass(frozen=True, slots=True)
class Validity:
    """A response is exact while the keys of ``buckets`` (``None``: every key of the
    project) sum to ``generation`` and, if set, before ``until``."""

    generation: int
    until: datetime | None
    buckets: Buckets = None


class GenerationService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def validity(self, project_id: str, bucket_name: str | None = None) -> Validity:
        """Read this **before** computing a response: the response is then at least as new.

        ``bucket_name``: the bucket the response is about (``None``: a project-wide one).
        """
        with self.store.read() as conn:
            keys = (
                None
                if bucket_name is None
                else generations.dependencies(conn, project_id, bucket_name)
            )
            return Validity(
                generations.current(conn, project_id, keys),
                generations.next_scheduled_revocation(conn, project_id, utcnow()),
                keys,
            )
