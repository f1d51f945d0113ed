"""Action repeat: one agent step is ``repeat`` simulator steps with the same action (PlaNet,
DrQ-v2, RLPD's pixel configs; the Meta-World curves of TD-MPC2 use 2).

The agent step's reward is the sum of the simulator steps' rewards; it ends early on a
termination or truncation; the observation and info (camera views included) are the last
simulator step's. Camera envs take it inside their camera wrapper (``action_repeat`` of
:func:`~robo_reward.envs.metaworld.make_metaworld_env` and
:func:`~robo_reward.envs.panda.make_panda_env`), so views are rendered once per agent
step, not once per simulator step. The reward model scores the views once per agent
step, so the learner's γ and the shaping's γ are both per agent step, and potential
shaping stays exactly potential-based for the agent's MDP.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class ActionRepeat(gym.Wrapper):
    """Repeat every action ``repeat`` times; rewards summed, stop at the first episode end."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        self.repeat = repeat

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            observation, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return observation, total, terminated, truncated, info
