"""Periodic evaluation of the simulator's own success rate, with rollout videos."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.errors import require
from robo_reward.models.base import RewardModel
from robo_reward.rl.video import write_rollout_video
from robo_reward.scoring import Scorer, stack_views
from robo_reward.shaping import simulator_success
from robo_reward.types import EPISODE_TASK, Task

require("stable_baselines3", "sim", "RL training")
from stable_baselines3.common.callbacks import BaseCallback


class SuccessEvalCallback(BaseCallback):
    """Every ``every`` env steps: run ``episodes`` deterministic episodes on ``eval_env``,
    log the simulator's success rate (an episode succeeds if success is ever reported)
    to tensorboard and ``out/eval.csv``, and write a video of the first episode with
    the reward model's progress curve beside the views (``out/videos``).
    """

    def __init__(self, eval_env, model: RewardModel | None, task: Task, every: int, episodes: int, out: Path,
                 record_video: bool = True) -> None:
        super().__init__()
        self.eval_env, self.reward_model, self.task = eval_env, model, task
        self.every, self.episodes, self.out, self.record_video = every, episodes, Path(out), record_video
        self._next = 0
        self._last_eval = -1
        self._started = time.perf_counter()

    def _on_training_start(self) -> None:
        self._next = self.num_timesteps + self.every
        log = self.out / "eval.csv"
        if not log.exists():
            log.write_text("steps,wall_clock_s,success_rate,mean_return\n")

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self.every
            self.evaluate()
        return True

    def _on_training_end(self) -> None:
        if self._last_eval != self.num_timesteps:
            self.evaluate()

    def evaluate(self) -> float:
        self._last_eval = self.num_timesteps
        successes, returns = [], []
        for episode in range(self.episodes):
            record = episode == 0 and self.record_video
            result = run_episode(self.eval_env, self.model, record)
            successes.append(result.succeeded)
            returns.append(result.total)
            if record:
                write_rollout(self.out / "videos" / f"eval_{self.num_timesteps:08d}.mp4", result,
                              self.reward_model, self.task)
        rate = float(np.mean(successes))
        self.logger.record("eval/success_rate", rate)
        self.logger.record("eval/mean_return", float(np.mean(returns)))
        with open(self.out / "eval.csv", "a", newline="") as handle:
            csv.writer(handle).writerow([self.num_timesteps, round(time.perf_counter() - self._started, 2), rate,
                                         float(np.mean(returns))])
        return rate



@dataclass
class Episode:
    """One evaluation episode: its return, whether it succeeded and, when recorded, what a
    reward model scores of each observation (views, the observation as robot state, depth
    where rendered) and the episode's own task where its reset gave one."""

    total: float
    succeeded: bool
    views: list[dict[str, np.ndarray]] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)
    depths: list[dict[str, np.ndarray]] | None = None
    task: Task | None = None


def run_episode(env: Any, policy: Any, record: bool = False) -> Episode:
    """One deterministic episode of ``policy`` (anything with SB3's ``predict``) on ``env``;
    its observations recorded when ``record``."""
    obs, info = env.reset()
    episode = Episode(0.0, False, task=info.get(EPISODE_TASK))
    done = False
    while True:
        if record:
            episode.views.append(info["views"])
            episode.states.append(obs)
            if "depth" in info:
                episode.depths = episode.depths if episode.depths is not None else []
                episode.depths.append(info["depth"])
        if done:
            return episode
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        episode.total += float(reward)
        episode.succeeded |= simulator_success(info) > 0
        done = terminated or truncated


def write_rollout(path: Path, episode: Episode, model: RewardModel | None, task: Task) -> None:
    """A video of a recorded episode's views side by side with ``model``'s progress curve
    (flat without one), scored as online: with its states, depth and own task."""
    tiles = [np.concatenate(list(views.values()), axis=1) for views in episode.views]
    if model is not None:
        count = len(episode.views)
        batch = stack_views(episode.views, np.arange(count), "eval rollout", states=episode.states,
                            depths=episode.depths)
        starts = np.arange(count) == 0
        curve = Scorer(model, task).score(batch, starts=starts, tasks=[episode.task] * count).progress.tolist()
    else:
        curve = [0.0] * len(tiles)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rollout_video(path, tiles, curve)
