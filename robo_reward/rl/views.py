"""Move camera views (and depth) out of the observation, into ``info``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

#: Observation keys a reward model reads that the learner does not: views, and depth
#: (after :class:`robo_reward.envs.depth.DepthViews`).
CAMERA_KEYS = ("views", "depth")


class ViewsToInfo(gym.Wrapper):
    """For a camera env with observations ``{"state": s, "views": {name: (H, W, 3)}}`` (and
    ``"depth": {name: (H, W)}``): the observation becomes ``s`` and the views (and depth)
    go to ``info["views"]`` (``info["depth"]``), on reset and step.

    The learner then acts from the state while the reward model sees the cameras; SB3's
    vectorised envs pass ``info`` through, including the reset info of auto-reset envs.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = env.observation_space["state"]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return obs["state"], {**info, **{k: obs[k] for k in CAMERA_KEYS if k in obs}}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs["state"], reward, terminated, truncated, {**info, **{k: obs[k] for k in CAMERA_KEYS if k in obs}}
