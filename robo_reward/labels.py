"""One episode → its labels: scores through the one Scorer, rewards by the one shaping.

:func:`label_episode` is what every engine runs per episode (the local engine in this
process, the Ray engine split across its decode and scoring stages, both ending in
:func:`assemble_labels`); :class:`EpisodeLabels` is what sinks write and
:class:`LabelConfig` how a run labels. The run itself — engines, resumable work folder,
outputs — is :func:`robo_reward.labeling.label_episodes`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from robo_reward.errors import ConfigError, InputError
from robo_reward.scoring import Scorer
from robo_reward.shaping import REWARD_MODES, check_gamma, shape_episode, transform_episode
from robo_reward.types import Episode, EpisodeContext, FrameBatch, Sampling, Scores, Task

if TYPE_CHECKING:
    from robo_reward.models.base import RewardModel

TERMINAL_MODES = ("truncated", "outcome")


@dataclass
class LabelConfig:
    """How to label.

    Attributes:
        batch_size: synchronised samples per model call.
        stride: score every stride-th frame.
        fps: resample the reference view to this rate before striding (None: native).
        gamma: discount of the potential shaping; must equal the learner's.
        reward: ``shaped`` (policy-invariant) or a transform in robo_reward.shaping.TRANSFORMS.
        terminal: how an episode's end is treated by the shaping: ``truncated`` (the
            recording stopped; Φ kept) or ``outcome`` (terminated when the episode's
            outcome is success, Φ(end) = 0).
        thumbnails: frames kept per episode for the report.
        score_reversed: also score each episode played backwards, for the reversed-VOC
            metric: a second pass over the frames with the episode's last set as the
            reversed episode's first (what a model that uses context is given); without
            it, reversed VOC is reported as not measured.
    """

    batch_size: int = 32
    stride: int = 1
    fps: float | None = None
    gamma: float = 0.99
    reward: str = "shaped"
    terminal: str = "truncated"
    thumbnails: int = 6
    score_reversed: bool = False

    def __post_init__(self) -> None:
        check_gamma(self.gamma)
        if self.reward not in REWARD_MODES:
            raise ConfigError(f"unknown reward '{self.reward}'; choose from {', '.join(REWARD_MODES)}")
        if self.terminal not in TERMINAL_MODES:
            raise ConfigError(f"unknown terminal mode '{self.terminal}'; choose from {', '.join(TERMINAL_MODES)}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def sampling(self) -> Sampling:
        return Sampling(stride=self.stride, fps=self.fps)


@dataclass
class EpisodeLabels:
    """The labels of one episode; arrays of shape (T,) over scored samples.

    ``terminated`` says how the shaping treated the episode's end (True: the task
    ended, Φ(end) = 0; False: the recording was truncated).
    """

    episode: str
    task: str
    outcome: str | None
    frame_index: np.ndarray
    timestamps_ns: np.ndarray
    scores: Scores
    reward: np.ndarray
    terminated: bool = False
    thumbnails: list[tuple[int, np.ndarray]] = field(default_factory=list)
    progress_reversed: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        columns = {
            "episode": self.episode,
            "frame_index": self.frame_index,
            "timestamp_ns": self.timestamps_ns,
            "timestamp_s": self.timestamps_ns / 1e9,
            "progress": self.scores.progress,
            "success": self.scores.success,
            "uncertainty": self.scores.uncertainty,
            "reward": self.reward,
            "task": self.task,
            "outcome": self.outcome,
        }
        columns |= {f"progress.{view}": values for view, values in self.scores.per_view.items()}
        if self.progress_reversed is not None:
            columns["progress_reversed"] = self.progress_reversed
        return pd.DataFrame(columns)


class Sink(Protocol):
    """Writes a run's labels somewhere besides scores.parquet (a new dataset, a new bag…)."""

    def check(self, config: LabelConfig) -> None:
        """Refuse, before any labeling, a configuration this sink cannot write."""
        ...

    def write(self, results: Sequence[EpisodeLabels], folder: Path, run: dict[str, Any]) -> list[Path]:
        """Write into ``folder`` (the output folder while it is being assembled); return what was written.

        ``run`` describes the run: ``model`` (its description) and ``config`` (LabelConfig as a dict).
        """
        ...


def is_terminated(config: LabelConfig, outcome: str | None) -> bool:
    """Whether the shaping treats an episode's end as a termination (else a truncation)."""
    return config.terminal == "outcome" and outcome == "success"


