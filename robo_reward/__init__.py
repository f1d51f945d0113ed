"""robo_reward: rewards for robots from their cameras.

Reward models score synchronised multi-view camera frames and say how far a task has
progressed (the potential Φ); :mod:`robo_reward.shaping` turns that into
policy-invariant RL rewards.

The names below are imported on first use, so ``import robo_reward`` stays light (no
torch) for processes that only move messages.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "robo_reward.errors",
    "DependencyNotInstalled": "robo_reward.errors",
    "InputError": "robo_reward.errors",
    "ModelOutputError": "robo_reward.errors",
    "RoboRewardError": "robo_reward.errors",
    "EpisodeContext": "robo_reward.types",
    "FrameBatch": "robo_reward.types",
    "KeypointSpec": "robo_reward.keypoint_spec",
    "Scores": "robo_reward.types",
    "Task": "robo_reward.types",
    "Scorer": "robo_reward.scoring",
    "PotentialShaper": "robo_reward.shaping",
    "shape_episode": "robo_reward.shaping",
    "shape_potential": "robo_reward.shaping",
    "available_models": "robo_reward.models",
    "load_model": "robo_reward.models",
    "register_model": "robo_reward.models",
    "LearnedRewardModel": "robo_reward.models.base",
    "RewardModel": "robo_reward.models.base",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'robo_reward' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
