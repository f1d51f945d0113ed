"""The one batched interface every reward model implements (LeRobot-style registry).

A model maps a :class:`~robo_reward.types.FrameBatch` and a :class:`~robo_reward.types.Task`
to :class:`~robo_reward.types.Scores`. It keeps no hidden per-episode state: context
(first frame, a reference demo) arrives explicitly as ``reference``, so one model
serves offline labeling and live streams alike. Models produce progress, never RL
rewards; rewards are made by :mod:`robo_reward.shaping`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from robo_reward.errors import ConfigError, InputError
from robo_reward.types import FrameBatch, Scores, Task

CHECKPOINT_FORMAT = "robo_reward.checkpoint/v1"


class RewardModel(ABC):
    """Base class of reward models.

    Subclasses set ``name`` (the registry key) and ``config``, a dataclass instance.
    ``required_views`` lists the views the model cannot score without (empty: any).
    ``wants_reference`` says the model scores against the episode's first frame, which
    callers then pass as ``reference`` (a one-sample batch); the model keeps no state.
    """

    name: ClassVar[str]
    required_views: tuple[str, ...] = ()
    wants_reference: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def _score(self, batch: FrameBatch, task: Task, reference: FrameBatch | None) -> Scores:
        """Score a checked batch; implemented by each model."""

    def score(self, batch: FrameBatch, task: Task, reference: FrameBatch | None = None) -> Scores:
        """Score a batch of B synchronised multi-view samples → Scores of shape (B,).

        Raises InputError if a required view is absent and ModelOutputError (naming the
        frames) if the model produced NaN or inf.
        """
        missing = [v for v in self.required_views if v not in batch.views]
        if missing:
            raise InputError(
                f"{batch.source or 'batch'}: model '{self.name}' needs view(s) {missing}; "
                f"the batch has {batch.view_names}"
            )
        with torch.inference_mode():
            scores = self._score(batch, task, reference)
        return scores.check(batch, self.name)

    @property
    def expected_views(self) -> tuple[str, ...]:
        """The views this model was built or fitted for (a simulator must render them all)."""
        return self.required_views

    def describe(self) -> str:
        """One line naming the model and its configuration (written into outputs)."""
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in asdict(self.config).items())})"


class LearnedRewardModel(RewardModel):
    """A reward model fitted from demonstrations, saved to and loaded from a checkpoint."""

    @abstractmethod
    def fit(self, episodes: Sequence[Any]) -> LearnedRewardModel:
        """Fit from episodes (objects with ``iter_batches`` and ``task``); returns self."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything besides the config needed to rebuild the fitted model."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: Any, state: dict[str, Any]) -> LearnedRewardModel:
        """Rebuild a fitted model from its config and :meth:`state_dict`."""

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically; returns its path."""
        from robo_reward.data.atomic import atomic_path

        path = Path(path)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "config": asdict(self.config),
            "state": self.state_dict(),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LearnedRewardModel:
        payload = read_checkpoint(path)
        if payload["model"] != cls.name:
            raise ConfigError(f"{path}: checkpoint holds a '{payload['model']}' model, not '{cls.name}'")
        return cls.from_state(cls.config_class(**payload["config"]), payload["state"])

    config_class: ClassVar[type]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a robo_reward checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a robo_reward checkpoint")
    return payload


def as_float_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, H, W, 3) → float32 (B, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float() / 255.0
