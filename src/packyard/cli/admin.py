"""Operator commands: service principals, console users, signing keys, organizations and
projects.

They work on the server's database directly (``--data-dir`` / ``--database-url``, as ``serve``
does), so they need no running server and no credentials: whoever can read the database is the
operator. A project's admins do the same for their own project over the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from packyard.cli import backup as backup_commands
from packyard.cli.common import (
    EXIT_USAGE,
    ID,
    TEXT,
    TIME,
    Cell,
    Column,
    Format,
    FormatOption,
    Kind,
    YesOption,
    describe,
    emit_json,
    fail,
    render_record,
    render_rows,
)
from packyard.cli.common import stderr as stderr_console
from packyard.cli.database import DatabaseUrl, DataDir, existing_server_database
from packyard.config import default_data_dir
from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.errors import ApiError

if TYPE_CHECKING:
    from packyard.domain.models import PrincipalRecord, UserRecord
    from packyard.services.auth import NewCredentials
    from packyard.services.container import Services
    from packyard.services.principals import IssuedSecret
    from packyard.services.tenancy import Tenant
    from packyard.services.users import NewPassword

# The server stack (packyard.server, the services, sqlalchemy) is imported when an operator
# command runs, not when `packyard` starts.

T = TypeVar("T")
OPERATOR = Operator()

principal_app = typer.Typer(help="Manage service principals (operator).", no_args_is_help=True)
key_app = typer.Typer(help="Manage the token signing keys (operator).", no_args_is_help=True)
org_app = typer.Typer(help="Manage organizations (operator).", no_args_is_help=True)
project_app = typer.Typer(help="Manage projects (operator).", no_args_is_help=True)
runtask_app = typer.Typer(
    help="Manage the image validation run task's keys (operator).", no_args_is_help=True
)

ProjectId = Annotated[
    str | None,
    typer.Option("--project-id", help="Project (default: the first one, made by `serve`)."),
]
PrincipalRef = Annotated[
    str, typer.Argument(metavar="PRINCIPAL", help="Client id or principal id.")
]


@contextmanager
def operator_services(
    data_dir: Path | None, database_url: str | None, *, check_key: bool = True
) -> Iterator[Services]:
    """The services on the server's database; an ``ApiError`` ends the command on one line."""
    from packyard.server import prepare

    services, _ = prepare(*existing_server_database(data_dir, database_url), check_key=check_key)
    try:
        yield services
    except ApiError as exc:
        fail(describe(exc, hint=False))
    finally:
        services.store.dispose()


def _scope(services: Services, project_id: str | None) -> tuple[str, str]:
    """(organization id, project id) of ``--project-id`` or of the default project."""
    if project_id is None:
        tenant = services.tenancy.default_tenant()
        if tenant is None:
            fail("no project exists yet; run packyard serve once.")
        return tenant.organization.id, tenant.project.id
    for project in services.tenancy.all_projects():
        if project.id == project_id:
            return project.organization_id, project.id
    fail(f"project {project_id} does not exist.")


def _show(rows: list[dict[str, Any]], format: Format | None, columns: tuple[str, ...]) -> None:
    if format is Format.json:
        emit_json(rows)
        return
    keys = [c.lower().replace(" ", "_") for c in columns]
    render_rows(
        [Column(c, _kind(k)) for c, k in zip(columns, keys, strict=True)],
        [[_cell(row[k]) for k in keys] for row in rows],
        format,
    )


def _kind(key: str) -> Kind:
    """Free-form text (names, which may hold spaces) is the last column of a list."""
    if key.endswith("_at"):
        return TIME
    return TEXT if key in ("name", "state") else ID


def _cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | int | datetime):
        return value
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


