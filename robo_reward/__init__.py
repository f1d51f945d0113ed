"""robo_reward: rewards for robots from their cameras.

Reward models score synchronised multi-view camera frames and say how far a task has
progressed (the potential Φ); :mod:`robo_reward.shaping` turns that into
policy-invariant RL rewards.
"""

from robo_reward.errors import (
    ConfigError,
    DependencyNotInstalled,
    InputError,
    ModelOutputError,
    RoboRewardError,
)
from robo_reward.models import available_models, load_model, register_model
from robo_reward.models.base import LearnedRewardModel, RewardModel
from robo_reward.shaping import PotentialShaper, shape_episode, shape_potential
from robo_reward.types import FrameBatch, Keypoint, Scores, Task

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DependencyNotInstalled",
    "FrameBatch",
    "InputError",
    "Keypoint",
    "LearnedRewardModel",
    "ModelOutputError",
    "PotentialShaper",
    "RewardModel",
    "RoboRewardError",
    "Scores",
    "Task",
    "available_models",
    "load_model",
    "register_model",
    "shape_episode",
    "shape_potential",
]
