"""A reward model on any gymnasium env that renders camera views (no stable-baselines3).

For CleanRL-style training loops and ``gymnasium.vector`` envs::

    env = gymnasium.make("robo_reward/MetaWorld-v0", task="drawer-open-v3", cameras=("corner", "topview"),
                         image_size=64, max_episode_steps=200)
    env = RewardModelWrapper(env, load_model(DEFAULT_MODEL), Task("open the drawer"), gamma=0.99)
    env.check_learner(0.99)                                   # γ of your learner: refused if it differs
    obs, info = env.reset(seed=0)                             # info["progress"]: Φ(s₀)
    obs, reward, terminated, truncated, info = env.step(action)

It is the one-env form of :class:`robo_reward.rl.vec_reward.VecRewardModel` and gives the
same rewards for the same frames: each episode is one :class:`~robo_reward.scoring.Scorer`
stream whose context is the episode's first observation (``reset`` starts it), and the
reward of each step is :class:`robo_reward.shaping.OnlineRewards` — ``shaped``: the
simulator's success flag (``info["success"]`` / ``info["is_success"]``, 0 without one)
plus ``γ·Φ(s')·(1 − terminated) − Φ(s)``, Φ(s') kept on truncation; or a transform of
:data:`robo_reward.shaping.TRANSFORMS` (these change the optimal policy; ``kagi`` pays the
simulator's success flag where it is 1, else the model's dense progress).

Besides the views, each scored sample carries the observation's robot state
(:func:`robo_reward.scoring.state_vector`) and, after :class:`robo_reward.envs.depth.DepthViews`, its depth
images (``obs["depth"]``): the ``keypoint`` model reads the end effector from the one and
lifts tracked points to 3D with the other. An episode whose reset ``info["task"]`` holds a
:class:`~robo_reward.types.Task` is scored with it, e.g. its ground-truth keypoints
(:class:`robo_reward.envs.keypoints.GroundTruthKeypoints`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from robo_reward.errors import ConfigError, InputError
from robo_reward.models.base import RewardModel
from robo_reward.scoring import Scorer, check_views, stack_views
from robo_reward.shaping import SIMULATOR_REWARDS, OnlineRewards, simulator_success
from robo_reward.types import EPISODE_TASK, Scores, Task


class RewardModelWrapper(gym.Wrapper):
    """Replace a camera env's reward by a reward model's; see the module docstring.

    Views are read from the observation, ``obs[views_key]`` (robo_reward's camera envs:
    ``{"state", "views"}``), or else from ``info[views_key]`` (after
    :class:`robo_reward.rl.views.ViewsToInfo`); observations and views pass through
    unchanged. ``info["progress"]`` (Φ of the new observation) and
    ``info["success_probability"]`` carry the model's output on ``reset`` and ``step``;
    the simulator's own success flag stays in ``info``.

    Args:
        env: an env that renders the views the model expects.
        model: the reward model.
        task: what to reward.
        gamma: discount of the shaping; must equal the learner's (:meth:`check_learner`).
        reward: ``shaped`` or a transform of :data:`robo_reward.shaping.TRANSFORMS`.
        views_key: where the views are in the observation dict or in ``info``.
    """

    def __init__(self, env: gym.Env, model: RewardModel, task: Task, gamma: float, reward: str = "shaped",
                 views_key: str = "views") -> None:
        super().__init__(env)
        if reward in SIMULATOR_REWARDS:
            raise ConfigError(f"reward '{reward}' is the simulator's own, with no reward model: use the env unwrapped")
        self.rewards = OnlineRewards(reward, gamma)  # refuses an unknown reward or γ
        self.model, self.task, self.reward, self.views_key = model, task, reward, views_key
        self.scorer = Scorer(model, task)
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict) and isinstance(space.spaces.get(views_key), gym.spaces.Dict):
            check_views(model, tuple(space[views_key].spaces))
        self._step = 0

    @property
    def gamma(self) -> float:
        return self.rewards.gamma

    def check_learner(self, learner_gamma: float) -> None:
        """Refuse a learner whose γ differs from the shaping's (``shaped`` only)."""
        self.rewards.check_learner(learner_gamma)

    def _views(self, obs: Any, info: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if isinstance(obs, Mapping) and self.views_key in obs:
            return obs[self.views_key]
        if self.views_key in info:
            return info[self.views_key]
        raise InputError(
            f"RewardModelWrapper: no camera views: neither the observation nor info has '{self.views_key}' "
            f"(wrap a camera env, e.g. robo_reward/MetaWorld-v0, or set views_key)"
        )

    def _score(self, obs: Any, info: dict[str, Any], start: bool) -> Scores:
        """Score one observation (``start``: the first of an episode, scored with its task)."""
        views = self._views(obs, info)
        if isinstance(obs, Mapping) and self.views_key in obs:  # the camera env's own observation
            state, depth = obs.get("state"), obs.get("depth")
        else:  # after ViewsToInfo: the observation is the state, depth is in info
            state, depth = obs, info.get("depth")
        batch = stack_views([views], [self._step], source=f"env step {self._step}",
                            states=None if state is None else [state],
                            depths=None if depth is None else [depth])
        scores = self.scorer.score(batch, starts=[start], tasks=[self.task])
        info["progress"] = float(scores.progress[0])
        info["success_probability"] = float(scores.success[0])
        return scores

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        info = dict(info)
        self._step = 0
        self.task = info.get(EPISODE_TASK, self.scorer.task)
        check_views(self.model, tuple(self._views(obs, info)))
        self.rewards.reset(self._score(obs, info, start=True).progress)  # the first observation: the context
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if np.isnan(self.rewards.potential[0]):  # the shaper awaits a reset
            raise ConfigError("RewardModelWrapper.step before reset() or after the episode ended: call reset() first")
        obs, _, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        self._step += 1
        scores = self._score(obs, info, start=False)
        reward = self.rewards.step(scores.progress, scores.success, simulator_success(info), terminated, truncated)
        return obs, float(reward[0]), terminated, truncated, info

