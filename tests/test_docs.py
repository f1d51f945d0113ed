"""Every ``robo-reward`` command shown in the README and docs/ parses with the CLI's own
parser, so documented flags cannot go stale (lines with a ``…`` placeholder are fragments)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from robo_reward.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.DOTALL)


def documented_commands() -> list[tuple[str, str]]:
    commands = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in BLOCK.findall(path.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.strip().removeprefix("$ ").split(" #")[0].strip().removesuffix("&").strip()
                if line.startswith("robo-reward ") and "…" not in line and "..." not in line:
                    commands.append((path.name, line))
    return commands


COMMANDS = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_a_documented_command_parses(doc: str, command: str):
    try:
        build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exc:
        assert exc.code == 0, f"{doc}: `{command}` does not parse"
