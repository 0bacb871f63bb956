"""``packyard webhooks create|list|deliveries|redeliver|delete``: the project's webhooks.

Client commands (on :mod:`packyard.client`, configured by the ``HCP_*`` environment): the
project's admins change webhooks, its contributors may list them and their deliveries. The
HMAC key is read from a file or an environment variable, never from the command line (where
other users could read it in the process list).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from packyard.cli.common import (
    EXIT_USAGE,
    LIST,
    STATUS,
    TEXT,
    TIME,
    Cell,
    Column,
    Format,
    FormatOption,
    YesOption,
    client,
    emit,
    emit_json,
    fail,
    handle_errors,
    render_rows,
)

if TYPE_CHECKING:
    from packyard.client.models import Webhook, WebhookDelivery

webhooks_app = typer.Typer(
    help="Webhooks: where the project's version events are sent (admins change them).",
    no_args_is_help=True,
)

DEFAULT_EVENT = "hashicorp.packer.version:*"

NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="The webhook's name.", show_default=False)
]


def _events(items: list[str] | None) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    for item in items or [DEFAULT_EVENT]:
        source, sep, action = item.partition(":")
        if not sep or not source or not action:
            fail(f"--event expects SOURCE:ACTION (e.g. {DEFAULT_EVENT}), got {item!r}.", EXIT_USAGE)
        events.append((source, action))
    return events


def _key(key_file: Path | None, key_env: str | None) -> str | None:
    if key_file is not None and key_env:
        fail("give --hmac-key-file or --hmac-key-env, not both.", EXIT_USAGE)
    if key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            fail(f"cannot read the HMAC key file {key_file}: {reason}.", EXIT_USAGE)
        if not key:
            fail(f"the HMAC key file {key_file} is empty.", EXIT_USAGE)
        return key
    if key_env:
        value = os.environ.get(key_env, "").strip()
        if not value:
            fail(f"the environment variable {key_env} is not set or empty.", EXIT_USAGE)
        return value
    return None


def _event_list(hook: Webhook) -> list[str]:
    return [
        f"{e.source}:{e.action}" + (f" ({s.resource_id})" if s.resource_id else "")
        for s in hook.subscriptions
        for e in s.events
    ]


@webhooks_app.command("create")
@handle_errors
def webhooks_create(
    name: NameArg,
    url: Annotated[
        str, typer.Option("--url", help="Where events are POSTed (https:// or http://).")
    ],
    hmac_key_file: Annotated[
        Path | None,
        typer.Option(
            "--hmac-key-file",
            help="File holding the key that signs each request (X-HCP-Webhook-Signature).",
            show_default=False,
        ),
    ] = None,
    hmac_key_env: Annotated[
        str | None,
        typer.Option(
            "--hmac-key-env",
            metavar="VAR",
            help="Environment variable holding the signing key.",
            show_default=False,
        ),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            "-e",
            metavar="SOURCE:ACTION",
            help=f"Events to send (repeatable; '*' for any action). Default: {DEFAULT_EVENT}.",
            show_default=False,
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Create it disabled (no verification request).")
    ] = False,
    format: FormatOption = None,
) -> None:
    """Create a webhook. Unless --disabled, a verification event is POSTed to the URL first
    and any answer but 2xx refuses the webhook."""
    key = _key(hmac_key_file, hmac_key_env)
    events = _events(event)
    with client() as hcp:
        hook = hcp.create_webhook(
            name,
            url,
            hmac_key=key,
            description=description,
            enabled=not disabled,
            events=events,
        )
    state = "enabled" if hook.enabled else "disabled"
    emit(format, hook.raw, f"Created webhook {escape(hook.name)} ({state}).")


@webhooks_app.command("list")
@handle_errors
def webhooks_list(format: FormatOption = None) -> None:
    """List the project's webhooks."""
    with client() as hcp:
        hooks = list(hcp.list_webhooks())
    if format is Format.json:
        emit_json([h.raw for h in hooks])
        return
    columns = (
        Column("Name"),
        Column("Enabled"),
        Column("URL"),
        Column("Events", LIST),
        Column("Signed"),
        Column("Updated", TIME),
        Column("Description", TEXT),
    )
    rows: list[list[Cell]] = [
        [
            h.name,
            "yes" if h.enabled else "no",
            h.config.url,
            _event_list(h),
            "yes" if h.hmac_key_set else "no",
            h.updated_at,
            h.description,
        ]
        for h in hooks
    ]
    render_rows(columns, rows, format)


def _row(d: WebhookDelivery) -> list[Cell]:
    payload = d.request.payload
    return [
        d.id,
        d.event_id,
        str(payload.get("event_action") or ""),
        d.state,
        d.attempts,
        d.response.status_code or None,
        d.request.sent_at,
        d.last_error,
    ]


@webhooks_app.command("deliveries")
@handle_errors
def webhooks_deliveries(name: NameArg, format: FormatOption = None) -> None:
    """List a webhook's deliveries, newest first."""
    with client() as hcp:
        found = list(hcp.list_deliveries(name))
    if format is Format.json:
        emit_json([d.raw for d in found])
        return
    columns = (
        Column("ID"),
        Column("Event"),
        Column("Action"),
        Column("State", STATUS),
        Column("Attempts"),
        Column("HTTP"),
        Column("Sent", TIME),
        Column("Error", TEXT),
    )
    render_rows(columns, [_row(d) for d in found], format)


@webhooks_app.command("redeliver")
@handle_errors
def webhooks_redeliver(
    name: NameArg,
    delivery_id: Annotated[
        str, typer.Argument(metavar="DELIVERY_ID", help="From `packyard webhooks deliveries`.")
    ],
    format: FormatOption = None,
) -> None:
    """Send a delivered or dead delivery again (the same event, with the same event_id)."""
    with client() as hcp:
        delivery = hcp.redeliver(name, delivery_id)
    emit(
        format,
        delivery.raw,
        f"Queued delivery {escape(delivery.id)} of event {escape(delivery.event_id)} again.",
    )


@webhooks_app.command("delete")
@handle_errors
def webhooks_delete(name: NameArg, yes: YesOption = False, format: FormatOption = None) -> None:
    """Delete a webhook and its delivery log."""
    if not yes:
        typer.confirm(f"Delete webhook {name} and its deliveries?", abort=True)
    with client() as hcp:
        hcp.delete_webhook(name)
    emit(format, {"deleted": name}, f"Deleted webhook {escape(name)}.")
