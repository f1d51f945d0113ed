"""The ``robo-reward`` command.

Each subcommand lives in its own module under :mod:`robo_reward.commands` and exposes
``add_parser(subparsers)``; the module's parser sets ``run(args) -> int``. Any
:class:`~robo_reward.errors.RoboRewardError` becomes a one-line message and an exit code:
2 for a :class:`~robo_reward.errors.UsageError` (a wrong command line, like argparse's own
errors), 1 for any other (bad input, model output, configuration, missing dependency).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from robo_reward import commands
from robo_reward.errors import RoboRewardError, exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robo-reward",
        description="Rewards for robots from their cameras: label recordings, fit and evaluate reward "
        "models, serve rewards live.",
        epilog="Run `robo-reward COMMAND --help` for a command's options and examples. Exit codes: 0 done; "
        "1 bad input or a failure (a missing or corrupt file, unusable model output, a model or value that "
        "cannot work, a missing dependency, an existing output); 2 a wrong command line (a missing, "
        "malformed or conflicting argument).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module.name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except RoboRewardError as exc:
        print(f"robo-reward {args.command}: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"robo-reward {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
