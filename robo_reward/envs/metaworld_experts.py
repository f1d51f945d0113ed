"""Scripted Meta-World episodes: the tasks' scripted experts (:func:`expert_policy`),
:class:`ScriptedPolicy` (the expert, stopped part-way or perturbed) and
:func:`scripted_rollout`, which steps an env with it.

>>> env = metaworld_task_env("drawer-open-v3")       # robo_reward.envs.metaworld
>>> policy = expert_policy("drawer-open-v3")
>>> state, info = env.reset(seed=0)
>>> state, reward, terminated, truncated, info = env.step(policy.get_action(state))

Choosing a seed whose episode comes out as success, partial or failure is
:func:`robo_reward.envs.metaworld_search.find_scripted_episode`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robo_reward.envs.cameras import choose_mujoco_gl
from robo_reward.envs.metaworld_tasks import check_task
from robo_reward.errors import ConfigError, require

choose_mujoco_gl()
_policies = require("metaworld.policies", "sim", "Meta-World expert policies")


def expert_policy(task: str) -> Any:
    """Meta-World's scripted expert for ``task``: ``policy.get_action(state) -> (4,) action``.

    The state is handed over as a copy: Meta-World's door-open and door-close experts shift
    the door's position in the array they are given (``pos_door[0] -= 0.05`` on a view of
    it), which corrupted every observation recorded after the expert had seen it."""
    return _CopyingPolicy(_policies.ENV_POLICY_MAP[check_task(task)]())


class _CopyingPolicy:
    """A Meta-World policy given a copy of each observation."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def get_action(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.get_action(np.array(obs, dtype=np.float64, copy=True))


#: How :class:`ScriptedPolicy` makes actions, and the outcome each kind is meant to produce.
SCRIPTED_KINDS = {
    "expert": "success",
    "stop_step": "partial",
    "stop_progress": "partial",
    "beside": "failure",
    "noise": "failure",
}


class ScriptedPolicy:
    """Meta-World's scripted expert for a task, optionally stopped part-way or perturbed.

    ``spec["kind"]`` (see :data:`SCRIPTED_KINDS`):

    * ``expert`` — the expert as is;
    * ``stop_step`` — holds still after ``spec["stop_step"]`` steps;
    * ``stop_progress`` — holds still once the object has covered ``spec["fraction"]`` of
      its initial distance to the goal (it may coast a little further);
    * ``beside`` — the expert aims ``spec["offset"]`` metres beside the object and the
      goal along x (it sees both shifted);
    * ``noise`` — Gaussian noise of std ``spec["sigma"]`` (drawn from
      ``spec["noise_seed"]``) added to the expert's actions, clipped to [-1, 1].

    Holding still keeps the expert's last gripper effort. One instance drives one episode.

    Args:
        task: Meta-World v3 task name.
        spec: the kind and its parameters (JSON-serialisable, stored with recordings).
    """

    def __init__(self, task: str, spec: dict[str, Any]) -> None:
        if spec.get("kind") not in SCRIPTED_KINDS:
            raise ConfigError(f"scripted kind must be one of {', '.join(SCRIPTED_KINDS)}, got {spec.get('kind')!r}")
        self.expert = expert_policy(task)
        self.spec = dict(spec)
        self.rng = np.random.default_rng(spec.get("noise_seed", 0))
        self.steps = 0
        self.holding = False
        self.last = np.zeros(4, dtype=np.float32)

    def __call__(self, state: np.ndarray, progress: float) -> np.ndarray:
        """The next (4,) float32 action from the (39,) ``state``; ``progress`` is the object's
        progress toward the goal so far (see :func:`scripted_rollout`)."""
        kind = self.spec["kind"]
        self.steps += 1
        if kind == "stop_step" and self.steps > self.spec["stop_step"]:
            self.holding = True
        if kind == "stop_progress" and progress >= self.spec["fraction"]:
            self.holding = True
        if self.holding:
            return np.array([0.0, 0.0, 0.0, self.last[3]], dtype=np.float32)
        if kind == "beside":
            state = state.copy()
            state[[4, -3]] += self.spec["offset"]  # first object's x, goal's x
        action = np.asarray(self.expert.get_action(state), dtype=np.float32)
        if kind == "noise":
            action = action + self.rng.normal(0.0, self.spec["sigma"], 4).astype(np.float32)
        # the experts' raw actions leave [-1, 1] (up to ~10); the env clips them, so the
        # clipped action is the one executed — and the one a learner can imitate
        action = np.clip(action, -1.0, 1.0)
        self.last = action
        return action


@dataclass
class Transition:
    """One env step of a scripted rollout (an agent step where the env repeats actions).

    Attributes:
        obs: the observation the action was chosen from (the env's, e.g. a state array or
            ``{"state", "views"}`` dict).
        action: (4,) float32 action taken.
        reward: the env's reward for the step (summed over its simulator steps under
            :class:`~robo_reward.envs.action_repeat.ActionRepeat`).
        success: whether ``info["success"]`` is true after the step.
        progress: the object's progress toward the goal after the step,
            1 − distance / distance after the first step (0 closed … ≈0.93 at success
            for drawer-open); NaN for tasks whose ``info["obj_to_target"]`` is always 0
            (assembly, box-close, disassemble, door-open, hammer).
        next_obs: the observation after the step.
    """

    obs: Any
    action: np.ndarray
    reward: float
    success: bool
    progress: float
    next_obs: Any


def scripted_rollout(
    env: gym.Env, task: str, spec: dict[str, Any], seed: int, max_steps: int, stop_on_success: bool = False
) -> Iterator[Transition]:
    """Reset ``env`` with ``seed`` and step it with :class:`ScriptedPolicy` ``spec``.

    ``env`` is a Meta-World env from :func:`metaworld_task_env` (optionally in
    :class:`~robo_reward.envs.action_repeat.ActionRepeat`: a step is then an agent step, and
    ``info`` is its last simulator step's) or :func:`make_metaworld_env`.
    Yields up to ``max_steps`` transitions, fewer if ``stop_on_success`` and the task
    succeeds (the successful step is yielded) or the episode is truncated.
    """
    policy = ScriptedPolicy(task, spec)
    obs, _ = env.reset(seed=seed)
    progress, start = 0.0, None  # start: the object's distance to the goal after the first step
    for _ in range(max_steps):
        state = obs["state"] if isinstance(obs, dict) else obs
        action = policy(state, progress)
        next_obs, reward, _, truncated, info = env.step(action)
        start = start if start is not None else float(info["obj_to_target"])
        progress = 1.0 - float(info["obj_to_target"]) / start if start > 1e-6 else float("nan")
        success = bool(info["success"] > 0)
        yield Transition(obs, action, float(reward), success, progress, next_obs)
        obs = next_obs
        if truncated or (stop_on_success and success):
            return

