"""Demonstrations for the learner's demo buffer: recorded LeRobot episodes → transitions
whose rewards are made exactly as the online ones are.

A LeRobot row holds the observation before an action, the action, and what followed it
(``next.reward``, ``next.success``). Row t and row t+1 make the transition
s_t → s_{t+1}; the last row has no recorded successor, so it becomes a transition only
where the episode *terminated* there (a panda-gym task ends on success): the bootstrap
is masked, so its next observation is never read, and Φ(s') is zeroed by the shaping.

Rewards, per :data:`robo_reward.rl.vec_reward.REWARDS`:

* ``dense`` — the recording's ``next.reward`` (the simulator's own reward);
* ``sparse`` — ``next.success`` as 1.0/0.0;
* a model mode (``shaped``, ``progress``…) — the episode's frames scored by the same
  :class:`~robo_reward.scoring.Scorer` (one stream, the episode's first frame its
  context; each frame with its observation as the robot state, its depth and the
  episode's keypoints where loaded, as the online envs give them) and turned into rewards by the same :class:`~robo_reward.shaping.OnlineRewards`
  as :class:`~robo_reward.rl.vec_reward.VecRewardModel` uses online, with the recorded
  success flag as the task reward. Given the same frames, a demo transition gets the
  reward the online learner would have received for it.

Only episodes that reached success go to the demo buffer (RLPD, SERL: demonstrations
are successful); perturbed or partial recordings are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from robo_reward.data.lerobot import (
    DEPTH_PREFIX,
    RECORDED_EPISODES,
    LeRobotEpisode,
    open_lerobot,
    read_recorded,
)
from robo_reward.errors import ConfigError, InputError
from robo_reward.keypoint_spec import KeypointSpec
from robo_reward.models.base import RewardModel
from robo_reward.scoring import Scorer
from robo_reward.shaping import REWARD_MODES, SIMULATOR_REWARDS, OnlineRewards
from robo_reward.types import FrameBatch, Sampling, Task

OBSERVATION_KEY = "observation.environment_state"
"""The LeRobot feature holding the learner's observation (the recipe's full simulator state)."""


@dataclass
class Demonstration:
    """One recorded episode of T rows as the learner sees it.

    Attributes:
        name: where it came from (dataset and episode), for errors.
        observations: (T, D) float32, the learner's observation before each action.
        actions: (T, A) float32.
        env_rewards: (T,) float32, the simulator's reward of each step (``next.reward``).
        success: (T,) bool, the task's success flag after each step (``next.success``).
        views: view name → (T, H, W, 3) uint8 frames, the observation before each action.
        depth: view name → (T, H, W) float32 metres, where loaded (the recipe's ``--keypoints``).
        keypoints: the episode's keypoint spec at its first frame, where loaded (the same).
    """

    name: str
    observations: np.ndarray
    actions: np.ndarray
    env_rewards: np.ndarray
    success: np.ndarray
    views: dict[str, np.ndarray]
    depth: dict[str, np.ndarray] | None = None
    keypoints: KeypointSpec | None = None

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class DemoTransitions:
    """Transitions for :meth:`robo_reward.rl.rlpd.SymmetricReplayBuffer.add_demos`, (N, …) each."""

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray

    def as_kwargs(self) -> dict[str, np.ndarray]:
        return {"observations": self.observations, "next_observations": self.next_observations,
                "actions": self.actions, "rewards": self.rewards, "dones": self.dones}


def load_demonstrations(
    source: str | Path,
    views: Sequence[str],
    limit: int | None = None,
    observation_key: str = OBSERVATION_KEY,
    depth: bool = False,
    keypoints: bool = False,
) -> list[Demonstration]:
    """The successful episodes of a LeRobot dataset, in episode order, at most ``limit``.

    ``views`` are the cameras the reward model needs (dataset feature
    ``observation.images.<view>``); with none, no frames are decoded (``dense`` and
    ``sparse`` rewards need none). ``depth``: also each view's depth
    (``observation.depth.<view>``); ``keypoints``: each episode's keypoint spec from the
    recipe's sidecar — both recorded by the recipe's ``--keypoints``. Errors name the
    dataset and the missing feature.
    """
    import pyarrow.parquet as pq

    episodes = open_lerobot(source)
    missing = [view for view in views if view not in episodes[0].cameras]
    if missing:
        raise InputError(f"{source}: no camera feature for view(s) {missing}; it has {episodes[0].view_names}")
    depth_columns = {view: f"{DEPTH_PREFIX}{view}" for view in views} if depth else {}
    specs = _recorded_specs(source) if keypoints else {}
    columns = [observation_key, "action", "next.reward", "next.success", "frame_index", *depth_columns.values()]
    demos: list[Demonstration] = []
    for episode in episodes:
        if limit is not None and len(demos) >= limit:
            break
        if episode.outcome not in (None, "success"):  # recorded as partial or failure
            continue
        table = pq.read_table(episode.data_file, filters=[("episode_index", "=", episode.episode_index)])
        absent = [c for c in columns if c not in table.column_names]
        if absent:
            hint = " (record the demos with --keypoints)" if set(absent) & set(depth_columns.values()) else ""
            raise InputError(f"{episode.data_file}: demonstrations need the feature(s) {absent}{hint}")
        if keypoints and episode.episode_index not in specs:
            raise InputError(f"{Path(source) / RECORDED_EPISODES}: episode {episode.episode_index} has no keypoints "
                             "(record the demos with --keypoints)")
        rows = table.select(columns).to_pandas().sort_values("frame_index")
        success = np.array([bool(np.asarray(v).reshape(-1)[0]) for v in rows["next.success"]])
        if not success.any():
            continue
        demos.append(Demonstration(
            name=f"{episode.root} episode {episode.episode_index}",
            observations=np.stack(rows[observation_key].to_numpy()).astype(np.float32),
            actions=np.stack(rows["action"].to_numpy()).astype(np.float32),
            env_rewards=np.array([np.asarray(v).reshape(-1)[0] for v in rows["next.reward"]], dtype=np.float32),
            success=success,
            views=_frames(episode, views),
            depth={view: np.stack([np.stack(frame) for frame in rows[column]]).astype(np.float32)
                   for view, column in depth_columns.items()} if depth else None,
            keypoints=specs.get(episode.episode_index),
        ))
    if not demos:
        raise InputError(f"{source}: no episode reaches success (next.success); demonstrations must succeed")
    return demos


def _recorded_specs(source: str | Path) -> dict[int, KeypointSpec]:
    """episode_index → its keypoint spec, from the recipe's sidecar."""
    where = Path(source) / RECORDED_EPISODES
    return {int(record["episode_index"]): KeypointSpec.from_dict(record["keypoints"], f"{where} episode "
                                                                                    f"{record['episode_index']}")
            for record in read_recorded(source).get("episodes", []) if "keypoints" in record}


def _frames(episode: LeRobotEpisode, views: Sequence[str]) -> dict[str, np.ndarray]:
    if not views:
        return {}
    batches = list(episode.iter_batches(256, Sampling()))
    return {view: np.concatenate([b.views[view] for b in batches]) for view in views}


def demo_transitions(
    demos: Sequence[Demonstration],
    reward: str,
    gamma: float,
    model: RewardModel | None = None,
    task: Task | None = None,
    terminates_on_success: bool = False,
    batch_size: int = 256,
) -> DemoTransitions:
    """The demo buffer's transitions, rewarded as the online data (see module docstring).

    Args:
        demos: successful episodes (:func:`load_demonstrations`).
        reward: ``dense``, ``sparse`` or a model mode of :data:`robo_reward.shaping.REWARD_MODES`.
        gamma: the learner's discount per agent step (the shaping's).
        model, task: the reward model and task (model modes only).
        terminates_on_success: the env ends an episode when it succeeds (panda-gym), so a
            demo's last row, a success, is a terminal transition.
        batch_size: most frames per model call.
    """
    if reward not in (*REWARD_MODES, *SIMULATOR_REWARDS):
        raise ConfigError(f"unknown reward '{reward}'")
    if reward in REWARD_MODES and (model is None or task is None):
        raise ConfigError(f"reward '{reward}' needs a reward model and a task for the demonstrations")
    parts: list[DemoTransitions] = []
    for demo in demos:
        terminal = terminates_on_success and bool(demo.success[-1])
        count = len(demo) if terminal else len(demo) - 1
        if count < 1:
            continue
        dones = np.zeros(count, dtype=np.float32)
        dones[-1] = float(terminal)
        following = np.concatenate([demo.observations[1:], demo.observations[-1:]])[:count]
        if reward == "dense":
            rewards = demo.env_rewards[:count]
        elif reward == "sparse":
            rewards = demo.success[:count].astype(np.float32)
        else:
            rewards = _model_rewards(demo, count, terminal, reward, gamma, model, task, batch_size)
        parts.append(DemoTransitions(demo.observations[:count], following, demo.actions[:count],
                                     np.asarray(rewards, dtype=np.float32), dones))
    if not parts:
        raise InputError("the demonstrations hold no transition (every episode has a single frame)")
    return DemoTransitions(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                             ("observations", "next_observations", "actions", "rewards", "dones")))


