"""A camera reward model in the loop of a stable-baselines3 VecEnv.

Each step, the views of all N envs' next observations — plus the first observation of
every env that auto-reset — are scored in ONE :class:`~robo_reward.scoring.Scorer` call,
one episode stream per env: each env's episode context is its episode's first
observation, exactly as in offline labeling and the live node. Rewards are then made
per env stream with ``terminated`` and ``truncated`` kept apart (SB3 reports truncation
as ``info["TimeLimit.truncated"]``): Φ(s') is zeroed only on true termination, and the
new episode's Φ(s0) starts a fresh stream, so no reward is shaped across an auto-reset.

With ``relabel=True`` nothing is scored during the rollout: views are kept, the learner
receives the task reward, and :meth:`VecRewardModel.relabel` scores the whole rollout in
large batches afterwards (see :class:`robo_reward.rl.relabel.RelabelCallback`).

Monitoring: wrap this VecEnv in SB3's ``VecMonitor`` (outside it, as
:func:`robo_reward.rl.train.train` does), never the envs inside it in ``Monitor``: an
episode's logged return (``rollout/ep_rew_mean``) is then the return of the rewards the
learner receives, not the simulator's own reward. (With ``relabel=True`` it is the
in-loop task reward; the relabeled rewards go to the replay buffer only.)

The reward computation per step is :class:`robo_reward.shaping.OnlineRewards`, shared
with the plain gymnasium wrapper :class:`robo_reward.envs.reward_wrapper.RewardModelWrapper`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError, require
from robo_reward.models.base import RewardModel
from robo_reward.scoring import Scorer, check_views, stack_views
from robo_reward.shaping import REWARD_MODES, SIMULATOR_REWARDS, OnlineRewards, check_gamma, simulator_success
from robo_reward.types import EPISODE_TASK, Scores, Task

require("stable_baselines3", "sim", "RL training")
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

REWARDS = (*REWARD_MODES, *SIMULATOR_REWARDS)
"""shaped: sparse success + γΦ(s')(1 − terminated) − Φ(s) (policy-invariant);
a transform of robo_reward.shaping.TRANSFORMS (e.g. progress: Φ(s') alone, VLM-RM; these
change the optimal policy); sparse: the simulator's success flag (1.0/0.0), no model;
dense: the simulator's own hand-designed reward, no model."""

__all__ = ["REWARDS", "VecRewardModel"]


@dataclass
class _Sample:
    """What the model scores of one observation: its views, the env's state, its depth (if
    rendered) and, for an episode's first, the episode's own task (if its reset gave one)."""

    views: dict[str, np.ndarray]
    state: Any
    depth: dict[str, np.ndarray] | None
    task: Task | None = None


@dataclass
class _PendingStep:
    next_samples: list[_Sample]
    reset_samples: dict[int, _Sample]
    task_reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


class VecRewardModel(VecEnvWrapper):
    """Replace a camera VecEnv's reward by a reward model's (see module docstring).

    The wrapped envs must put their views in ``info["views"]`` (use
    :class:`robo_reward.rl.views.ViewsToInfo`; depth, where rendered, in ``info["depth"]``).
    Each sample carries its env's observation as the robot state, and an episode whose reset
    ``info["task"]`` holds a :class:`~robo_reward.types.Task` (e.g.
    :class:`robo_reward.envs.keypoints.GroundTruthKeypoints`) is scored with it.
    ``info["progress"]`` and ``info["success_probability"]`` carry the model's output; the
    simulator's own success flag stays in ``info``.

    Args:
        venv: N camera envs.
        model: any registered reward model; it must expect only views the envs render.
        task: what to reward.
        gamma: discount of the shaping; must equal the learner's (checked at training start).
        reward: one of :data:`REWARDS`.
        relabel: defer scoring to :meth:`relabel` (off-policy learners only).
        batch_size: most samples per model call.
        rendered_views: the views the envs render (checked against the model's).
    """

    def __init__(
        self,
        venv: VecEnv,
        model: RewardModel | None,
        task: Task,
        gamma: float,
        reward: str = "shaped",
        relabel: bool = False,
        batch_size: int = 256,
        rendered_views: tuple[str, ...] = (),
    ) -> None:
        super().__init__(venv)
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward '{reward}'; choose from {', '.join(REWARDS)}")
        self.uses_model = reward in REWARD_MODES
        if self.uses_model and model is None:
            raise ConfigError(f"reward '{reward}' needs a reward model")
        if self.uses_model and rendered_views:
            check_views(model, rendered_views)
        if relabel and reward != "shaped":
            raise ConfigError("relabel=True only applies to reward='shaped'")
        check_gamma(gamma)
        self.model, self.task, self.reward = model, task, reward
        self.relabel_enabled = relabel
        self.scorer = Scorer(model, task, batch_size, self.num_envs) if self.uses_model else None
        # the one step-by-step reward computation (shared with envs.reward_wrapper.RewardModelWrapper)
        self.rewards = OnlineRewards(reward, gamma, self.num_envs) if self.uses_model else None
        self._pending: list[_PendingStep] = []
        self._step_count = 0

    def check_learner(self, learner_gamma: float) -> None:
        """Refuse a learner whose γ differs from the shaping's."""
        if self.uses_model:
            self.rewards.check_learner(learner_gamma)

    def _score(self, samples: list[_Sample], streams: np.ndarray, starts: np.ndarray) -> Scores:
        depths = None if samples[0].depth is None else [sample.depth for sample in samples]
        batch = stack_views([sample.views for sample in samples], np.full(len(samples), self._step_count),
                            source=f"env step {self._step_count}", states=[sample.state for sample in samples],
                            depths=depths)
        return self.scorer.score(batch, streams, starts, [sample.task for sample in samples])

    def _reset_sample(self, env: int, obs: Any) -> _Sample:
        info = self.venv.reset_infos[env]
        return _Sample(info["views"], _env_obs(obs, env), info.get("depth"), info.get(EPISODE_TASK))

    def reset(self) -> Any:
        obs = self.venv.reset()
        if self.uses_model:
            samples = [self._reset_sample(i, obs) for i in range(self.num_envs)]
            streams = np.arange(self.num_envs)
            self.rewards.reset(self._score(samples, streams, np.ones(self.num_envs, dtype=bool)).progress)
        self._pending = []
        return obs

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict]]:
        obs, env_reward, dones, infos = self.venv.step_wait()
        self._step_count += 1
        truncated = np.array([bool(info.get("TimeLimit.truncated", False)) for info in infos])
        terminated = dones & ~truncated
        success = np.array([simulator_success(info) for info in infos])
        if self.reward == "dense":
            return obs, env_reward, dones, infos
        if self.reward == "sparse":
            return obs, success.astype(np.float32), dones, infos
        # an env that auto-reset returns its new episode's first observation; its last is in info
        next_samples = [_Sample(info.pop("views"), info["terminal_observation"] if dones[i] else _env_obs(obs, i),
                                info.pop("depth", None)) for i, info in enumerate(infos)]
        done_envs = np.flatnonzero(dones)
        reset_samples = {int(i): self._reset_sample(int(i), obs) for i in done_envs}
        if self.relabel_enabled:
            self._pending.append(_PendingStep(next_samples, reset_samples, success, terminated, truncated))
            return obs, success.astype(np.float32), dones, infos
        streams, starts = _stream_layout(self.num_envs, done_envs)
        scores = self._score(next_samples + [reset_samples[i] for i in done_envs], streams, starts)
        phi_next = scores.progress[: self.num_envs]
        rewards = self.rewards.step(phi_next, scores.success[: self.num_envs], success, terminated, truncated)
        if len(done_envs):
            self.rewards.reset(scores.progress[self.num_envs :], streams=done_envs)
        for i, info in enumerate(infos):
            info["progress"] = float(phi_next[i])
            info["success_probability"] = float(scores.success[i])
        return obs, rewards.astype(np.float32), dones, infos

    def relabel(self) -> np.ndarray:
        """Score the views kept since the last call; returns shaped rewards (T, N).

        Streams continue across calls, so consecutive rollouts telescope.
        """
        steps, self._pending = self._pending, []
        if not steps:
            return np.zeros((0, self.num_envs), dtype=np.float32)
        flat: list[_Sample] = []
        streams, starts = [], []
        for step in steps:
            resets = sorted(step.reset_samples)
            flat += step.next_samples + [step.reset_samples[i] for i in resets]
            layout = _stream_layout(self.num_envs, np.array(resets, dtype=np.int64))
            streams.append(layout[0])
            starts.append(layout[1])
        scores = self._score(flat, np.concatenate(streams), np.concatenate(starts))
        progress, success_probability = scores.progress, scores.success
        rewards = np.empty((len(steps), self.num_envs), dtype=np.float32)
        cursor = 0
        for t, step in enumerate(steps):
            phi_next = progress[cursor : cursor + self.num_envs]
            success_next = success_probability[cursor : cursor + self.num_envs]
            cursor += self.num_envs
            rewards[t] = self.rewards.step(phi_next, success_next, step.task_reward, step.terminated, step.truncated)
            resets = sorted(step.reset_samples)
            if resets:
                self.rewards.reset(progress[cursor : cursor + len(resets)], streams=np.array(resets))
                cursor += len(resets)
        return rewards


def _env_obs(obs: Any, env: int) -> Any:
    """Env ``env``'s observation of a VecEnv's batched observations (an array, or a dict of arrays)."""
    if isinstance(obs, dict):
        return {key: value[env] for key, value in obs.items()}
    return obs[env]


def _stream_layout(num_envs: int, reset_envs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(streams, starts) of one step's samples: the N next observations, then the first
    observations of the envs that auto-reset, each starting a new episode of its env."""
    streams = np.concatenate([np.arange(num_envs), np.asarray(reset_envs, dtype=np.int64)])
    starts = np.concatenate([np.zeros(num_envs, dtype=bool), np.ones(len(reset_envs), dtype=bool)])
    return streams, starts
