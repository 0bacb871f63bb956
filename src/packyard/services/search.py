"""SearchExternalArtifact: from a cloud image id back to its bucket, version and build."""

from __future__ import annotations

from packyard.domain.access import visible_buckets
from packyard.domain.models import Caller
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import validate_text
from packyard.domain.search import ExternalArtifactHit
from packyard.errors import invalid
from packyard.services.views import hide_unseen_origins
from packyard.store.engine import Store
from packyard.store.search import SearchRepo
from packyard.store.versions import VersionRepo


class SearchService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def external_artifact(
        self,
        caller: Caller,
        external_identifier: str | None,
        *,
        platform: str | None,
        region: str | None,
        page: PageRequest,
    ) -> Page[ExternalArtifactHit]:
        """Exact matches across every bucket of the project the caller sees; three queries
        per page."""
        ext = validate_text(external_identifier, field="external_identifier", limit=1024)
        if not ext:
            raise invalid("external_identifier is required.", field="external_identifier")
        platform = validate_text(platform, field="platform") or None
        region = validate_text(region, field="region") or None
        with self.store.read() as conn:
            matches = SearchRepo(conn).builds_with_artifact(
                caller.project_id,
                ext,
                platform=platform,
                region=region,
                page=page,
                visible=visible_buckets(caller),
            )
            version_ids = {m.version_id for m in matches.items}
            found = VersionRepo(conn).get_with_builds(version_ids)
        hide_unseen_origins(found.values(), visible_buckets(caller))
        hits: list[ExternalArtifactHit] = []
        for m in matches.items:
            version = found[m.version_id]
            build = next(b for b in version.builds if b.id == m.build_id)
            hits.append(
                ExternalArtifactHit(
                    bucket_id=m.bucket_id,
                    bucket_name=m.bucket_name,
                    bucket_labels=m.bucket_labels,
                    version=version,
                    build=build,
                )
            )
        return Page(
            items=hits, next_token=matches.next_token, previous_token=matches.previous_token
        )


__all__ = ["SearchService"]
