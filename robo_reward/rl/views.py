"""Move camera views out of the observation, into ``info["views"]``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class ViewsToInfo(gym.Wrapper):
    """For a camera env with observations ``{"state": s, "views": {name: (H, W, 3)}}``:
    the observation becomes ``s`` and the views go to ``info["views"]``, on reset and step.

    The learner then acts from the state while the reward model sees the cameras; SB3's
    vectorised envs pass ``info`` through, including the reset info of auto-reset envs.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space["state"]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return obs["state"], {**info, "views": obs["views"]}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs["state"], reward, terminated, truncated, {**info, "views": obs["views"]}
