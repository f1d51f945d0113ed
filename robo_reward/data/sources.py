"""Episode sources selectable from the command line.

A source is one class with ``add_arguments(group)``, ``selected(args)`` and
``open(args) -> list[Episode]``; adding a source means adding a class to :data:`SOURCES`,
never touching the models or sinks.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Protocol

from robo_reward.data.episodes import OUTCOMES, Episode, episode_from_views, load_manifest
from robo_reward.errors import InputError


class Source(Protocol):
    def add_arguments(self, group: argparse._ArgumentGroup) -> None: ...

    def selected(self, args: argparse.Namespace) -> bool: ...

    def open(self, args: argparse.Namespace) -> list[Episode]: ...


def parse_views(items: list[str]) -> dict[str, Path]:
    """``["front=a.mp4", "wrist=b.mp4"]`` → {"front": Path("a.mp4"), …}."""
    views: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--view needs NAME=PATH, got {item!r}")
        if name in views:
            raise InputError(f"view '{name}' given twice")
        views[name] = Path(path)
    return views


class VideoFiles:
    """One episode from one video file per view: ``--view front=front.mp4 --view wrist=wrist.mp4``."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--view", action="append", default=[], metavar="NAME=PATH",
                           help="a camera view and its video file (repeat per view; the first is the time reference)")
        group.add_argument("--task", help="the task instruction, e.g. 'open the drawer'")
        group.add_argument("--baseline", action="append", default=[],
                           help="baseline prompt for the VLM-RM projection (repeatable)")
        group.add_argument("--name", help="episode name (default: the first file's stem)")
        group.add_argument("--outcome", choices=OUTCOMES, help="the episode's known outcome, for evaluation")

    def selected(self, args: argparse.Namespace) -> bool:
        return bool(args.view)

    def open(self, args: argparse.Namespace) -> list[Episode]:
        from robo_reward.types import Task

        if args.task is None:
            raise InputError("give --task with --view, e.g. --task 'open the drawer'")
        episode = episode_from_views(parse_views(args.view), Task(args.task, tuple(args.baseline)), args.name)
        episode.outcome = args.outcome
        return [episode]


class Manifest:
    """Episodes listed in an ``episodes.json`` manifest: ``--episodes DIR [--split eval]``."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--episodes", type=Path, metavar="PATH",
                           help="a folder with episodes.json (or the file itself)")
        group.add_argument("--split", help="only the episodes of this split (e.g. fit, eval)")

    def selected(self, args: argparse.Namespace) -> bool:
        return args.episodes is not None

    def open(self, args: argparse.Namespace) -> list[Episode]:
        return list(load_manifest(args.episodes, split=args.split))


SOURCES: list[Source] = [VideoFiles(), Manifest()]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input (choose one source)")
    for source in SOURCES:
        source.add_arguments(group)


def open_episodes(args: argparse.Namespace) -> list[Episode]:
    chosen = [s for s in SOURCES if s.selected(args)]
    if len(chosen) != 1:
        raise InputError(
            "choose exactly one input: --view NAME=PATH … --task TEXT, or --episodes PATH"
            + ("" if not chosen else f" (got {len(chosen)})")
        )
    return chosen[0].open(args)
