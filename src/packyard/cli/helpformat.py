"""How ``packyard … --help`` is laid out: click's plain help (typer's ``rich_markup_mode=None``)
with its text wrapped only at spaces.

click wraps with :mod:`textwrap`'s defaults, which break after any hyphen (``--no-`` /
``rollback-channels``) and cut a word longer than the column (``PACKYA`` / ``RD_DATA_DIR``):
names people copy from the screen. :class:`WordWrapFormatter` keeps click's layout and never
breaks a word; help whose longest word does not fit beside its option goes below it instead.
A command's summary in its group's list is its help's whole first sentence (click cuts it to
one line with "..."), wrapped like the rest.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Sequence
from typing import Any

import typer
from typer._click import HelpFormatter  # typer 0.29 vendors click; this is click's formatter
from typer.core import TyperGroup

from packyard.cli.common import OneLineErrors

_PARAGRAPHS = re.compile(r"\n[ \t]*\n")


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` columns (``indent`` included), broken only at
    spaces; paragraphs (blank-line separated) stay apart, a ``\\b`` paragraph as it is."""
    wrapper = textwrap.TextWrapper(
        width=max(width, len(indent) + 1),
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines: list[str] = []
    for paragraph in _PARAGRAPHS.split(text.strip()):
        if lines:
            lines.append("")
        if paragraph.lstrip().startswith("\b"):  # click's mark for "do not rewrap"
            lines += [indent + line for line in paragraph.splitlines()[1:]]
        else:
            lines += wrapper.wrap(" ".join(paragraph.split()))
    return lines


def summary(help: str) -> str:
    """The first sentence of ``help`` (of its first paragraph, if none ends sooner)."""
    words = _PARAGRAPHS.split(inspect.cleandoc(help).partition("\f")[0])[0].split()
    ends = [i for i, word in enumerate(words) if word.endswith(".")]
    return " ".join(words[: ends[0] + 1] if ends else words)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


class WordWrapFormatter(HelpFormatter):
    """click's help formatter with :func:`wrap` for descriptions and definition lists."""

    def write_text(self, text: str) -> None:
        for line in wrap(text, self.width, " " * self.current_indent):
            self.write(f"{line}\n" if line.strip() else "\n")

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        if not rows:
            return
        col_max = min(col_max, max(self.width - 40, 16))  # narrow terminal: room for the help
        first_col = min(max(len(first) for first, _ in rows), col_max) + col_spacing
        beside = " " * (self.current_indent + first_col)
        below = " " * (self.current_indent + 2 * self.indent_increment)
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second.strip():
                self.write("\n")
                continue
            text_width = max(self.width - first_col - 2, 10)
            if _longest_word(second) > text_width and len(below) < len(beside):
                # A word wider than the column beside: the help goes below, wider.
                self.write("\n")
                lines = wrap(second, self.width, below)
            else:
                if len(first) <= first_col - col_spacing:
                    self.write(" " * (first_col - len(first)))
                else:
                    self.write("\n" + beside)
                lines = wrap(second, len(beside) + text_width, beside)
                lines[0] = lines[0][len(beside) :]
            for line in lines:
                self.write(f"{line}\n")


class HelpContext(typer.Context):
    formatter_class = WordWrapFormatter


class PackyardGroup(OneLineErrors):
    """The ``packyard`` command: :class:`OneLineErrors`, and every command under it lays its
    help out with :class:`WordWrapFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _use_help_context(self)


def _use_help_context(command: Any) -> None:
    command.context_class = HelpContext
    if not command.short_help and command.help:
        command.short_help = summary(command.help)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _use_help_context(sub)
