"""Model options given as text (``--option KEY=VALUE``, a ROS parameter), typed by the
fields of the model's config dataclass.

Text that does not parse, an unknown key and options that do not apply raise
:class:`~robo_reward.errors.UsageError` (exit code 2, as argparse's own type errors); a
value that parses but the model refuses is the config's own ConfigError (exit code 1)."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import yaml

from robo_reward.errors import UsageError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def coerce_option(value: str, annotation: Any, key: str) -> Any:
    """Parse a string into a value of a dataclass field's type; refuse what does not parse."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return tuple(v for v in value.split(",") if v)
    if origin is dict:
        parsed = yaml.safe_load(value)
        if not isinstance(parsed, dict):
            raise UsageError(f"option {key}={value!r}: expected a mapping, e.g. {{a: 1}}")
        return parsed
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return None if value.lower() == "none" else coerce_option(value, inner[0], key)
    if annotation is bool:
        word = value.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise UsageError(f"option {key}={value!r}: expected a boolean ({', '.join(sorted(TRUE_WORDS | FALSE_WORDS))})")
        return word in TRUE_WORDS
    try:
        return annotation(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"option {key}={value!r}: expected {getattr(annotation, '__name__', annotation)}") from exc


def parse_options(config_cls: type, items: Sequence[str] = (), given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``["k=v", …]`` (and already-typed ``given`` values) → config-field keywords, each
    checked against ``config_cls``'s fields and typed by its annotation."""
    hints = typing.get_type_hints(config_cls)
    known = {f.name for f in fields(config_cls)}
    options: dict[str, Any] = {}
    for key, value in (given or {}).items():
        if key not in known:
            raise UsageError(f"option '{key}' does not apply to this model (its options: {sorted(known)})")
        options[key] = value
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"a model option needs KEY=VALUE, got {item!r}")
        if key not in known:
            raise UsageError(f"unknown option '{key}'; this model's options: {sorted(known)}")
        options[key] = coerce_option(value, hints[key], key)
    return options


def load_model_from_text(spec: str, items: Sequence[str] = (), given: Mapping[str, Any] | None = None):
    """Load the model ``spec`` names (registered name or checkpoint) with options given as text."""
    from robo_reward.models import available_models, load_model, model_class

    if spec in available_models():
        return load_model(spec, **parse_options(model_class(spec).config_class, items, given))
    if items or given:
        raise UsageError(f"model options cannot be applied to the checkpoint {spec}")
    return load_model(spec)
