"""Episode sources selectable from the command line.

A source is one class with ``add_arguments(group, labeling)``, ``selected(args)``,
``open(args, outcomes) -> list[Episode]`` and ``sinks(args, episodes)`` (where its labels
go besides scores.parquet: a new LeRobot dataset, new bags…); adding a source means adding
a class to :data:`SOURCES`, never touching the models or the labeling pipeline. The same
sources feed ``robo-reward label`` and ``robo-reward fit`` (``labeling=False``: no output
options).

One flag names a camera view and where its frames come from: ``--view NAME=SOURCE``,
SOURCE being a video file, or an image topic with ``--bag`` (``robo-reward serve`` uses
the same flag for live topics). ``--topic`` (and serve's ``--camera``) are deprecated
aliases that still work and print a warning. Errors in the command line itself raise
:class:`~robo_reward.errors.UsageError` (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from robo_reward.data.episodes import OUTCOMES, episode_from_views, load_manifest
from robo_reward.errors import UsageError
from robo_reward.types import Episode, Task

if TYPE_CHECKING:
    from robo_reward.labels import Sink


class Source(Protocol):
    def add_arguments(self, group: argparse._ArgumentGroup, labeling: bool = True) -> None: ...

    def selected(self, args: argparse.Namespace) -> bool: ...

    def open(self, args: argparse.Namespace, outcomes: Sequence[str] | None = None) -> list[Episode]: ...

    def sinks(self, args: argparse.Namespace, episodes: list[Episode]) -> list[Sink]: ...


class DeprecatedAlias(argparse.Action):
    """A renamed repeatable flag: appends to the new flag's ``dest`` and warns on stderr.

    ``group.add_argument("--topic", dest="view", action=DeprecatedAlias, new="--view")``
    keeps old scripts working while saying what to write instead.
    """

    def __init__(self, option_strings, dest, new: str, **kwargs) -> None:
        kwargs.setdefault("default", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new} {values} instead "
              f"(same meaning; {option_string} will be removed)", file=sys.stderr)
        items = list(getattr(namespace, self.dest, None) or [])
        setattr(namespace, self.dest, [*items, values])


def parse_pairs(items: list[str], flag: str, what: str) -> dict[str, str]:
    """``["front=a", "wrist=b"]`` → {"front": "a", "wrist": "b"}; ``flag`` and ``what`` name them in errors."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{flag} needs NAME={what}, got {item!r}")
        if name in pairs:
            raise UsageError(f"view '{name}' given twice")
        pairs[name] = value
    return pairs


def parse_views(items: list[str]) -> dict[str, Path]:
    """``["front=a.mp4", "wrist=b.mp4"]`` → {"front": Path("a.mp4"), …}."""
    return {name: Path(path) for name, path in parse_pairs(items, "--view", "PATH").items()}


def task_from_args(args: argparse.Namespace, needed_with: str) -> Task | None:
    """The ``--task``/``--baseline`` task, or None when ``--task`` was not given; ``needed_with`` says for what."""
    if args.task is None:
        if needed_with:
            raise UsageError(f"give --task with {needed_with}, e.g. --task 'open the drawer'")
        return None
    return Task(args.task, tuple(args.baseline))


class VideoFiles:
    """One episode from one video file per view: ``--view front=front.mp4 --view wrist=wrist.mp4``."""

    def add_arguments(self, group: argparse._ArgumentGroup, labeling: bool = True) -> None:
        group.add_argument("--view", action="append", default=[], metavar="NAME=SOURCE",
                           help="a camera view and its source: a video file, or with --bag an Image/CompressedImage "
                                "topic (repeat per view; the first is the time reference)")
        group.add_argument("--task", help="the task instruction, e.g. 'open the drawer' (with --lerobot: overrides "
                                          "the dataset's tasks)")
        group.add_argument("--baseline", action="append", default=[],
                           help="baseline prompt for the VLM-RM projection (repeatable)")
        group.add_argument("--name", help="episode name (default: the first file's stem)")
        if labeling:
            group.add_argument("--outcome", choices=OUTCOMES, help="the episode's known outcome, for evaluation")

    def selected(self, args: argparse.Namespace) -> bool:
        return bool(args.view) and not args.bag

    def open(self, args: argparse.Namespace, outcomes: Sequence[str] | None = None) -> list[Episode]:
        episode = episode_from_views(parse_views(args.view), task_from_args(args, "--view"), args.name)
        episode.outcome = getattr(args, "outcome", None)
        return [episode]

    def sinks(self, args: argparse.Namespace, episodes: list[Episode]) -> list[Sink]:
        return []


class Manifest:
    """Episodes listed in an ``episodes.json`` manifest: ``--episodes DIR [--split eval]``."""

    def add_arguments(self, group: argparse._ArgumentGroup, labeling: bool = True) -> None:
        aliases = () if labeling else ("--demos",)  # fit's name for it before fit took every source
        group.add_argument("--episodes", *aliases, dest="episodes", type=Path, metavar="PATH",
                           help="a folder with episodes.json (or the file itself)"
                                + ("" if labeling else "; only its successful episodes are demos"))
        group.add_argument("--split", help="only the episodes of this split (e.g. fit, eval)")

    def selected(self, args: argparse.Namespace) -> bool:
        return args.episodes is not None

    def open(self, args: argparse.Namespace, outcomes: Sequence[str] | None = None) -> list[Episode]:
        return list(load_manifest(args.episodes, split=args.split, outcomes=outcomes))

    def sinks(self, args: argparse.Namespace, episodes: list[Episode]) -> list[Sink]:
        return []


