"""Argument helpers shared by subcommands: model selection and typed ``--option`` values."""

from __future__ import annotations

import argparse
import typing
from dataclasses import fields
from typing import Any

import yaml

from robo_reward.errors import ConfigError


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


def coerce_option(value: str, annotation: Any, key: str) -> Any:
    """Parse a command-line string into a value of a dataclass field's type."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return tuple(v for v in value.split(",") if v)
    if origin is dict:
        return yaml.safe_load(value)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return None if value.lower() == "none" else coerce_option(value, inner[0], key)
    try:
        if annotation is bool:
            return value.lower() in {"1", "true", "yes", "on"}
        return annotation(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"option {key}={value!r}: expected {getattr(annotation, '__name__', annotation)}") from exc


def model_options(args: argparse.Namespace, config_cls: type) -> dict[str, Any]:
    """Collect ``--arch/--pretrained/--alpha/--device/--option`` into config-field keywords."""
    hints = typing.get_type_hints(config_cls)
    known = {f.name for f in fields(config_cls)}
    options: dict[str, Any] = {}
    for key in ("arch", "pretrained", "alpha", "device"):
        value = getattr(args, key, None)
        if value is not None:
            if key not in known:
                raise ConfigError(f"--{key} does not apply to this model (its options: {sorted(known)})")
            options[key] = value
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--option needs KEY=VALUE, got {item!r}")
        if key not in known:
            raise ConfigError(f"unknown option '{key}'; this model's options: {sorted(known)}")
        options[key] = coerce_option(value, hints[key], key)
    return options


def model_from_args(args: argparse.Namespace):
    """Load the model that ``--model`` and its options name."""
    from robo_reward.models import available_models, load_model, model_class

    if args.model is None:
        raise ConfigError("give --model (a registered name or a checkpoint path)")
    if args.model in available_models():
        return load_model(args.model, **model_options(args, model_class(args.model).config_class))
    if any(getattr(args, k, None) is not None for k in ("arch", "pretrained", "alpha", "device")) or args.option:
        raise ConfigError(f"model options cannot be applied to the checkpoint {args.model}")
    return load_model(args.model)
