"""``packyard``: run the server and administer it."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

from packyard import __version__
from packyard.cli.admin import register as register_admin_commands
from packyard.cli.commands import register as register_client_commands
from packyard.cli.common import (
    TEXT,
    Column,
    FormatOption,
    fail,
    render_rows,
    stderr,
    warn,
)
from packyard.cli.common import Format as OutputFormat
from packyard.cli.database import DatabaseUrl, DataDir, existing_server_database
from packyard.cli.defaults import default_map
from packyard.cli.envblock import as_shell, env_block
from packyard.cli.helpformat import PackyardGroup
from packyard.config import (
    DEFAULT_PORT,
    Advertised,
    default_data_dir,
    load_advertised,
    read_database_url_file,
)
from packyard.errors import ApiError
from packyard.startup import StartupError

if TYPE_CHECKING:
    from collections.abc import Callable

    from packyard.services.container import Services

# The server stack (fastapi, granian, sqlalchemy, the services) is imported inside the
# commands that use it: `packyard --help` and the client commands start without it.

_defaults: dict[str, Any] = {}  # filled once every command is registered, below
app = typer.Typer(
    name="packyard",
    help="Packyard: a self-hosted registry for Packer image metadata (HCP Packer compatible).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=PackyardGroup,  # a usage error is one line, exit code 2; help wrapped between words
    # click's plain help: whole option names and choices, no <bool> column, wrapped between
    # words at any width; sub-apps inherit it.
    rich_markup_mode=None,
    context_settings={"default_map": _defaults},  # see packyard.cli.defaults
)
err = stderr()


def _print_version(value: bool) -> None:
    if value:
        print(f"packyard {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Packyard: a self-hosted registry for Packer image metadata (HCP Packer compatible)."""


class Format(StrEnum):
    shell = "shell"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


