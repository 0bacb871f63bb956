"""Registers the client commands (on :mod:`packyard.client`) on the ``packyard`` app."""

from __future__ import annotations

import typer

from packyard.cli import access, audit, enforced, manifest, plan, resources, webhooks


def register(app: typer.Typer) -> None:
    app.add_typer(resources.buckets_app, name="buckets")
    app.add_typer(resources.versions_app, name="versions")
    app.add_typer(resources.builds_app, name="builds")
    app.add_typer(resources.channels_app, name="channels")
    app.command("ancestry")(resources.ancestry)
    app.add_typer(resources.artifact_app, name="artifact")
    app.add_typer(plan.plan_app, name="plan")
    app.add_typer(access.access_app, name="access")
    app.add_typer(audit.audit_app, name="audit")
    app.add_typer(webhooks.webhooks_app, name="webhooks")
    app.add_typer(enforced.enforced_app, name="enforced")
    app.command("ingest-manifest")(manifest.ingest_manifest)
