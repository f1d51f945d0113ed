"""The one batched interface every reward model implements (LeRobot-style registry).

A model maps a :class:`~robo_reward.types.FrameBatch` and a :class:`~robo_reward.types.Task`
to :class:`~robo_reward.types.Scores`. It keeps no hidden per-episode state: a model
that needs episode context (the episode's first set) declares ``uses_context`` and
receives an :class:`~robo_reward.types.EpisodeContext` in the scoring call itself, and
refuses to score without one, so one model serves offline labeling, simulation and
live streams alike and no caller can leave the context out by mistake
(:class:`robo_reward.scoring.Scorer` carries it). Models produce progress, never RL
rewards; rewards are made by :mod:`robo_reward.shaping`.
"""

from __future__ import annotations

import io
import pickle
import re
import warnings
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from robo_reward.errors import ConfigError, InputError
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

CHECKPOINT_FORMAT = "robo_reward.checkpoint/v1"


class RewardModel(ABC):
    """Base class of reward models.

    Subclasses set ``name`` (the registry key) and ``config``, a dataclass instance.
    ``required_views`` lists the views the model cannot score without (empty: any).
    ``uses_context`` says the model scores each frame against its episode's first set
    (an :class:`~robo_reward.types.EpisodeContext`), which :meth:`score` then requires.
    ``sequential`` says a frame's score also depends on the episode's earlier frames (kept
    in the context's cache): an episode's samples must then reach the model in playing
    order, each once.
    """

    name: ClassVar[str]
    required_views: tuple[str, ...] = ()
    uses_context: ClassVar[bool] = False
    sequential: bool = False

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        """Score a checked batch; ``contexts`` holds each sample's context, B of them (None for
        context-free models)."""

    def score(
        self,
        batch: FrameBatch,
        task: Task,
        context: EpisodeContext | Sequence[EpisodeContext] | None = None,
    ) -> Scores:
        """Score a batch of B synchronised multi-view samples → Scores of shape (B,).

        ``context``: the episode context of every sample, or one per sample (samples of
        several episodes in one batch); required by models that ``uses_context``,
        ignored by the others.

        Raises ConfigError if a model that uses context gets none, InputError if a
        required view is absent, and ModelOutputError (naming the frames) if the model
        produced NaN or inf.
        """
        missing = [v for v in self.required_views if v not in batch.views]
        if missing:
            raise InputError(
                f"{batch.source or 'batch'}: model '{self.name}' needs view(s) {missing}; "
                f"the batch has {batch.view_names}"
            )
        contexts = self._contexts(batch, context)
        with torch.inference_mode():
            scores = self._score(batch, task, contexts)
        return scores.check(batch, self.name)

    def _contexts(
        self, batch: FrameBatch, context: EpisodeContext | Sequence[EpisodeContext] | None
    ) -> list[EpisodeContext] | None:
        if not self.uses_context:
            return None
        if context is None:
            raise ConfigError(
                f"model '{self.name}' scores each frame against its episode's first set: pass an EpisodeContext "
                "(robo_reward.scoring.Scorer carries one per episode)"
            )
        contexts = [context] if isinstance(context, EpisodeContext) else list(context)
        if len(contexts) not in (1, len(batch)):
            raise InputError(f"{batch.source or 'batch'}: {len(contexts)} contexts for {len(batch)} samples")
        return contexts * len(batch) if len(contexts) == 1 else contexts

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
        """Write a checkpoint atomically; returns its path.

        The payload must hold only tensors and plain containers/primitives (what
        ``torch.load(weights_only=True)`` accepts); a state that is not is refused before
        anything is written, so every checkpoint saved here can be loaded safely.
        """
        from robo_reward.atomic import atomic_path

        path = Path(path)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "config": asdict(self.config),
            "state": self.state_dict(),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        try:
            torch.load(io.BytesIO(buffer.getvalue()), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise ConfigError(
                f"cannot save the '{self.name}' model to {path}: its state holds objects other than tensors "
                f"and plain containers{_refused_globals(exc)}"
            ) from exc
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> LearnedRewardModel:
        payload = read_checkpoint(path)
        if payload["model"] != cls.name:
            raise ConfigError(f"{path}: checkpoint holds a '{payload['model']}' model, not '{cls.name}'")
        return cls.from_state(cls.config_class(**payload["config"]), payload["state"])

    config_class: ClassVar[type]


def _refused_globals(exc: BaseException) -> str:
    """' (it needs numpy.x, …)' from a weights_only refusal, or '' when torch names none."""
    names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(exc))))
    return f" (it needs {', '.join(names)})" if names else ""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a robo_reward checkpoint file.

    Only tensors and plain containers/primitives are loaded (``weights_only=True``): a
    file whose pickle would build any other object, and so could run code, is refused
    with an InputError before anything in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol only warns before the refusal
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise InputError(f"{path}: not a readable checkpoint ({exc})") from exc
        # weights_only refuses both a pickle of other objects and bytes that are no pickle at
        # all; a torch zip archive or a pickle stream (PROTO opcode first) is the former.
        with path.open("rb") as f:
            pickled = f.read(1) == b"\x80" or zipfile.is_zipfile(f)
        if not (pickled or _refused_globals(exc)):
            raise InputError(f"{path}: not a readable checkpoint (neither a torch archive nor a pickle)") from exc
        raise InputError(
            f"{path}: not a safe robo_reward checkpoint: it holds objects other than tensors and plain "
            f"containers{_refused_globals(exc)}, and such a file can run code when loaded; refused"
        ) from exc
    except Exception as exc:  # torch raises many types for a corrupt file
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a robo_reward checkpoint")
    return payload


def as_float_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, H, W, 3) → float32 (B, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float() / 255.0