def _warn_token_on_command_line(
    ctx: typer.Context, param: typer.CallbackParam, value: str | None
) -> str | None:
    source = ctx.get_parameter_source(param.name) if param.name else None
    if value and source is not None and source.name == "COMMANDLINE":
        warn(
            "the metrics token given with --metrics-token is visible to other local users "
            "(ps, /proc); set PACKYARD_METRICS_TOKEN instead."
        )
    return value


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on.", envvar="PACKYARD_HOST", show_envvar=True),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=1,
            max=65535,
            help="Port for the API and token endpoint.",
            envvar="PACKYARD_PORT",
            show_envvar=True,
        ),
    ] = DEFAULT_PORT,
    database_url: DatabaseUrl = None,
    database_url_file: Annotated[
        Path | None,
        typer.Option(
            "--database-url-file",
            help="Read the database URL from this file (mode 0600) instead.",
            envvar="PACKYARD_DATABASE_URL_FILE",
            show_envvar=True,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate to serve.", envvar="PACKYARD_TLS_CERT", show_envvar=True
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key to serve.", envvar="PACKYARD_TLS_KEY", show_envvar=True),
    ] = None,
    no_tls: Annotated[
        bool,
        typer.Option(
            "--no-tls",
            help="Plain HTTP, for use behind a TLS-terminating proxy.",
            envvar="PACKYARD_NO_TLS",
            show_envvar=True,
        ),
    ] = False,
    public_address: Annotated[
        str | None,
        typer.Option(
            help="host:port clients use to reach this server (e.g. the proxy).",
            envvar="PACKYARD_PUBLIC_ADDRESS",
            show_envvar=True,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            help="How much the server logs.", envvar="PACKYARD_LOG_LEVEL", show_envvar=True
        ),
    ] = LogLevel.info,
    log_format: Annotated[
        LogFormatChoice,
        typer.Option(
            help="text (timestamped lines) or json (one object per line) on standard error.",
            envvar="PACKYARD_LOG_FORMAT",
            show_envvar=True,
        ),
    ] = LogFormatChoice.text,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log one line per request (method, path, status, duration, size).",
            envvar="PACKYARD_ACCESS_LOG",
            show_envvar=True,
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (about one per core; each has its own caches).",
            envvar="PACKYARD_WORKERS",
            show_envvar=True,
        ),
    ] = 1,
    metrics_token: Annotated[
        str | None,
        typer.Option(
            help=(
                "Bearer token /metrics asks for (then any address may scrape); without one "
                "/metrics answers loopback clients only. Prefer the environment variable."
            ),
            envvar="PACKYARD_METRICS_TOKEN",
            show_envvar=True,
            callback=_warn_token_on_command_line,
        ),
    ] = None,
) -> None:
    """Run the registry: the HCP Packer API and the OAuth2 token endpoint on one port.

    Exit status 2 when the server cannot start as configured (a bad option, an unusable
    data directory, database, certificate or port), with one line saying why.
    """
    from packyard.server import (
        WILDCARDS,
        ServeOptions,
        advertised_address,
        check_certificate,
        check_public_address,
        clients_use_tls,
        ensure_port_free,
        prepare,
        ready,
        run,
    )
    from packyard.services.bootstrap import load_credentials

    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together.", 2)
    if no_tls and tls_cert:
        fail("--no-tls cannot be combined with --tls-cert/--tls-key.", 2)
    if public_address is not None:
        try:
            check_public_address(public_address)
        except ValueError as exc:
            fail(str(exc), 2)
    if database_url_file is not None:
        if database_url:
            fail("give the database URL once: --database-url or --database-url-file.", 2)
        try:
            database_url = read_database_url_file(database_url_file)
        except StartupError as exc:
            fail(exc.message, 2)
    directory = data_dir or default_data_dir()
    options = ServeOptions(
        data_dir=directory,
        host=host,
        port=port,
        database_url=database_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        no_tls=no_tls,
        public_address=public_address,
        log_level=log_level.value,
        workers=workers,
        database_url_file=database_url_file,
        log_format=log_format.value,
        access_log=access_log,
        metrics_token=metrics_token or None,
    )
    try:
        if tls_cert is not None and tls_key is not None:
            check_certificate(tls_cert, tls_key)
        ensure_port_free(host, port)
        services, first = prepare(directory, database_url)
        handover = ready(options)
    except (ApiError, StartupError) as exc:
        fail(exc.message, 2)
        return

    def say(message: str, *, note: bool = False) -> None:
        """A start-up line on stderr: as it always was in text format, a log object in JSON."""
        if log_format is LogFormatChoice.json:
            from packyard.logs import serve_line

            text = f"note: {message}" if note else message
            print(serve_line(text, log_format.value), file=sys.stderr, flush=True)
        else:
            markup = "[yellow]note:[/yellow] " if note else ""
            err.print(f"{markup}{escape(message)}", highlight=False)

    creds = load_credentials(directory)
    address = advertised_address(host, port, public_address)
    tls = clients_use_tls(no_tls, public_address)
    scheme = "https" if tls else "http"
    say(f"Packyard {__version__} serving on {scheme}://{address} (data: {directory})")
    if creds is not None and first:
        # The admin secret is shown once, at creation; `packyard env` prints it again.
        advertised = Advertised(
            address=address, tls=tls, self_signed=not no_tls and tls_cert is None
        )
        say("First start: created the default organization and project. For stock clients:")
        print(as_shell(env_block(advertised, creds)), flush=True)
    else:
        say("Run `packyard env` for the HCP_* variables stock clients need.")
    _first_console_admin(services, f"{scheme}://{address}/", say)
    if no_tls and public_address is None:
        say(
            "the HCP SDK requires an https auth URL; put a TLS proxy in front and pass "
            "--public-address.",
            note=True,
        )
    elif host in WILDCARDS and public_address is None:
        say(
            f"listening on every address, Packyard names {address} in `packyard env` and in "
            "the links it hands out; pass --public-address with the address clients use.",
            note=True,
        )
    try:
        run(handover, services)
    except StartupError as exc:
        fail(exc.message, 2)


