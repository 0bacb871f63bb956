"""The per-project registry object (HCP's Registry resource)."""

from __future__ import annotations

from packyard.domain.enums import FeatureTier
from packyard.domain.events import AuditAction, Change
from packyard.domain.models import Caller, Registry
from packyard.domain.rules import parse_field_mask, utcnow
from packyard.errors import already_exists, invalid, not_found
from packyard.ids import new_id
from packyard.services.journal import record
from packyard.services.lookup import require_project_write
from packyard.services.recording import simple
from packyard.store.engine import Store
from packyard.store.tenancy import TenancyRepo

_REGISTRY_MASK = {
    "config.activated": "activated",
    "activated": "activated",
    "config.featureTier": "feature_tier",
    "config.feature_tier": "feature_tier",
    "featureTier": "feature_tier",
    "feature_tier": "feature_tier",
}


def _missing() -> Exception:
    return not_found("The registry for this project does not exist.")


class RegistryService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, caller: Caller) -> Registry:
        with self.store.read() as conn:
            registry = TenancyRepo(conn).get_registry(caller.project_id)
        if registry is None:
            raise _missing()
        return registry

    def create(self, caller: Caller, tier: FeatureTier | None) -> Registry:
        """Create the project's registry, or activate it again after DeleteRegistry.

        A project has exactly one registry; creating it while it is active is 409/6.
        """
        require_project_write(caller)
        now = utcnow()
        with self.store.write(caller.project_id) as conn:
            repo = TenancyRepo(conn)
            existing = repo.get_registry(caller.project_id)
            if existing is not None and existing.activated:
                raise already_exists("The registry for this project already exists.")
            if existing is not None:
                repo.update_registry(
                    caller.project_id,
                    activated=True,
                    feature_tier=_tier(tier).value,
                    updated_at=now,
                )
                reactivated = repo.get_registry(caller.project_id)
                assert reactivated is not None
                record(conn, caller.project_id, caller, _change("Created registry", reactivated))
                return reactivated
            repo.add_registry(
                Registry(
                    id=new_id(),
                    organization_id=caller.organization_id,
                    project_id=caller.project_id,
                    feature_tier=_tier(tier),
                    activated=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            registry = repo.get_registry(caller.project_id)
            assert registry is not None
            record(conn, caller.project_id, caller, _change("Created registry", registry))
        return registry

    def update(
        self,
        caller: Caller,
        *,
        tier: FeatureTier | None,
        activated: bool | None,
        update_mask: str | None,
    ) -> Registry:
        require_project_write(caller)
        paths = parse_field_mask(update_mask, _REGISTRY_MASK) if update_mask else set()
        values: dict[str, object] = {}
        if tier is not None and tier is not FeatureTier.UNSET:
            values["feature_tier"] = tier.value
        if "feature_tier" in paths and tier in (None, FeatureTier.UNSET):
            raise invalid("feature_tier must be STANDARD or PLUS.", field="feature_tier")
        if "activated" in paths:
            values["activated"] = bool(activated)
        with self.store.write(caller.project_id) as conn:
            repo = TenancyRepo(conn)
            if repo.get_registry(caller.project_id) is None:
                raise _missing()
            if values:
                values["updated_at"] = utcnow()
                repo.update_registry(caller.project_id, **values)
            registry = repo.get_registry(caller.project_id)
            assert registry is not None
            record(conn, caller.project_id, caller, _change("Updated registry", registry))
        return registry

    def delete(self, caller: Caller) -> Registry:
        """Deactivate the registry; its buckets stay and it can be activated again."""
        require_project_write(caller)
        with self.store.write(caller.project_id) as conn:
            repo = TenancyRepo(conn)
            if repo.get_registry(caller.project_id) is None:
                raise _missing()
            repo.update_registry(caller.project_id, activated=False, updated_at=utcnow())
            registry = repo.get_registry(caller.project_id)
            assert registry is not None
            record(conn, caller.project_id, caller, _change("Deleted registry", registry))
        return registry


def _change(description: str, registry: Registry) -> Change:
    action = {"Created": AuditAction.CREATE, "Deleted": AuditAction.DELETE}.get(
        description.split(maxsplit=1)[0], AuditAction.UPDATE
    )
    return simple(
        action,
        description,
        registry={
            "id": registry.id,
            "feature_tier": registry.feature_tier.value,
            "activated": registry.activated,
        },
    )


def _tier(tier: FeatureTier | None) -> FeatureTier:
    return FeatureTier.PLUS if tier in (None, FeatureTier.UNSET) else tier
