"""The relational schema (SQLAlchemy Core). Alembic migrations create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from packyard.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Token signing keys. The newest key without ``retire_at`` signs; tokens name their key
# in the ``kid`` header and are refused once that key's ``retire_at`` has passed.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retire_at", UTCDateTime, nullable=True),
)

# Monotonic counters bumped in every write transaction: per project (scope = project
# id) a project-wide one (bucket "") and one per bucket name, plus a global one (scope
# "*"). Cached read responses are valid while the sum of the counters they depend on
# is unchanged; see ``packyard.store.generations``.
cache_generations = Table(
    "cache_generations",
    metadata,
    Column("scope", ID, primary_key=True),
    Column("bucket", String(128), primary_key=True, server_default=""),
    Column("generation", BigInteger, nullable=False),
    sqlite_with_rowid=False,  # a project's key range is read straight from the primary key
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "organization_id",
        ID,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

principals = Table(
    "principals",
    metadata,
    Column("id", ID, primary_key=True),
    Column("client_id", String(128), nullable=False, unique=True),
    Column("secret_hash", String(512), nullable=False),
    Column("name", String(256), nullable=False),
    Column(
        "organization_id", ID, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # Bumped when the secret is rotated or the principal disabled: tokens carry the version
    # they were issued at and are refused once it is no longer the principal's.
    Column("token_version", Integer, nullable=False, server_default="1"),
)

# People who sign in to the console. How they authenticate is kept apart from who they are:
# ``password_hash`` is NULL for a person who only signs in through an identity provider.
users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lowercased
    Column("password_hash", String(512), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), nullable=False),
)

# Signed-in browsers. The id is the SHA-256 of the cookie's value, so the table alone
# cannot be replayed as cookies.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("principal_id", ID, ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), nullable=False),
)

registries = Table(
    "registries",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
    Column("feature_tier", String(16), nullable=False),
    Column("activated", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

buckets = Table(
    "buckets",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("labels", JSON, nullable=False),
    Column("version_count", Integer, nullable=False, default=0),
    # Mirrors the managed `latest` channel; no FK so versions can be deleted in any order.
    Column("latest_version_id", ID, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name"),
)

# A principal's or user's role on one bucket (packyard.domain.access); a member bound to
# several roles (HCP policies allow it) holds the highest. ``member_id`` is
# whichever of ``principal_id`` and ``user_id`` is set; both reference their owner, so a
# deleted account loses its grants in the same transaction.
bucket_grants = Table(
    "bucket_grants",
    metadata,
    Column("bucket_id", ID, ForeignKey("buckets.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", ID, primary_key=True),
    Column("principal_id", ID, ForeignKey("principals.id", ondelete="CASCADE"), nullable=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("role", String(32), primary_key=True),
    CheckConstraint(
        "(principal_id IS NULL) <> (user_id IS NULL) "
        "AND member_id = COALESCE(principal_id, user_id)",
        name="ck_bucket_grants_one_member",
    ),
)
Index("ix_bucket_grants_member_id", bucket_grants.c.member_id)

# The etag of each bucket's IAM policy as last set; a bucket without a row has never had
# one (its etag is empty, as HCP's SetIamPolicy expects for a first policy).
bucket_policies = Table(
    "bucket_policies",
    metadata,
    Column("bucket_id", ID, ForeignKey("buckets.id", ondelete="CASCADE"), primary_key=True),
    Column("etag", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("bucket_id", ID, ForeignKey("buckets.id", ondelete="CASCADE"), nullable=False),
    Column("fingerprint", String(128), nullable=False),
    # NULL while incomplete (rendered "v0"); the per-bucket sequence number once complete.
    Column("number", Integer, nullable=True),
    Column("template_type", String(32), nullable=False),
    Column("author_id", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revoke_at", UTCDateTime, nullable=True),
    Column("revocation_message", Text, nullable=False, default=""),
    Column("revocation_author", String(256), nullable=False, default=""),
    Column("revocation_type", String(32), nullable=True),
    Column("revocation_inherited_from", ID, nullable=True),
    Column("revocation_applied", Boolean, nullable=False, default=True),
    UniqueConstraint("bucket_id", "fingerprint"),
    UniqueConstraint("bucket_id", "number"),
)
Index("ix_versions_inherited_from", versions.c.revocation_inherited_from)
Index("ix_versions_pending_revocation", versions.c.revocation_applied, versions.c.revoke_at)
# When the next revocation takes effect (how long cached responses stay exact).
Index("ix_versions_revoke_at", versions.c.revoke_at)
# A bucket's versions newest first (ListVersions, the console's versions page): read in
# index order, a page costs the same at 100 and at 100,000 versions.
Index("ix_versions_bucket_created", versions.c.bucket_id, versions.c.created_at, versions.c.id)

builds = Table(
    "builds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("version_id", ID, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Column("component_type", String(256), nullable=False),
    Column("packer_run_uuid", String(128), nullable=False, default=""),
    Column("platform", String(256), nullable=False, default=""),
    Column("status", String(32), nullable=False),
    Column("source_external_identifier", String(1024), nullable=False, default=""),
    Column("labels", JSON, nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("parent_version_id", ID, nullable=True),
    Column("parent_channel_id", ID, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("version_id", "component_type"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("build_id", ID, ForeignKey("builds.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("project_id", ID, nullable=False),
    Column("external_identifier", String(1024), nullable=False),
    Column("region", String(256), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_artifacts_lookup", artifacts.c.project_id, artifacts.c.external_identifier)

channels = Table(
    "channels",
    metadata,
    Column("id", ID, primary_key=True),
    Column("bucket_id", ID, ForeignKey("buckets.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("managed", Boolean, nullable=False, default=False),
    Column("restricted", Boolean, nullable=False, default=False),
    Column("version_id", ID, nullable=True, index=True),
    Column("author_id", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("bucket_id", "name"),
)

channel_assignments = Table(
    "channel_assignments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("channel_id", ID, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("version_id", ID, nullable=True),
    Column("author_id", String(256), nullable=False),
    Column("assigned_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel_id", "seq"),
)

# One edge per (child version, parent version): derived from builds' parent ids.
version_edges = Table(
    "version_edges",
    metadata,
    Column(
        "child_version_id",
        ID,
        ForeignKey("versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "parent_version_id",
        ID,
        ForeignKey("versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("parent_channel_id", ID, nullable=True),
    Column("child_bucket_id", ID, nullable=False, index=True),
    Column("parent_bucket_id", ID, nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_version_edges_parent", version_edges.c.parent_version_id)
# A bucket's child edges by the channel and version they were recorded through: the
# children's roll-up seeks it per channel instead of reading every edge
# (services/views.py). The index on the parent bucket alone stays: PostgreSQL, before
# the table is analysed, prices this wider one higher and would read the lineage's
# newest parents backwards through ix_version_edges_parent instead.
Index(
    "ix_version_edges_parent_channel",
    version_edges.c.parent_bucket_id,
    version_edges.c.parent_channel_id,
    version_edges.c.parent_version_id,
)
# A bucket's child edges by child bucket, newest first: the console's bucket page seeks
# each child bucket's last recorded edge (store/overview.py).
Index(
    "ix_version_edges_parent_child",
    version_edges.c.parent_bucket_id,
    version_edges.c.child_bucket_id,
    version_edges.c.created_at,
    version_edges.c.child_version_id,
)

sboms = Table(
    "sboms",
    metadata,
    Column("id", ID, primary_key=True),
    Column("build_id", ID, ForeignKey("builds.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("format", String(16), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("build_id", "name"),
)

# One row per deleted version or build, so `packyard check` can tell a gap in a
# bucket's version numbers (or a complete version left without builds) that a
# deletion explains from one that corruption caused.
deletions = Table(
    "deletions",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "bucket_id", ID, ForeignKey("buckets.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("kind", String(16), nullable=False),  # "version" or "build"
    Column("version_id", ID, nullable=False),
    Column("number", Integer, nullable=True),  # the deleted version's number, if it had one
    Column("deleted_at", UTCDateTime, nullable=False),
)

# The image validation run task of a registry. ``api_id`` names the endpoint HCP Terraform
# calls; the HMAC key signs those calls, so it cannot be hashed: it is sealed with a key kept
# outside the database (``packyard.services.secrets``).
run_task_configs = Table(
    "run_task_configs",
    metadata,
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("api_id", String(64), nullable=False, unique=True),
    Column("hmac_key_sealed", LargeBinary, nullable=False),
    Column("on_untracked_image", String(16), nullable=False),  # UNSET | FAIL | WARN
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The durable queue of HCP Terraform run-task requests (packyard.services.runtask_jobs): a
# job survives restarts, ``task_result_id`` makes a re-delivered request a no-op, and the
# run's access token is kept sealed only until the job is done or given up (then NULL).
# ``next_attempt_at`` is when a queued job is due, or when a running job's claim lapses
# (its server died) and another server takes it over.
run_task_jobs = Table(
    "run_task_jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("task_result_id", String(256), nullable=False, unique=True),
    Column("stage", String(32), nullable=False),
    Column("run_id", String(256), nullable=False),
    Column("workspace_name", String(256), nullable=False),
    Column("plan_json_api_url", Text, nullable=True),
    Column("callback_url", Text, nullable=False),
    Column("access_token_sealed", LargeBinary, nullable=True),
    Column("outcomes", Boolean, nullable=False),
    Column("on_untracked_image", String(16), nullable=False),
    Column("link_base", Text, nullable=False),
    Column("state", String(16), nullable=False),  # queued | running | done | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("result", JSON, nullable=True),  # the final callback body, once decided
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
)
Index("ix_run_task_jobs_due", run_task_jobs.c.state, run_task_jobs.c.next_attempt_at)
Index("ix_run_task_jobs_project_id", run_task_jobs.c.project_id)

# --- events: the transactional outbox, webhooks and the audit log (packyard.services.journal)
#
# Every write transaction that changes something records its audit entry (and, for the eight
# version events, its event and one delivery per subscribed webhook) before it commits, so a
# record exists if and only if the change does. ``seq`` numbers a scope's records (a project,
# or "" for changes outside any project) in commit order: the counter row of the scope is
# updated in the same transaction, and that row lock orders the commits.
journal_sequences = Table(
    "journal_sequences",
    metadata,
    Column("scope", String(64), primary_key=True),  # "events:<project>" / "audit:<project>"
    Column("last", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),  # packer.event:<random>: stable across redeliveries
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("source", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("body", JSON, nullable=False),  # the envelope exactly as every delivery sends it
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "seq"),
)
Index("ix_events_created_at", events.c.created_at)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),  # the wire's resource_id
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("hmac_key_sealed", LargeBinary, nullable=True),  # AES-GCM under secret.key
    Column("enabled", Boolean, nullable=False),
    Column("subscriptions", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name"),
)

# One row per (webhook, event): the durable delivery queue and its log. A webhook's deliveries
# are sent in event order; ``next_attempt_at`` is when a queued one is due, or when a running
# one's lease lapses (its server died) and another server takes it over.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("webhook_id", ID, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(64), ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the event's
    Column("state", String(16), nullable=False),  # queued | running | delivered | dead
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # The claim of the server sending it (random, new per attempt): its writes name it, so a
    # server whose lease lapsed (and was taken over) changes nothing.
    Column("claim", String(32), nullable=True),
    Column("request", JSON, nullable=True),  # url, headers, sent_at of the last attempt
    Column("response", JSON, nullable=True),  # status_code, headers, body excerpt
    Column("last_error", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("webhook_id", "event_id"),
)
Index("ix_webhook_deliveries_due", webhook_deliveries.c.state, webhook_deliveries.c.next_attempt_at)
Index(
    "ix_webhook_deliveries_order",
    webhook_deliveries.c.webhook_id,
    webhook_deliveries.c.seq,
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("scope", String(36), nullable=False),  # the project id, or "" outside any project
    Column("seq", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status", String(8), nullable=False),  # OK | FAILED
    Column("action", String(16), nullable=False),  # create | update | delete
    Column("description", String(128), nullable=False),
    Column("actor_type", String(32), nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("actor_name", String(320), nullable=False),
    Column("bucket", String(128), nullable=False),  # "" when the change concerns no bucket
    Column("record", JSON, nullable=False),  # the flat HCP-style record, as streamed
    Column("request_id", String(64), nullable=False),
    Column("source_address", String(64), nullable=False),
    UniqueConstraint("scope", "seq"),
)
Index("ix_audit_events_at", audit_events.c.at)
Index("ix_audit_events_scope_at", audit_events.c.scope, audit_events.c.at)

# How far each audit sink has streamed each scope; one server streams at a time (the lease).
audit_cursors = Table(
    "audit_cursors",
    metadata,
    Column("sink", String(128), primary_key=True),
    Column("scope", String(36), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

# Work that one server at a time does (streaming the audit log): who holds it, until when.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Enforced provisioner blocks (HCP Plus): a project's named blocks, their immutable
# versions, and which version of each block every linked bucket runs.
enforced_blocks = Table(
    "enforced_blocks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "name"),
)

enforced_block_versions = Table(
    "enforced_block_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("block_id", ID, ForeignKey("enforced_blocks.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(128), nullable=False),
    Column("template_type", String(32), nullable=False),
    Column("block_content", Text, nullable=False),
    Column("additional_description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("block_id", "version"),
)

# Exactly one version of a block per bucket: linking another version moves the row.
# The version's foreign key does not cascade, so a linked version cannot be deleted.
enforced_block_links = Table(
    "enforced_block_links",
    metadata,
    Column("id", ID, primary_key=True),
    Column("bucket_id", ID, ForeignKey("buckets.id", ondelete="CASCADE"), nullable=False),
    Column("block_id", ID, ForeignKey("enforced_blocks.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", ID, ForeignKey("enforced_block_versions.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("bucket_id", "block_id"),
)
Index("ix_enforced_block_links_block_id", enforced_block_links.c.block_id)
