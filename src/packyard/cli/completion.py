"""Shell completion of registry names: buckets, channels, version fingerprints, build ids.

``packyard --install-completion`` installs the shell hook; at each <TAB> the shell runs
``packyard`` again, which calls these functions with what is already on the command line
(``ctx.params``) and asks the registry of the ``HCP_*`` environment, through the SDK.

A completion is best effort: without an environment, on an unreachable or slow server, or on
any error it completes nothing, prints nothing and returns within :data:`DEADLINE` seconds
(``PACKYARD_COMPLETION_TIMEOUT`` sets another, for a slow link).
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from packyard.client import PackerClient

DEADLINE = 2.0
"""Seconds a completion may take, in all (each HTTP request has the same timeout)."""
DEADLINE_ENV = "PACKYARD_COMPLETION_TIMEOUT"
LIMIT = 200
"""At most this many candidates: more are no use on a terminal."""

Candidates = list[tuple[str, str]]
"""(value, help) pairs: zsh and fish show the help beside the value, bash only the value."""


def deadline() -> float:
    """:data:`DEADLINE`, or the seconds in ``PACKYARD_COMPLETION_TIMEOUT`` (up to 60)."""
    try:
        seconds = float(os.environ.get(DEADLINE_ENV, DEADLINE))
    except ValueError:
        return DEADLINE
    return seconds if math.isfinite(seconds) and 0 < seconds <= 60 else DEADLINE


def _ask(query: Callable[[PackerClient], Iterable[tuple[str, str]]]) -> Candidates:
    """``query`` on a client of the ``HCP_*`` environment, or nothing after any failure."""
    found: Candidates = []
    seconds = deadline()

    def work() -> None:
        try:
            from packyard.client import ClientConfig, PackerClient

            config = dataclasses.replace(ClientConfig.from_env(), timeout=seconds)
            with PackerClient(config) as hcp:
                found.extend(islice(query(hcp), LIMIT))
        except Exception:  # noqa: S110 - a failed completion is an empty one, silently
            pass

    # A thread bounds the whole exchange (token, tenant lookup, listing), not one request.
    worker = threading.Thread(target=work, name="packyard-completion", daemon=True)
    worker.start()
    worker.join(seconds)
    return [] if worker.is_alive() else list(found)


def _given(ctx: typer.Context, name: str) -> str | None:
    """The value of parameter ``name`` already on the command line, if any."""
    value = ctx.params.get(name)
    if value is None:
        # Completing an option's value (`promote golden --from <TAB>`), click stops parsing
        # at that option: the arguments before it are left, in order, in ctx.args.
        arguments = [p.name for p in ctx.command.params if p.param_type_name == "argument"]
        if name in arguments and arguments.index(name) < len(ctx.args):
            value = ctx.args[arguments.index(name)]
    return value if isinstance(value, str) and value else None


def buckets(incomplete: str) -> Candidates:
    """Bucket names (with their description)."""
    return _ask(
        lambda hcp: (
            (b.name, b.description)
            for b in hcp.list_buckets(order_by=["name"])
            if b.name.startswith(incomplete)
        )
    )


def channels(ctx: typer.Context, incomplete: str) -> Candidates:
    """Channel names of the bucket on the command line (with the version each points at)."""
    bucket = _given(ctx, "bucket")
    if bucket is None:
        return []
    return _ask(
        lambda hcp: (
            (c.name, c.version.name if c.version else "")
            for c in hcp.list_channels(bucket)
            if c.name.startswith(incomplete)
        )
    )


def fingerprints(ctx: typer.Context, incomplete: str) -> Candidates:
    """Version fingerprints of the bucket on the command line, newest first (with the
    version's name and status)."""
    bucket = _given(ctx, "bucket")
    if bucket is None:
        return []
    return _ask(
        lambda hcp: (
            (v.fingerprint, f"{v.name} {v.status.removeprefix('VERSION_').lower()}")
            for v in hcp.list_versions(bucket, order_by=["created_at desc"])
            if v.fingerprint.startswith(incomplete)
        )
    )


def builds(ctx: typer.Context, incomplete: str) -> Candidates:
    """Build ids of the version on the command line (with component and platform)."""
    bucket, fingerprint = _given(ctx, "bucket"), _given(ctx, "fingerprint")
    if bucket is None or fingerprint is None:
        return []
    return _ask(
        lambda hcp: (
            (b.id, f"{b.component_type} {b.platform}".strip())
            for b in hcp.list_builds(bucket, fingerprint)
            if b.id.startswith(incomplete)
        )
    )
