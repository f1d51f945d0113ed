"""Periodic evaluation of the simulator's own success rate, with rollout videos."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.errors import require
from robo_reward.models.base import RewardModel
from robo_reward.rl.video import write_rollout_video
from robo_reward.scoring import Scorer
from robo_reward.shaping import simulator_success
from robo_reward.types import FrameBatch, Task

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
            frames, total, succeeded = run_episode(self.eval_env, self.model, record)
            successes.append(succeeded)
            returns.append(total)
            if record:
                write_rollout(self.out / "videos" / f"eval_{self.num_timesteps:08d}.mp4", frames,
                              self.reward_model, self.task)
        rate = float(np.mean(successes))
        self.logger.record("eval/success_rate", rate)
        self.logger.record("eval/mean_return", float(np.mean(returns)))
        with open(self.out / "eval.csv", "a", newline="") as handle:
            csv.writer(handle).writerow([self.num_timesteps, round(time.perf_counter() - self._started, 2), rate,
                                         float(np.mean(returns))])
        return rate



def run_episode(env: Any, policy: Any, record: bool = False) -> tuple[list[dict[str, np.ndarray]], float, bool]:
    """One deterministic episode of ``policy`` (anything with SB3's ``predict``) on ``env``:
    (its views per step when ``record``, else [], the return, whether the simulator ever
    reported success)."""
    obs, info = env.reset()
    frames, total, succeeded, done = [info["views"]] if record else [], 0.0, False, False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        succeeded |= simulator_success(info) > 0
        done = terminated or truncated
        if record:
            frames.append(info["views"])
    return frames, total, succeeded


def write_rollout(path: Path, frames: list[dict[str, np.ndarray]], model: RewardModel | None, task: Task) -> None:
    """A video of an episode's views side by side with ``model``'s progress curve (flat without one)."""
    tiles = [np.concatenate(list(views.values()), axis=1) for views in frames]
    if model is not None:
        names = list(frames[0])
        batch = FrameBatch(views={n: np.stack([f[n] for f in frames]) for n in names},
                           timestamps_ns=np.arange(len(frames)), source="eval rollout")
        curve = Scorer(model, task).score(batch).progress.tolist()
    else:
        curve = [0.0] * len(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rollout_video(path, tiles, curve)
