"""Argument helpers shared by subcommands: model selection and typed ``--option`` values."""

from __future__ import annotations

import argparse
from typing import Any

from robo_reward.errors import UsageError
from robo_reward.models.options import load_model_from_text, parse_options


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples in epilogs as written and shows defaults."""


def add_subcommand(subparsers, name: str, summary: str, examples: str, run) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name, help=summary, description=summary, epilog=f"examples:\n{examples}", formatter_class=HelpFormatter
    )
    parser.set_defaults(run=run)
    return parser


def add_model_arguments(parser: argparse.ArgumentParser, default: str | None) -> None:
    group = parser.add_argument_group("reward model")
    group.add_argument("--model", default=default,
                       help="registered model name (clip, perceptual, …) or a checkpoint path"
                       + ("" if default else " (required)"))
    group.add_argument("--arch", help="clip: open_clip architecture, e.g. ViT-B-32")
    group.add_argument("--pretrained",
                       help="clip: open_clip pretrained tag, a local checkpoint path, or 'none' for random weights")
    group.add_argument("--alpha", type=float, help="clip: goal–baseline projection strength in [0, 1]")
    group.add_argument("--device", help="auto, cpu, cuda, cuda:0 …")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="any other field of the model's config dataclass (repeatable)")


def model_options(args: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """Collect ``--arch/--pretrained/--alpha/--device/--option`` into config-field keywords."""
    given = {key: getattr(args, key) for key in ("arch", "pretrained", "alpha", "device")
             if getattr(args, key, None) is not None}
    return parse_options(config_cls, args.option, given)


def model_from_args(args: argparse.Namespace):
    """Load the model that ``--model`` and its options name."""
    if args.model is None:
        raise UsageError("give --model (a registered name or a checkpoint path)")
    given = {key: getattr(args, key) for key in ("arch", "pretrained", "alpha", "device")
             if getattr(args, key, None) is not None}
    return load_model_from_text(args.model, args.option, given)
