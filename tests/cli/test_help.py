"""``packyard … --help`` reads well at any width, piped or on a terminal.

Each help page is parsed into its usage line and its sections, and every entry is checked
against the command's own parameters: option names whole, no value placeholder on a boolean
flag, every value of a choice shown together, help text wrapped between words, no line wider
than the terminal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from packyard.cli.main import app
from tests.support.serve_process import PACKYARD, cli_env

ROOT = typer.main.get_command(app)


def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])


COMMANDS = list(walk(ROOT, []))


@dataclass
class Entry:
    head: str
    help: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.help).split())


@dataclass
class HelpPage:
    usage: list[str]
    sections: dict[str, list[Entry]]
    lines: list[str]


SECTION = re.compile(r"^([A-Z][A-Za-z ]*):$")
ENTRY = re.compile(r"^  (\S+(?: \S+)*)(?: {2,}(\S.*))?$")  # 2 spaces, head, 2+ spaces, help
OPTION_HEAD = re.compile(r"^(-{1,2}[\w-]+(?:(?:, | / )-{1,2}[\w-]+)*)(?: (.+))?$")


def parse(text: str) -> HelpPage:
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    assert lines[0].startswith("Usage: "), text
    usage = [lines[0]]
    rest = iter(lines[1:])
    for line in rest:
        if not line.strip():
            break
        usage.append(line)
    sections: dict[str, list[Entry]] = {}
    current: list[Entry] | None = None
    for line in rest:
        if found := SECTION.match(line):
            current = sections.setdefault(found[1], [])
        elif not line.strip():
            current = None
        elif current is not None:
            if line.startswith("   "):  # a help column continued, or put below a long head
                assert current, line
                current[-1].help.append(line.strip())
            else:
                entry = ENTRY.match(line)
                assert entry, f"not an entry line: {line!r}"
                current.append(Entry(entry[1], [entry[2]] if entry[2] else []))
    return HelpPage(usage, sections, lines)


def choices(param: Any) -> list[str] | None:
    descriptor = param.type_descriptor
    if not descriptor.is_choice:
        return None
    return [str(getattr(c, "value", c)) for c in descriptor.choices]


def check_page(path: list[str], command: Any, page: HelpPage, width: int) -> None:
    """Everything this help page shows, entry by entry, against the command's parameters."""
    for line in page.lines:
        assert len(line) <= width, (path, line)
    tokens = " ".join(page.usage).split()
    assert tokens[: 2 + len(path)] == ["Usage:", "packyard", *path], page.usage
    for token in tokens:  # a placeholder never breaks across lines
        for opening, closing in ("{}", "[]", "<>"):
            assert token.count(opening) == token.count(closing), (path, token)

    ctx = typer.Context(command, info_name=path[-1] if path else "packyard")
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    options = {p.opts[0]: p for p in params if p.param_type_name == "option"}
    arguments = [p for p in params if p.param_type_name == "argument"]
    # What click lays out for each parameter: (head, help with its [default: …] and so on).
    records = dict(r for p in params if (r := p.get_help_record(ctx)) is not None)

    shown_options = page.sections.get("Options", [])
    assert len(shown_options) == len(options), (path, [e.head for e in shown_options])
    for entry in shown_options:
        head = OPTION_HEAD.match(entry.head)
        assert head, (path, entry.head)
        names, metavar = re.split(r", | / ", head[1]), head[2]
        param = next(
            (p for p in options.values() if names[0] in [*p.opts, *p.secondary_opts]), None
        )
        assert param is not None, (path, entry.head)
        assert sorted(names) == sorted([*param.opts, *param.secondary_opts]), (path, entry.head)
        if param.is_flag:
            assert metavar is None, (path, entry.head)  # no <bool>
        elif (values := choices(param)) is not None:
            assert metavar == "<" + "|".join(values) + ">", (path, entry.head)
        else:
            assert metavar, (path, entry.head)
        assert entry.text == " ".join(records[entry.head].split()), (path, entry.head)

    shown_arguments = page.sections.get("Arguments", [])
    assert [e.head.split()[0] for e in shown_arguments] == [
        p.metavar or p.name for p in arguments
    ], path
    for entry in shown_arguments:
        assert entry.text == " ".join(records[entry.head].split()), (path, entry.head)

    subcommands = getattr(command, "commands", None)
    if subcommands:
        shown = [e.head for e in page.sections["Commands"]]
        assert sorted(shown) == sorted(n for n, c in subcommands.items() if not c.hidden)
        for entry in page.sections["Commands"]:  # the whole first sentence, not cut short
            words = " ".join((subcommands[entry.head].help or "").split())
            assert words.startswith(entry.text), (path, entry.text)
            assert not entry.text.endswith("..."), (path, entry.text)


@pytest.mark.parametrize("width", [60, 80])
def test_every_help_page_is_whole_at_any_width(width: int) -> None:
    runner = CliRunner()
    for path, command in COMMANDS:
        result = runner.invoke(app, [*path, "--help"], terminal_width=width)
        assert result.exit_code == 0, (path, result.output)
        check_page(path, command, parse(result.stdout), width)


def command_at(*path: str) -> Any:
    return next(c for p, c in COMMANDS if p == list(path))


# Bool flags, choices, long help, env vars, a default: the pages that went wrong before.
SAMPLES = [
    ("versions", "revoke"),
    ("principal", "create"),
    ("channels", "create"),
    ("serve",),
    (),
]

needs_script = pytest.mark.skipif(
    not PACKYARD.exists(), reason="the packyard console script is not installed"
)


@needs_script
@pytest.mark.parametrize("columns", ["60", None])
def test_piped_help_of_the_real_program(columns: str | None) -> None:
    env = cli_env(**({"COLUMNS": columns} if columns else {}))
    for path in SAMPLES:
        done = subprocess.run(
            [str(PACKYARD), *path, "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and done.stderr == "", done.stderr
        check_page(list(path), command_at(*path), parse(done.stdout), int(columns or 80))


def run_on_a_terminal(argv: list[str], columns: int) -> str:
    """``argv`` with a pseudo-terminal of ``columns`` columns as stdin, stdout and stderr."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    try:
        process = subprocess.Popen(
            argv, stdin=terminal, stdout=terminal, stderr=terminal, env=cli_env()
        )
    finally:
        os.close(terminal)
    chunks: list[bytes] = []
    with contextlib.suppress(OSError):  # EIO once the program has exited
        while chunk := os.read(controller, 65536):
            chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@needs_script
def test_help_on_a_narrow_terminal() -> None:
    for path in SAMPLES:
        text = run_on_a_terminal([str(PACKYARD), *path, "--help"], 60)
        check_page(list(path), command_at(*path), parse(re.sub(r"\x1b\[[0-9;]*m", "", text)), 60)
