"""Context defaults of the ``packyard`` app that keep ``--help`` light.

typer (0.29) coerces every parameter value it processes through a pydantic ``TypeAdapter``,
except a flag whose value is already a ``bool``. Its own ``--help``, ``--install-completion``
and ``--show-completion`` flags are ``None`` when not given, so each group on the way to a
subcommand imported pydantic and built adapters (about 60 ms) before that subcommand could
print its help. Reading ``False`` for them from click's ``default_map`` skips that.
"""

from __future__ import annotations

from typing import Any

import typer

ROOT_FLAGS = ("help", "install_completion", "show_completion")


def default_map(app: typer.Typer) -> dict[str, Any]:
    """``False`` for the root's unset flags and for the ``--help`` of each group under it
    (a subcommand's own ``--help`` is eager: given, it is ``True`` and ends the parsing)."""
    defaults: dict[str, Any] = dict.fromkeys(ROOT_FLAGS, False)
    for group in app.registered_groups:
        if isinstance(group.name, str):
            defaults[group.name] = {"help": False}
    return defaults