class LeRobotDataset:
    """Every episode of a LeRobot v3.0 dataset: ``--lerobot DIR_OR_REPO_ID [--write lerobot|sidecar]``."""

    def add_arguments(self, group: argparse._ArgumentGroup, labeling: bool = True) -> None:
        from robo_reward.data.lerobot import WRITE_MODES

        group.add_argument("--lerobot", metavar="PATH|REPO_ID",
                           help="a LeRobot v3.0 dataset folder, or a Hub repo id (needs a network)"
                                + ("" if labeling else "; every episode is a demo, except those its "
                                   "meta/robo_reward_episodes.json records as partial or failure"))
        group.add_argument("--lerobot-root", type=Path, metavar="DIR",
                           help="where a Hub repo id is downloaded (default: LeRobot's cache)")
        if not labeling:
            return
        group.add_argument("--write", choices=WRITE_MODES, default="lerobot",
                           help="with --lerobot: a new dataset keeping the input's columns plus the model's "
                                "reward.robo_reward/progress.robo_reward/success_probability.robo_reward and the "
                                "progress sidecar (lerobot), or the sidecar progress.parquet only (sidecar)")
        group.add_argument("--replace-reward", action="store_true",
                           help="with --write lerobot: also write the model's reward into next.reward, replacing "
                                "the dataset's own (next.success is never replaced)")

    def selected(self, args: argparse.Namespace) -> bool:
        return args.lerobot is not None

    def open(self, args: argparse.Namespace, outcomes: Sequence[str] | None = None) -> list[Episode]:
        from robo_reward.data.lerobot import open_lerobot

        episodes = open_lerobot(args.lerobot, task=task_from_args(args, ""), download_root=args.lerobot_root)
        # an episode of unknown outcome is kept: a dataset without outcomes is all demos
        return [e for e in episodes if outcomes is None or e.outcome is None or e.outcome in outcomes]

    def sinks(self, args: argparse.Namespace, episodes: list[Episode]) -> list[Sink]:
        from robo_reward.data.lerobot import LeRobotSink

        return [LeRobotSink(episodes, mode=args.write, replace_reward=args.replace_reward)]


class Rosbags:
    """One episode per rosbag2 bag: ``--bag PATH --view front=/cam/front/image_raw … --task TEXT``."""

    def add_arguments(self, group: argparse._ArgumentGroup, labeling: bool = True) -> None:
        from robo_reward.data.bags import DEFAULT_REWARD_TOPIC, DEFAULT_SLOP_S

        group.add_argument("--bag", action="append", default=[], type=Path, metavar="PATH",
                           help="a rosbag2 bag (folder, .mcap or .db3; repeat for several bags); name its camera "
                                "topics with --view NAME=TOPIC" + ("" if labeling else "; every bag is a demo"))
        group.add_argument("--topic", dest="view", action=DeprecatedAlias, new="--view", metavar="NAME=TOPIC",
                           help="deprecated: use --view NAME=TOPIC")
        group.add_argument("--slop", type=float, default=DEFAULT_SLOP_S, metavar="SECONDS",
                           help="with --bag: largest header-stamp difference between the images of one set")
        if labeling:
            group.add_argument("--reward-topic", default=DEFAULT_REWARD_TOPIC,
                               help="with --bag: topic of the robo_reward_msgs/msg/Reward messages in the new bags")

    def selected(self, args: argparse.Namespace) -> bool:
        return bool(args.bag)

    def open(self, args: argparse.Namespace, outcomes: Sequence[str] | None = None) -> list[Episode]:
        from robo_reward.data.bags import open_bags

        if not args.view:
            raise UsageError("give the camera topics with --bag: --view NAME=TOPIC (repeat per view)")
        topics = parse_pairs(args.view, "--view", "TOPIC")
        return list(open_bags(args.bag, topics, task_from_args(args, "--bag"), slop_s=args.slop))

    def sinks(self, args: argparse.Namespace, episodes: list[Episode]) -> list[Sink]:
        from robo_reward.data.bags import BagSink

        return [BagSink(episodes, reward_topic=args.reward_topic)]


SOURCES: list[Source] = [VideoFiles(), Manifest(), LeRobotDataset(), Rosbags()]


def add_source_arguments(parser: argparse.ArgumentParser, labeling: bool = True) -> argparse._ArgumentGroup:
    """The input flags of every source (``labeling=False``: without the output options, for fit)."""
    group = parser.add_argument_group("input (choose one source)")
    for source in SOURCES:
        source.add_arguments(group, labeling)
    return group


def chosen_source(args: argparse.Namespace) -> Source:
    chosen = [s for s in SOURCES if s.selected(args)]
    if len(chosen) != 1:
        raise UsageError(
            "choose exactly one input: --view NAME=PATH … --task TEXT, --episodes PATH, --lerobot PATH, "
            "or --bag PATH --view NAME=TOPIC … --task TEXT" + ("" if not chosen else f" (got {len(chosen)})")
        )
    return chosen[0]


def open_episodes(args: argparse.Namespace, outcomes: Sequence[str] | None = None) -> list[Episode]:
    """The chosen source's episodes; ``outcomes``: only manifest entries of these outcomes (fit: success)."""
    return chosen_source(args).open(args, outcomes)


def open_sinks(args: argparse.Namespace, episodes: list[Episode]) -> list[Sink]:
    """Where the chosen source's labels go besides scores.parquet (none for video files)."""
    return chosen_source(args).sinks(args, episodes)