def compute_rewards(scores: Scores, config: LabelConfig, outcome: str | None, frame_index: np.ndarray) -> np.ndarray:
    """Rewards (T,) of an episode's scores under ``config.reward`` (see robo_reward.shaping).

    Shaped rewards discount each transition by γ^(recording frames it spans), so a
    strided or resampled labeling keeps the shaping policy-invariant per frame."""
    if config.reward == "shaped":
        return shape_episode(scores.progress, config.gamma, terminated=is_terminated(config, outcome),
                             frame_index=frame_index)
    return transform_episode(config.reward, scores.progress, scores.success)


def thumbnail_positions(total: int, count: int) -> set[int]:
    """Positions (0 … total−1) of the ``count`` samples kept as report thumbnails, evenly spread."""
    if total == 0 or count == 0:
        return set()
    return set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())


def pick_thumbnails(batch: FrameBatch, first_position: int, keep: set[int]) -> list[tuple[int, np.ndarray]]:
    """(frame_index, first view's image) of the batch samples whose episode position is in ``keep``
    (copies: a thumbnail must not keep its whole batch in memory)."""
    images = batch.views[batch.view_names[0]]
    return [(int(batch.frame_index[i]), images[i].copy()) for i in range(len(batch)) if first_position + i in keep]


def assemble_labels(
    episode: Episode,
    config: LabelConfig,
    scores: Sequence[Scores],
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    thumbnails: list[tuple[int, np.ndarray]],
) -> EpisodeLabels:
    """An episode's labels from its per-batch scores and (timestamps_ns, frame_index) in batch order."""
    if not scores:
        raise InputError(f"episode '{episode.name}': no frames to score")
    merged = Scores.concat(scores)
    frame_index = np.concatenate([index for _, index in batches])
    return EpisodeLabels(
        episode=episode.name,
        task=episode.task.instruction,
        outcome=episode.outcome,
        frame_index=frame_index,
        timestamps_ns=np.concatenate([stamps for stamps, _ in batches]),
        scores=merged,
        reward=compute_rewards(merged, config, episode.outcome, frame_index),
        terminated=is_terminated(config, episode.outcome),
        thumbnails=thumbnails,
    )


BatchSource = Callable[[int], Iterable[FrameBatch]]
"""Pass number (0: forward; 1: the second pass of the reversed episode) → the episode's
micro-batches; by default ``episode.iter_batches`` (the local engine decodes in a
child process instead, see :mod:`robo_reward.engine.decode_worker`)."""


def label_episode(
    model: RewardModel,
    episode: Episode,
    config: LabelConfig,
    progress_bar: tqdm | None = None,
    batches: BatchSource | None = None,
) -> EpisodeLabels:
    """Score every sampled frame of ``episode`` through one :class:`~robo_reward.scoring.Scorer`
    (the episode's first set is its context) and derive its rewards; with
    ``config.score_reversed`` also score it played backwards."""
    if batches is None:
        def batches(_pass: int) -> Iterable[FrameBatch]:
            return episode.iter_batches(config.batch_size, config.sampling)
    total = len(episode.timestamps(config.sampling))
    if total == 0:
        raise InputError(f"episode '{episode.name}': no frames to score")
    keep = thumbnail_positions(total, config.thumbnails)
    scorer = Scorer(model, episode.task, config.batch_size)
    scores, stamps, thumbs = [], [], []
    seen = 0
    last: FrameBatch | None = None
    for batch in batches(0):
        scores.append(scorer.score(batch))
        stamps.append((batch.timestamps_ns, batch.frame_index))
        thumbs += pick_thumbnails(batch, seen, keep)
        last = batch
        seen += len(batch)
        if progress_bar is not None:
            progress_bar.update(len(batch))
    labels = assemble_labels(episode, config, scores, stamps, thumbs)
    if config.score_reversed and last is not None:
        labels.progress_reversed = score_backwards(model, episode.task, config, EpisodeContext.starting_with(last, -1),
                                                   batches(1))
    return labels


def score_backwards(model: RewardModel, task: Task, config: LabelConfig, last: EpisodeContext,
                    batches: Iterable[FrameBatch]) -> np.ndarray:
    """Progress (T,) of each sampled frame, in forward order, when the episode is played
    backwards: a second pass over its frames (``batches``) with its last set as the
    reversed episode's first. A model that keeps no state between frames scores them in
    any order given that context; a ``sequential`` one is given the frames last to first
    (the episode's batches are held in memory for that)."""
    scorer = Scorer(model, task, config.batch_size)
    scorer.begin(context=last)
    if not model.sequential:
        return np.concatenate([scorer.score(batch).progress for batch in batches])
    backwards = [batch.select(np.arange(len(batch))[::-1]) for batch in reversed(list(batches))]
    return np.concatenate([scorer.score(batch).progress for batch in backwards])[::-1]
