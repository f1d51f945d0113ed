"""Reward models, registered by name and loaded with one call.

>>> model = load_model("clip", arch="ViT-B-32", pretrained="laion2b_s34b_b79k")
>>> model = load_model("models/drawer.pt")          # a fitted checkpoint
>>> scores = model.score(batch, Task("open the drawer"))
"""

from __future__ import annotations

import importlib
from dataclasses import fields
from pathlib import Path
from typing import Any

from robo_reward.errors import ConfigError
from robo_reward.models.base import LearnedRewardModel, RewardModel, read_checkpoint

# name → "module:Class"; modules import lazily so that optional dependencies stay optional.
_BUILTIN: dict[str, str] = {
    "clip": "robo_reward.models.clip:ClipRewardModel",
    "lerobot-classifier": "robo_reward.models.lerobot_classifier:LeRobotClassifierRewardModel",
    "perceptual": "robo_reward.models.perceptual:PerceptualRewardModel",
    "progress": "robo_reward.models.progress:ProgressRewardModel",
    "keypoint": "robo_reward.models.keypoints.model:KeypointRewardModel",
    "vlm": "robo_reward.models.vlm.model:VlmRewardModel",
}
_REGISTERED: dict[str, type[RewardModel]] = {}


def register_model(name: str):
    """Class decorator: make a RewardModel loadable as ``load_model(name, ...)``."""

    def decorate(cls: type[RewardModel]) -> type[RewardModel]:
        cls.name = name
        _REGISTERED[name] = cls
        return cls

    return decorate


def available_models() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def model_class(name: str) -> type[RewardModel]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise ConfigError(f"unknown reward model '{name}'; available: {', '.join(available_models())}")
    module, cls_name = _BUILTIN[name].split(":")
    return getattr(importlib.import_module(module), cls_name)


def load_model(spec: str | Path, **options: Any) -> RewardModel:
    """Build a model from a registered name and config options, or load a checkpoint path.

    Options are the fields of the model's config dataclass; unknown options are refused.
    A checkpoint path loads the fitted model it holds (options are then not allowed).
    """
    spec_str = str(spec)
    if spec_str in available_models():
        cls = model_class(spec_str)
        config_cls = cls.config_class
        known = {f.name for f in fields(config_cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"model '{spec_str}' has no option(s) {unknown}; options: {sorted(known)}")
        return cls(config_cls(**options))
    path = Path(spec_str)
    if path.suffix in {".pt", ".pth", ".ckpt"} or path.exists():
        payload = read_checkpoint(path)
        if options:
            raise ConfigError(f"options {sorted(options)} cannot be applied to checkpoint {path}")
        cls = model_class(payload["model"])
        if not issubclass(cls, LearnedRewardModel):
            raise ConfigError(f"{path}: model '{payload['model']}' is not loadable from a checkpoint")
        return cls.load(path)
    raise ConfigError(
        f"'{spec_str}' is neither a registered model ({', '.join(available_models())}) nor a checkpoint file"
    )


__all__ = ["LearnedRewardModel", "RewardModel", "available_models", "load_model", "model_class", "register_model"]
