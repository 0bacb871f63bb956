"""First start: a default organization, project, registry and admin principal."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from packyard.config import CREDENTIALS_FILE, write_private_json
from packyard.services.container import Services
from packyard.services.tenancy import Tenant
from packyard.startup import StartupError
from packyard.store.engine import Store

_PG_BOOTSTRAP_LOCK = 7_413_920_552


@dataclass(frozen=True, slots=True)
class AdminCredentials:
    client_id: str
    client_secret: str
    organization_id: str
    project_id: str


@contextmanager
def startup_lock(store: Store, data_dir: Path) -> Iterator[None]:
    """Serialise start-up work between processes sharing a database."""
    if store.is_sqlite:
        data_dir.mkdir(parents=True, exist_ok=True)
        with (data_dir / ".startup.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with store.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_BOOTSTRAP_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_BOOTSTRAP_LOCK})
            conn.commit()


def ensure_bootstrapped(services: Services, data_dir: Path) -> tuple[Tenant, bool]:
    """Create the default tenant and admin principal unless a tenant exists.

    The admin's secret exists in clear only in ``credentials.json`` in the data
    directory (mode 0600, the HCP credential-file format); the database keeps a
    slow hash. Returns the default tenant and whether it was just created.
    """
    tenant = services.tenancy.default_tenant()
    if tenant is not None:
        return tenant, False
    tenant, creds = services.tenancy.create_organization(
        "default", project_name="default", admin_name="admin"
    )
    save_credentials(
        data_dir,
        AdminCredentials(
            client_id=creds.principal.client_id,
            client_secret=creds.client_secret,
            organization_id=tenant.organization.id,
            project_id=tenant.project.id,
        ),
    )
    return tenant, True


def save_credentials(data_dir: Path, creds: AdminCredentials) -> None:
    write_private_json(
        data_dir / CREDENTIALS_FILE,
        {
            "scheme": "service_principal_creds",
            "oauth": {"client_id": creds.client_id, "client_secret": creds.client_secret},
            "project_id": creds.project_id,
            "organization_id": creds.organization_id,
        },
    )


def load_credentials(data_dir: Path) -> AdminCredentials | None:
    path = data_dir / CREDENTIALS_FILE
    try:
        raw = json.loads(path.read_text())
        return AdminCredentials(
            client_id=str(raw["oauth"]["client_id"]),
            client_secret=str(raw["oauth"]["client_secret"]),
            organization_id=str(raw["organization_id"]),
            project_id=str(raw["project_id"]),
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StartupError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise StartupError(
            f"{path} is not a credentials file; restore it, or make a new admin with "
            "`packyard principal create --role admin`"
        ) from None
