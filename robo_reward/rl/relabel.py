"""Replay-buffer relabeling with a camera reward model (the VLM-RM pattern)."""

from __future__ import annotations

import numpy as np

from robo_reward.errors import ConfigError, require
from robo_reward.rl.vec_reward import VecRewardModel

require("stable_baselines3", "sim", "RL training")
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


class RelabelCallback(BaseCallback):
    """After each rollout, score its views in large batches and overwrite the rewards the
    rollout wrote into the replay buffer with the shaped ones.

    Off-policy learners only: on-policy learners compute advantages before a rollout ends.
    Use a ``train_freq`` of many steps so that each relabel scores a large batch.
    """

    def __init__(self, reward_env: VecRewardModel) -> None:
        super().__init__()
        if not reward_env.relabel_enabled:
            raise ConfigError("RelabelCallback needs a VecRewardModel made with relabel=True")
        self.reward_env = reward_env
        self._start = 0

    def _on_training_start(self) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise ConfigError(f"replay-buffer relabeling needs an off-policy learner, not {type(self.model).__name__}")

    def _on_rollout_start(self) -> None:
        self._start = self.model.replay_buffer.pos

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        rewards = self.reward_env.relabel()
        buffer = self.model.replay_buffer
        rows = (self._start + np.arange(len(rewards))) % buffer.buffer_size
        buffer.rewards[rows] = rewards
