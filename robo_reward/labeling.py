"""Offline labeling: episodes → model scores → rewards → parquet + report.

One implementation of the flow source → batch → RewardModel → Scores → shaper → sink
(DESIGN.md §1); the sources are :class:`~robo_reward.data.episodes.Episode` objects, so
video files, LeRobot datasets and bags all go through here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from robo_reward.data.atomic import atomic_dir
from robo_reward.data.episodes import Episode, Sampling
from robo_reward.errors import ConfigError, InputError
from robo_reward.models.base import RewardModel
from robo_reward.shaping import REWARD_MODES, TRANSFORMS, check_gamma, shape_episode
from robo_reward.types import Scores

SCORES_FILE = "scores.parquet"
RUN_FILE = "run.json"
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
    """

    batch_size: int = 16
    stride: int = 1
    fps: float | None = None
    gamma: float = 0.99
    reward: str = "shaped"
    terminal: str = "truncated"
    thumbnails: int = 6

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
    """The labels of one episode; arrays of shape (T,) over scored samples."""

    episode: str
    task: str
    outcome: str | None
    frame_index: np.ndarray
    timestamps_ns: np.ndarray
    scores: Scores
    reward: np.ndarray
    thumbnails: list[tuple[int, np.ndarray]] = field(default_factory=list)

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
        return pd.DataFrame(columns)


def compute_rewards(scores: Scores, config: LabelConfig, outcome: str | None) -> np.ndarray:
    """Rewards (T,) of an episode's scores under ``config.reward`` (see robo_reward.shaping)."""
    if config.reward == "shaped":
        terminated = config.terminal == "outcome" and outcome == "success"
        return shape_episode(scores.progress, config.gamma, terminated=terminated)
    return TRANSFORMS[config.reward](scores.progress, scores.success)


def label_episode(
    model: RewardModel, episode: Episode, config: LabelConfig, progress_bar: tqdm | None = None
) -> EpisodeLabels:
    """Score every sampled frame of ``episode`` in micro-batches and derive its rewards."""
    total = len(episode.timestamps(config.sampling))
    if total == 0:
        raise InputError(f"episode '{episode.name}': no frames to score")
    keep = set(np.linspace(0, total - 1, min(config.thumbnails, total)).round().astype(int).tolist())
    parts, stamps, indices, thumbs = [], [], [], []
    seen = 0
    for batch in episode.iter_batches(config.batch_size, config.sampling):
        parts.append(model.score(batch, episode.task))
        stamps.append(batch.timestamps_ns)
        indices.append(batch.frame_index)
        first_view = batch.views[batch.view_names[0]]
        thumbs += [(int(batch.frame_index[i]), first_view[i]) for i in range(len(batch)) if seen + i in keep]
        seen += len(batch)
        if progress_bar is not None:
            progress_bar.update(len(batch))
    scores = Scores.concat(parts)
    return EpisodeLabels(
        episode=episode.name,
        task=episode.task.instruction,
        outcome=episode.outcome,
        frame_index=np.concatenate(indices),
        timestamps_ns=np.concatenate(stamps),
        scores=scores,
        reward=compute_rewards(scores, config, episode.outcome),
        thumbnails=thumbs,
    )


def label_episodes(
    model: RewardModel,
    episodes: Sequence[Episode],
    config: LabelConfig,
    out: str | Path,
    overwrite: bool = False,
    report: bool = True,
) -> Path:
    """Label ``episodes`` and write ``<out>/scores.parquet``, ``metrics.json``, ``run.json``
    and (``report``) ``report.html`` with its plots. The folder appears whole or not at all.
    """
    from robo_reward.evaluation import compute_metrics, write_metrics

    if not episodes:
        raise InputError("nothing to label: no episodes")
    names = [e.name for e in episodes]
    if len(set(names)) != len(names):
        raise InputError(f"episode names must be unique, got duplicates in {names}")
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        total = sum(len(e.timestamps(config.sampling)) for e in episodes)
        results = []
        with tqdm(total=total, desc="label", unit="frame") as bar:
            for episode in episodes:
                bar.set_postfix_str(episode.name)
                results.append(label_episode(model, episode, config, bar))
        table = pd.concat([r.to_frame() for r in results], ignore_index=True)
        table.to_parquet(tmp / SCORES_FILE, index=False)
        metrics = compute_metrics(table)
        write_metrics(metrics, tmp)
        run = {"model": model.describe(), "config": asdict(config), "episodes": names}
        (tmp / RUN_FILE).write_text(json.dumps(run, indent=2))
        if report:
            from robo_reward.data.report import write_report

            write_report(tmp, results, metrics, title=f"robo_reward labels — {model.describe()}")
    return out