def _first_console_admin(services: Services, console_url: str, say: Callable[[str], None]) -> None:
    """Create the console's first admin (nothing once any user exists) and show its
    password: only now, as only an argon2id hash is kept."""
    tenant = services.tenancy.default_tenant()
    if tenant is None:
        return
    made = services.users.create_first_admin(tenant.organization.id, tenant.project.id)
    if made is None:
        return
    email = made.record.user.email
    say(
        f"Console: open {console_url} and sign in as {email} with the password below "
        "(shown only now; change it under Account, or make a new one with "
        "`packyard user reset-password`)."
    )
    print(f"PACKYARD_CONSOLE_USER={email}", flush=True)
    print(f"PACKYARD_CONSOLE_PASSWORD={made.password}", flush=True)


@app.command()
def env(
    data_dir: DataDir = None,
    format: Annotated[Format, typer.Option("--format", help="shell or json.")] = Format.shell,
) -> None:
    """Print the HCP_* environment stock Packer and Terraform need for this server."""
    from packyard.services.bootstrap import load_credentials

    directory = data_dir or default_data_dir()
    creds = load_credentials(directory)
    advertised = load_advertised(directory)
    if creds is None or advertised is None:
        fail(f"no server has been started with data directory {directory}; run packyard serve.")
        return
    _describe_server(advertised)
    block = env_block(advertised, creds)
    if format is Format.json:
        print(orjson.dumps(block, option=orjson.OPT_INDENT_2).decode())
    else:
        print(as_shell(block))


def _describe_server(advertised: Advertised) -> None:
    """Say on stderr which start of a server ``packyard env`` describes (the last one on the
    data directory), with a warning when it no longer runs; stdout stays the env block."""
    if advertised.pid is None or advertised.started_at is None:
        return  # written by an older version, which recorded neither
    where = f"{'https' if advertised.tls else 'http'}://{advertised.address}"
    started = f"started {advertised.started_at}, pid {advertised.pid}"
    if _server_running(advertised.pid):
        err.print(f"packyard: the server at {where} ({started}) is running", highlight=False)
    else:
        warn(
            f"the server at {where} ({started}) is no longer running; these settings apply "
            "once `packyard serve` runs again with this data directory."
        )


def _server_running(pid: int) -> bool:
    """Whether ``pid`` is alive and still a Packyard process (pids are reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        cmdline = b"packyard"  # not readable here: trust that the pid exists
    state = _proc_state(pid)
    return b"packyard" in cmdline and state not in ("Z", "X", None)


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@app.command()
def check(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    format: FormatOption = None,
) -> None:
    """Verify the registry's invariants; print one line per violation, exit 1 if any."""
    from sqlalchemy.exc import SQLAlchemyError

    from packyard.config import database_url as resolve_url
    from packyard.config import scrub
    from packyard.services.check import check_store
    from packyard.store.engine import Store

    directory, db_url = existing_server_database(data_dir, database_url)
    url = resolve_url(directory, db_url)
    try:
        store = Store(url, pool_size=1)
        try:
            report = check_store(store)
        finally:
            store.dispose()
    except (SQLAlchemyError, ValueError) as exc:
        message = scrub(str(exc).splitlines()[0][:300], url)
        fail(f"cannot read the database: {message}", 2)
    if format is OutputFormat.json:
        payload = {
            "ok": report.ok,
            "checked": {
                "buckets": report.buckets,
                "versions": report.versions,
                "builds": report.builds,
                "channels": report.channels,
            },
            "violations": [v.as_dict() for v in report.violations],
        }
        print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    else:
        if report.violations:  # nothing on stdout when all is well
            render_rows(
                (Column("Rule"), Column("Subject"), Column("Message", TEXT)),
                [[v.rule, v.subject, v.message] for v in report.violations],
                format,
            )
        summary = (
            f"checked {report.buckets} buckets, {report.versions} versions, {report.builds} "
            f"builds, {report.channels} channels: {len(report.violations)} violations"
        )
        err.print(summary, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


register_client_commands(app)  # buckets, versions, …, plan check, ingest-manifest
register_admin_commands(app)  # principal, key, org, project
_defaults.update(default_map(app))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
