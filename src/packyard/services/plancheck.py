"""The run task's image check: :mod:`packyard.imagecheck` over one project's store.

Visibility: the run task acts for the registry as a whole towards HCP Terraform,
whose run pages anyone with access to the workspace can read, so it sees what a
*viewer* of the project sees: every bucket and version, but no restricted channel
(a newer version only on a restricted channel is not announced).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from packyard.domain.enums import Role
from packyard.domain.rules import utcnow
from packyard.imagecheck import (
    ChannelArtifact,
    ChannelVersion,
    KnownImage,
    PlanReport,
    Untracked,
    evaluate,
)
from packyard.store.engine import Store
from packyard.store.imagecheck import ImageCheckRepo

RUN_TASK_ROLE = Role.VIEWER


class _StoreLookup:
    """:class:`packyard.imagecheck.Lookup` over one read transaction, opened on first use
    (the plan is walked before it), one query per batch."""

    def __init__(self, store: Store, project_id: str, stack: ExitStack) -> None:
        self.store = store
        self.project_id = project_id
        self.stack = stack
        self._conn: Connection | None = None

    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self.stack.enter_context(self.store.read())
        return self._conn

    def find(self, image_ids: Iterable[str]) -> Mapping[str, list[KnownImage]]:
        ids = list(dict.fromkeys(image_ids))
        found: dict[str, list[KnownImage]] = {}
        if not ids:
            return found
        for r in ImageCheckRepo(self.conn()).artifacts_by_id(self.project_id, ids):
            found.setdefault(r.external_identifier, []).append(
                KnownImage(
                    bucket=r.bucket_name,
                    version_name=f"v{r.number or 0}",
                    fingerprint=r.fingerprint,
                    version_id=r.version_id,
                    revoke_at=r.revoke_at,
                    revocation_message=r.revocation_message or "",
                    platform=r.platform or "",
                    region=r.region or "",
                    version_number=r.number or 0,
                    build_id=r.build_id,
                    component_type=r.component_type,
                )
            )
        return found

    def channels(self, buckets: Iterable[str]) -> Mapping[str, list[ChannelVersion]]:
        names = list(dict.fromkeys(buckets))
        if not names:
            return {}
        rows = ImageCheckRepo(self.conn()).served_by_channels(
            self.project_id, names, include_restricted=RUN_TASK_ROLE.can_write
        )
        grouped: dict[tuple[str, str], list[Any]] = {}
        for r in rows:
            grouped.setdefault((r.bucket_name, r.channel_name), []).append(r)
        out: dict[str, list[ChannelVersion]] = {}
        for (bucket, channel), group in grouped.items():
            first = group[0]
            out.setdefault(bucket, []).append(
                ChannelVersion(
                    channel=channel,
                    version_name=f"v{first.number or 0}",
                    version_number=first.number or 0,
                    fingerprint=first.fingerprint,
                    revoke_at=first.revoke_at,
                    artifacts=tuple(
                        ChannelArtifact(
                            r.platform or "",
                            r.component_type or "",
                            r.region or "",
                            r.external_identifier,
                        )
                        for r in group
                        if r.external_identifier is not None
                    ),
                )
            )
        return out


class PlanCheckService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def evaluate(
        self,
        project_id: str,
        plan: Mapping[str, Any],
        untracked: Untracked,
        *,
        now: datetime | None = None,
    ) -> PlanReport:
        """Judge a plan against the project's registry: two queries in one read
        transaction, whatever the plan's size. Raises ``PlanError`` for bad input."""
        with ExitStack() as stack:
            lookup = _StoreLookup(self.store, project_id, stack)
            return evaluate(plan, lookup, untracked=untracked, now=now or utcnow())


__all__ = ["RUN_TASK_ROLE", "PlanCheckService"]