def _label(key: str) -> str:
    """``client_id`` → ``Client ID``."""
    words = [w.upper() if w == "id" else w for w in key.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _show_one(payload: dict[str, Any], format: Format | None) -> None:
    if format is Format.json:
        emit_json(payload)
    else:
        render_record(
            [(Column(_label(k), _kind(k)), _cell(v)) for k, v in payload.items()],
            format,
        )


def _role(role: Role | None) -> str | None:
    """A project role as shown; ``None`` for an account holding only bucket grants."""
    return role.value if role is not None else None


def _record(p: PrincipalRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "client_id": p.client_id,
        "name": p.name,
        "role": _role(p.role),
        "status": "disabled" if p.disabled else "enabled",
        "organization_id": p.organization_id,
        "project_id": p.project_id,
        "created_at": p.created_at,
    }


def _with_secret(issued: IssuedSecret) -> dict[str, Any]:
    return {**_record(issued.principal), "client_secret": issued.client_secret}


def _new_tenant(tenant: Tenant, admin: NewCredentials) -> dict[str, Any]:
    return {
        "organization_id": tenant.organization.id,
        "organization_name": tenant.organization.name,
        "project_id": tenant.project.id,
        "project_name": tenant.project.name,
        "admin_name": admin.principal.name,
        "admin_client_id": admin.principal.client_id,
        "admin_client_secret": admin.client_secret,
    }


def _secret_shown_once(format: Format | None) -> None:
    if format is not Format.json:
        stderr_console().print("Store the secret now: Packyard keeps only a hash of it.")


# --- principals ----------------------------------------------------------------------------


@principal_app.command("create")
def principal_create(
    name: Annotated[str, typer.Option("--name", help="Name shown as author of changes.")],
    role: Annotated[Role, typer.Option("--role", help="viewer, contributor or admin.")],
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Create a service principal and print its client id and secret (shown once)."""
    with operator_services(data_dir, database_url) as services:
        org, project = _scope(services, project_id)
        issued = services.principals.create(OPERATOR, org, project, name=name, role=role)
    _show_one(_with_secret(issued), format)
    _secret_shown_once(format)


@principal_app.command("list")
def principal_list(
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """List the service principals with a role on the project."""
    with operator_services(data_dir, database_url) as services:
        org, project = _scope(services, project_id)
        records = services.principals.list(OPERATOR, org, project)
    _show(
        [_record(p) for p in records],
        format,
        ("Client ID", "Role", "Status", "Created At", "Name"),
    )


def _change(
    data_dir: Path | None,
    database_url: str | None,
    project_id: str | None,
    change: Callable[[Services, str, str], T],
) -> T:
    with operator_services(data_dir, database_url) as services:
        org, project = _scope(services, project_id)
        return change(services, org, project)


AccountRef = Annotated[
    str,
    typer.Argument(metavar="ACCOUNT", help="Client id (principals) or email (users), or the id."),
]
RoleArgument = Annotated[Role, typer.Argument(metavar="ROLE", help="viewer, contributor or admin.")]


def _add_access_commands(
    app: typer.Typer,
    update: Callable[[Services], Callable[..., Any]],
    show: Callable[[Any], dict[str, Any]],
    helps: dict[str, str],
) -> None:
    """``set-role``, ``disable`` and ``enable``: the same for principals and users, each
    through its own service's ``update``."""

    def apply(
        ref: str,
        project_id: str | None,
        data_dir: Path | None,
        database_url: str | None,
        format: Format | None,
        **changes: Any,
    ) -> None:
        record = _change(
            data_dir,
            database_url,
            project_id,
            lambda s, org, proj: update(s)(OPERATOR, org, proj, ref, **changes),
        )
        _show_one(show(record), format)

    @app.command("set-role", help=helps["set-role"])
    def set_role(
        ref: AccountRef,
        role: RoleArgument,
        project_id: ProjectId = None,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        format: FormatOption = None,
    ) -> None:
        apply(ref, project_id, data_dir, database_url, format, role=role)

    @app.command("disable", help=helps["disable"])
    def disable(
        ref: AccountRef,
        project_id: ProjectId = None,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        format: FormatOption = None,
    ) -> None:
        apply(ref, project_id, data_dir, database_url, format, disabled=True)

    @app.command("enable", help=helps["enable"])
    def enable(
        ref: AccountRef,
        project_id: ProjectId = None,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
        format: FormatOption = None,
    ) -> None:
        apply(ref, project_id, data_dir, database_url, format, disabled=False)


_add_access_commands(
    principal_app,
    lambda s: s.principals.update,
    _record,
    {
        "set-role": "Change a principal's role on the project (applies within 5 seconds).",
        "disable": "Disable a principal: no new tokens, and the ones it holds stop working.",
        "enable": "Enable a disabled principal (its old tokens stay dead; it asks for new ones).",
    },
)


@principal_app.command("rotate-secret")
def principal_rotate_secret(
    principal: PrincipalRef,
    revoke_tokens: Annotated[
        bool,
        typer.Option(
            "--revoke-tokens",
            help="Also end the tokens issued with the old secret at once (after a leak); "
            "otherwise they work until they expire, within an hour.",
        ),
    ] = False,
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Give a principal a new secret (shown once); the old secret stops working at once."""
    from packyard.services.bootstrap import AdminCredentials, load_credentials, save_credentials

    directory = data_dir or default_data_dir()
    rekeyed = _change(
        directory,
        database_url,
        project_id,
        lambda s, org, proj: s.principals.rotate_secret(
            OPERATOR, org, proj, principal, revoke_tokens=revoke_tokens
        ),
    )
    _show_one(_with_secret(rekeyed), format)
    saved = load_credentials(directory)
    if saved is not None and saved.client_id == rekeyed.principal.client_id:
        save_credentials(
            directory,
            AdminCredentials(
                client_id=saved.client_id,
                client_secret=rekeyed.client_secret,
                organization_id=saved.organization_id,
                project_id=saved.project_id,
            ),
        )
        stderr_console().print("Updated the admin credentials that `packyard env` prints.")
    _secret_shown_once(format)


@principal_app.command("delete")
def principal_delete(
    principal: PrincipalRef,
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    yes: YesOption = False,
) -> None:
    """Delete a principal. What it authored keeps its name as author."""
    if not yes:
        typer.confirm(f"Delete service principal {principal}?", abort=True)
    _change(
        data_dir,
        database_url,
        project_id,
        lambda s, org, proj: s.principals.delete(OPERATOR, org, proj, principal),
    )
    stderr_console().print(f"Deleted service principal {principal}.")


# --- run tasks -----------------------------------------------------------------------------


@runtask_app.command("reset-keys")
def runtask_reset_keys(
    yes: YesOption = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Give every registry's run task a new HMAC key, sealed with this server's secret key.

    The way out when the secret key that sealed the old ones is lost (the server then refuses
    to start). Endpoint URLs and policies stay; give each run task in HCP Terraform its
    registry's new key (`hcp_packer_run_task` reads it).
    """
    if not yes and not typer.confirm(
        "Replace every run task's HMAC key? HCP Terraform's requests signed with the old keys "
        "are refused until each run task is given its new key."
    ):
        raise typer.Abort()
    with operator_services(data_dir, database_url, check_key=False) as services:
        projects = services.runtasks.reset_keys()
    _show([{"project_id": p} for p in projects], format, ("Project ID",))
    if format is not Format.json:
        stderr_console().print(
            f"Replaced {len(projects)} run-task HMAC key(s); the secret key of this server is now "
            "the database's. Read each new key with GET …/runtasks/validation (or "
            "`hcp_packer_run_task`) and update the run task in HCP Terraform."
        )


# --- signing keys --------------------------------------------------------------------------


@key_app.command("rotate")
def key_rotate(
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="How long tokens signed with the old keys keep working (default 1h, the "
            "longest a token lives, so running clients finish); 0s ends them at once.",
        ),
    ] = "1h",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Sign new tokens with a new key; tokens signed with the old keys stop working after the
    grace period."""
    from packyard.domain.rules import parse_duration

    try:
        period = parse_duration(grace)
    except ApiError as exc:
        fail(f"--grace: {exc.message}", EXIT_USAGE)
    with operator_services(data_dir, database_url) as services:
        rotation = services.auth.keys.rotate(period)
    _show_one(
        {
            "key_id": rotation.key.id,
            "created_at": rotation.key.created_at,
            "old_keys_retire_at": rotation.retire_at,
            "old_keys": rotation.retired,
        },
        format,
    )
    if format is not Format.json:
        stderr_console().print(
            "Every server stops accepting tokens of the old keys within 5 seconds of that time; "
            "clients request new tokens with their unchanged credentials."
        )


@key_app.command("list")
def key_list(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """List the signing keys (never their secrets)."""
    with operator_services(data_dir, database_url) as services:
        services.auth.keys.current()  # the first key is made on first use
        keys = services.auth.keys.verifying_keys()
        current = services.auth.keys.current().id
    rows = [
        {
            "key_id": k.id,
            "state": "signing" if k.id == current else "verifying until retirement",
            "created_at": k.created_at,
            "retire_at": k.retire_at,
        }
        for k in keys
    ]
    _show(rows, format, ("Key ID", "Created At", "Retire At", "State"))


# --- organizations and projects ------------------------------------------------------------

AdminName = Annotated[
    str, typer.Option("--admin-name", help="Name of the admin principal created with it.")
]


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Option("--name", help="Organization name.")],
    project_name: Annotated[
        str, typer.Option("--project-name", help="Name of its first project.")
    ] = "default",
    admin_name: AdminName = "admin",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Create an organization with a first project and an admin principal (secret shown once)."""
    with operator_services(data_dir, database_url) as services:
        tenant, admin = services.tenancy.create_organization(
            name, project_name=project_name, admin_name=admin_name
        )
    _show_one(_new_tenant(tenant, admin), format)
    _secret_shown_once(format)


@org_app.command("list")
def org_list(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """List every organization."""
    with operator_services(data_dir, database_url) as services:
        orgs = services.tenancy.all_organizations()
    rows = [{"id": o.id, "name": o.name, "created_at": o.created_at} for o in orgs]
    _show(rows, format, ("ID", "Created At", "Name"))


@project_app.command("create")
def project_create(
    organization_id: Annotated[str, typer.Option("--org", help="Organization id.")],
    name: Annotated[str, typer.Option("--name", help="Project name.")],
    description: Annotated[str, typer.Option("--description")] = "",
    admin_name: AdminName = "admin",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Create a project with its registry and an admin principal (secret shown once)."""
    with operator_services(data_dir, database_url) as services:
        tenant, admin = services.tenancy.create_project(
            organization_id, name, admin_name=admin_name, description=description
        )
    _show_one(_new_tenant(tenant, admin), format)
    _secret_shown_once(format)


@project_app.command("list")
def project_list(
    organization_id: Annotated[
        str | None, typer.Option("--org", help="Only this organization's projects.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """List projects."""
    with operator_services(data_dir, database_url) as services:
        projects = services.tenancy.all_projects(organization_id)
    rows = [
        {
            "id": p.id,
            "organization_id": p.organization_id,
            "name": p.name,
            "created_at": p.created_at,
        }
        for p in projects
    ]
    _show(rows, format, ("ID", "Organization ID", "Created At", "Name"))


# --- console users -------------------------------------------------------------------------

user_app = typer.Typer(
    help="Manage the people who sign in to the console (operator).", no_args_is_help=True
)
UserRef = Annotated[str, typer.Argument(metavar="USER", help="Email or user id.")]


def _user(record: UserRecord) -> dict[str, Any]:
    return {
        "id": record.user.id,
        "email": record.user.email,
        "role": _role(record.role),
        "status": "disabled" if record.user.disabled else "enabled",
        "project_id": record.project_id,
        "created_at": record.user.created_at,
    }


_add_access_commands(
    user_app,
    lambda s: s.users.update,
    _user,
    {
        "set-role": "Change a user's role on the project.",
        "disable": "Disable a user: they cannot sign in, and their sessions end.",
        "enable": "Let a disabled user sign in again.",
    },
)


def _with_password(made: NewPassword) -> dict[str, Any]:
    shown = {"email": made.record.user.email, "role": _role(made.record.role)}
    return {**shown, "password": made.password} if made.password else shown


@user_app.command("create")
def user_create(
    email: Annotated[
        str, typer.Option("--email", help="The person's email: what they sign in with.")
    ],
    role: Annotated[Role, typer.Option("--role", help="viewer, contributor or admin.")],
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Create a user with a role on the project and print a generated password (shown once)."""
    made = _change(
        data_dir,
        database_url,
        project_id,
        lambda s, org, proj: s.users.create(OPERATOR, org, proj, email=email, role=role),
    )
    _show_one(_with_password(made), format)
    if format is not Format.json and made.password:
        stderr_console().print(
            "Give the password to the person; Packyard keeps only a hash of it. They can "
            "change it under Account."
        )


@user_app.command("list")
def user_list(
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """List the users with a role on the project."""
    records = _change(
        data_dir,
        database_url,
        project_id,
        lambda s, org, proj: s.users.list_for_project(OPERATOR, org, proj),
    )
    _show([_user(r) for r in records], format, ("Email", "Role", "Status", "Created At"))


@user_app.command("reset-password")
def user_reset_password(
    user: UserRef,
    project_id: ProjectId = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Give a user a new generated password (shown once); their sessions end."""
    made = _change(
        data_dir,
        database_url,
        project_id,
        lambda s, org, proj: s.users.reset_password(OPERATOR, org, proj, user),
    )
    _show_one(_with_password(made), format)


def register(app: typer.Typer) -> None:
    app.add_typer(principal_app, name="principal")
    app.add_typer(key_app, name="key")
    app.add_typer(runtask_app, name="runtask")
    app.add_typer(org_app, name="org")
    app.add_typer(project_app, name="project")
    app.add_typer(user_app, name="user")
    backup_commands.register(app)  # backup, restore