def _model_rewards(demo: Demonstration, count: int, terminal: bool, reward: str, gamma: float,
                   model: RewardModel, task: Task, batch_size: int) -> np.ndarray:
    """Score the episode's frames as one stream and make its rewards step by step, as
    :class:`~robo_reward.rl.vec_reward.VecRewardModel` does online."""
    batch = FrameBatch(views=demo.views, timestamps_ns=np.arange(len(demo), dtype=np.int64), source=demo.name,
                       state=demo.observations.astype(np.float64), depth=demo.depth)
    episode_task = None if demo.keypoints is None else replace(task, keypoints=demo.keypoints)
    starts = np.zeros(len(demo), dtype=bool)
    starts[0] = True
    scores = Scorer(model, task, batch_size).score(batch, starts=starts, tasks=[episode_task] + [None] * (len(demo) - 1))
    rewards = OnlineRewards(reward, gamma)
    rewards.reset(scores.progress[0])
    out = np.empty(count)
    for t in range(count):
        # a terminal step's s' was not recorded: its Φ is zeroed by the termination
        following = min(t + 1, len(demo) - 1)
        out[t] = rewards.step(scores.progress[following:following + 1], scores.success[following:following + 1],
                              float(demo.success[t]), terminated=terminal and t == count - 1,
                              truncated=not terminal and t == count - 1)[0]
    return out


def recorded_settings(source: str | Path) -> dict:
    """What the demo recipe records beside a dataset (its
    :data:`~robo_reward.data.lerobot.RECORDED_EPISODES`): ``action_repeat`` and ``render``
    (``size``, ``shadows``), where it says; empty for other datasets."""
    recorded = read_recorded(source)
    return {key: recorded[key] for key in ("action_repeat", "render") if key in recorded}
