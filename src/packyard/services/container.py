"""All services of one running server, sharing one store."""

from __future__ import annotations

from dataclasses import dataclass

from packyard.services.access import AccessService
from packyard.services.ancestry import AncestryService
from packyard.services.audit import AuditService, AuditSettings
from packyard.services.auth import AuthService
from packyard.services.buckets import BucketService
from packyard.services.builds import BuildService
from packyard.services.channels import ChannelService
from packyard.services.enforced import EnforcedService
from packyard.services.generations import GenerationService
from packyard.services.plancheck import PlanCheckService
from packyard.services.principals import PrincipalService
from packyard.services.registry import RegistryService
from packyard.services.revocation import RevocationService
from packyard.services.runtask_jobs import RunTaskJobService
from packyard.services.runtask_requests import RunTaskIntake
from packyard.services.runtasks import RunTaskService
from packyard.services.sboms import SbomService
from packyard.services.scheduler import RevocationScheduler
from packyard.services.search import SearchService
from packyard.services.secrets import Sealer
from packyard.services.tenancy import TenancyService
from packyard.services.users import UserService
from packyard.services.versions import VersionService
from packyard.services.webhook_deliveries import WebhookDeliveryService
from packyard.services.webhooks import WebhookService
from packyard.store.engine import Store


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    auth: AuthService
    principals: PrincipalService
    access: AccessService
    users: UserService
    tenancy: TenancyService
    registry: RegistryService
    buckets: BucketService
    versions: VersionService
    builds: BuildService
    channels: ChannelService
    revocation: RevocationService
    sboms: SbomService
    ancestry: AncestryService
    search: SearchService
    scheduler: RevocationScheduler
    generations: GenerationService
    plancheck: PlanCheckService
    runtasks: RunTaskService
    runtask_jobs: RunTaskJobService
    runtask_intake: RunTaskIntake
    webhook_deliveries: WebhookDeliveryService
    webhooks: WebhookService
    audit: AuditService  # the audit log's reads, retention and streaming
    enforced: EnforcedService

    @classmethod
    def create(cls, store: Store, sealer: Sealer | None = None) -> Services:
        """``sealer`` holds the key that seals stored secrets (run-task HMAC keys); a server
        passes the one from its data directory, tests and benchmarks get a random one."""
        auth = AuthService(store)
        sealer = sealer or Sealer.ephemeral()
        plancheck = PlanCheckService(store)
        runtasks = RunTaskService(store, sealer)
        runtask_jobs = RunTaskJobService(store, sealer, plancheck.evaluate)
        webhook_deliveries = WebhookDeliveryService(store, sealer)
        return cls(
            store=store,
            auth=auth,
            principals=PrincipalService(store),
            access=AccessService(store),
            users=UserService(store),
            tenancy=TenancyService(store),
            registry=RegistryService(store),
            buckets=BucketService(store),
            versions=VersionService(store),
            builds=BuildService(store),
            channels=ChannelService(store),
            revocation=RevocationService(store),
            sboms=SbomService(store, auth),
            ancestry=AncestryService(store),
            search=SearchService(store),
            scheduler=RevocationScheduler(store),
            generations=GenerationService(store),
            plancheck=plancheck,
            runtasks=runtasks,
            runtask_jobs=runtask_jobs,
            runtask_intake=RunTaskIntake(runtasks, runtask_jobs),
            webhook_deliveries=webhook_deliveries,
            webhooks=WebhookService(store, sealer, webhook_deliveries),
            audit=AuditService(store, AuditSettings.from_env()),
            enforced=EnforcedService(store),
        )
