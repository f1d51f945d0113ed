"""Acceptance: train, label and serve give the same progress for the same frames with the
default model.

One short rollout of the real Meta-World ``drawer-open-v3`` (the scripted expert, two
episodes: a time-limit truncation, then an auto-reset) is rendered with the default
model's cameras at its image size, and scored four ways:

(a) training: ``make_camera_env`` envs in a DummyVecEnv under ``VecRewardModel``;
(b) the plain gymnasium ``RewardModelWrapper`` (views in the observation, and in info);
(c) offline labeling of those exact frames as an in-memory episode (``label_episode``);
(d) the live stream (``LiveRewardStream``) fed those frames with stamps.

All four agree, and the agreement is not trivial: the default model scores each frame
against its episode's first set, so the same frames scored with another first set — as
when an auto-reset did not start a new context — give other values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")
pytest.importorskip("metaworld")
from stable_baselines3.common.vec_env import DummyVecEnv

import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco loads; registers the ids)
from robo_reward.assets import DEFAULT_MODEL
from robo_reward.envs.metaworld import expert_policy
from robo_reward.envs.reward_wrapper import RewardModelWrapper
from robo_reward.errors import ConfigError
from robo_reward.labels import LabelConfig, label_episode
from robo_reward.models import load_model
from robo_reward.rl.train import TrainArgs, make_camera_env
from robo_reward.rl.vec_reward import VecRewardModel
from robo_reward.rl.views import ViewsToInfo
from robo_reward.scoring import Scorer, stack_views
from robo_reward.stream.runner import LiveRewardStream, RewardRecord, StreamConfig
from robo_reward.types import Episode, EpisodeContext, FrameBatch, Sampling, Task

TASK_NAME = "drawer-open-v3"
TASK = Task("open the drawer")
GAMMA = 0.9
LIMIT = 8  # steps per episode: episode 1 is truncated after 8 steps and auto-resets
STEPS = 12  # → episode 1: 9 observations, episode 2: 5
SEED = 3
PERIOD_NS = 100_000_000
ATOL = 1e-5

Views = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def model():
    return load_model(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def args(model) -> TrainArgs:
    assert model.uses_context and model.expected_views
    return TrainArgs(task=TASK_NAME, instruction=TASK.instruction, cameras=model.expected_views,
                     image_size=model.config.image_size, max_episode_steps=LIMIT, reward="shaped",
                     reward_model=str(DEFAULT_MODEL), gamma=GAMMA)


class RecordViews(gym.Wrapper):
    """Keeps a copy of every observation's views, per episode (from ``info["views"]``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.episodes: list[list[Views]] = []

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.episodes.append([{k: v.copy() for k, v in info["views"].items()}])
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.episodes[-1].append({k: v.copy() for k, v in info["views"].items()})
        return obs, reward, terminated, truncated, info


@dataclass
class Run:
    """Per episode: the frames, Φ of every observation, the rewards of every step, the
    simulator's success flag after every step."""

    frames: list[list[Views]] = field(default_factory=list)
    progress: list[list[float]] = field(default_factory=list)
    rewards: list[list[float]] = field(default_factory=list)
    success: list[list[float]] = field(default_factory=list)

    def begin(self, phi0: float) -> None:
        self.progress.append([phi0])
        self.rewards.append([])
        self.success.append([])

    def add(self, phi: float, reward: float, success: float) -> None:
        self.progress[-1].append(phi)
        self.rewards[-1].append(reward)
        self.success[-1].append(success)


@pytest.fixture(scope="module")
def training(model, args) -> Run:
    """(a) The training path: make_camera_env (TimeLimit + ViewsToInfo) → DummyVecEnv → VecRewardModel."""
    policy = expert_policy(TASK_NAME)
    venv = DummyVecEnv([lambda: RecordViews(make_camera_env(args, SEED))])
    venv.seed(SEED)
    env = VecRewardModel(venv, model, TASK, GAMMA, rendered_views=args.cameras)
    run = Run()
    obs = env.reset()
    run.begin(float(env.rewards.potential[0]))
    for _ in range(STEPS):
        obs, reward, done, infos = env.step(policy.get_action(obs[0])[None])
        run.add(infos[0]["progress"], float(reward[0]), float(infos[0]["success"]))
        if done[0]:
            assert infos[0]["TimeLimit.truncated"]
            # the auto-reset's first observation was scored as the start of a new stream
            run.begin(float(env.rewards.potential[0]))
    run.frames = venv.envs[0].episodes
    env.close()
    assert [len(p) for p in run.progress] == [LIMIT + 1, STEPS - LIMIT + 1]
    assert [len(f) for f in run.frames] == [len(p) for p in run.progress]
    return run


@pytest.fixture(scope="module")
def wrapped(model, args) -> Run:
    """(b) The gymnasium wrapper on the registered camera env (views in the observation)."""
    policy = expert_policy(TASK_NAME)
    env = gym.make("robo_reward/MetaWorld-v0", task=TASK_NAME, cameras=args.cameras, image_size=args.image_size,
                   max_path_length=LIMIT + 1, max_episode_steps=LIMIT)
    env = RewardModelWrapper(env, model, TASK, GAMMA)
    env.check_learner(GAMMA)
    run = Run()
    obs, info = env.reset(seed=SEED)
    run.frames.append([obs["views"]])
    run.begin(info["progress"])
    for _ in range(STEPS):
        obs, reward, terminated, truncated, info = env.step(policy.get_action(obs["state"]))
        run.frames[-1].append(obs["views"])
        run.add(info["progress"], reward, float(info["success"]))
        assert not terminated
        if truncated:
            obs, info = env.reset()
            run.frames.append([obs["views"]])
            run.begin(info["progress"])
    env.close()
    return run


def scored_progress(model, frames: list[Views], first: Views | None = None) -> np.ndarray:
    """Φ of ``frames`` as one episode, its context ``first`` (default: its own first set)."""
    scorer = Scorer(model, TASK)
    if first is not None:
        scorer.begin(context=EpisodeContext(stack_views([first], [0])))
    return scorer.score(stack_views(frames, np.arange(len(frames)))).progress


@dataclass
class ArrayEpisode:
    """An in-memory episode of exact frames (the ``Episode`` protocol; no video encoding)."""

    name: str
    frames: list[Views]
    task: Task = TASK
    outcome: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def view_names(self) -> list[str]:
        return list(self.frames[0])

    def _index(self, sampling: Sampling) -> np.ndarray:
        assert sampling.fps is None
        return np.arange(0, len(self.frames), sampling.stride)

    def timestamps(self, sampling: Sampling) -> np.ndarray:
        return self._index(sampling) * PERIOD_NS

    def iter_batches(self, batch_size: int, sampling: Sampling) -> Iterator[FrameBatch]:
        index = self._index(sampling)
        for start in range(0, len(index), batch_size):
            pick = index[start : start + batch_size]
            yield FrameBatch(views={v: np.stack([self.frames[i][v] for i in pick]) for v in self.view_names},
                             timestamps_ns=pick * PERIOD_NS, frame_index=pick, source=f"episode '{self.name}'")


@dataclass(frozen=True)
class Frame:
    stamp_ns: int
    image: np.ndarray

    def decode(self) -> np.ndarray:
        return self.image


class ReplayEnv(gym.Env):
    """Replays recorded episodes of views and success flags: ``{"state", "views"}``
    observations, each episode truncated at its last frame; ``reset`` moves to the next."""

    def __init__(self, episodes: list[list[Views]], success: list[list[float]]) -> None:
        self.episodes, self.success = episodes, success
        first = episodes[0][0]
        image = lambda a: gym.spaces.Box(0, 255, a.shape, np.uint8)
        self.observation_space = gym.spaces.Dict({
            "state": gym.spaces.Box(-1, 1, (1,)), "views": gym.spaces.Dict({k: image(v) for k, v in first.items()})})
        self.action_space = gym.spaces.Discrete(1)
        self._episode, self._t = -1, 0

    def _obs(self) -> dict[str, Any]:
        return {"state": np.zeros(1, np.float32), "views": self.episodes[self._episode][self._t]}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._episode, self._t = self._episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        truncated = self._t == len(self.episodes[self._episode]) - 1
        return self._obs(), 0.0, False, truncated, {"success": self.success[self._episode][self._t - 1]}


def test_the_wrapper_sees_the_training_frames_and_gives_the_same_progress_and_rewards(training, wrapped):
    assert len(wrapped.frames) == len(training.frames) == 2
    for ours, theirs in zip(wrapped.frames, training.frames):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert list(a) == list(b) and all(np.array_equal(a[v], b[v]) for v in a)
    for name in ("progress", "rewards", "success"):
        for ours, theirs in zip(getattr(wrapped, name), getattr(training, name)):
            np.testing.assert_allclose(ours, theirs, atol=ATOL, err_msg=name)
    assert max(training.progress[0]) - min(training.progress[0]) > 0.02  # the drawer moves: Φ is not flat


def test_the_wrapper_reads_views_from_info_too(model, training):
    """After ViewsToInfo: the same frames replayed, the same progress and rewards."""
    env = RewardModelWrapper(ViewsToInfo(ReplayEnv(training.frames, training.success)), model, TASK, GAMMA)
    for episode, frames in enumerate(training.frames):
        obs, info = env.reset()
        assert not isinstance(obs, dict)  # the learner sees the state; the views went to info
        progress, rewards = [info["progress"]], []
        for _ in frames[1:]:
            _, reward, terminated, truncated, info = env.step(0)
            progress.append(info["progress"])
            rewards.append(reward)
        assert truncated and not terminated
        np.testing.assert_allclose(progress, training.progress[episode], atol=ATOL)
        np.testing.assert_allclose(rewards, training.rewards[episode], atol=ATOL)


def test_offline_labeling_of_the_frames_gives_the_training_progress(model, training):
    config = LabelConfig(batch_size=4, gamma=GAMMA)  # context carried across model calls
    for i, frames in enumerate(training.frames):
        episode = ArrayEpisode(f"rollout{i}", frames)
        assert isinstance(episode, Episode)
        labels = label_episode(model, episode, config)
        np.testing.assert_allclose(labels.scores.progress, training.progress[i], atol=ATOL)
        # the same shaping: row t is s_t → s_{t+1} (no task reward offline; the recording's
        # last row is a truncation, which the training stream shaped from its next frame)
        task_free = np.array(training.rewards[i]) - np.array(training.success[i])
        np.testing.assert_allclose(labels.reward[:-1], task_free, atol=ATOL)


def test_the_live_stream_fed_the_frames_gives_the_training_progress(model, training, args):
    records: list[RewardRecord] = []
    stream = LiveRewardStream(model, TASK, StreamConfig(views=args.cameras, gamma=GAMMA, max_batch=3),
                              records.append, clock_ns=lambda: 0)
    k = 0
    for episode, frames in enumerate(training.frames):
        if episode:
            stream.reset_episode()
        for views in frames:
            for view in args.cameras:
                stream.push(view, Frame(k * PERIOD_NS, views[view]))
            k += 1
        while stream.process(timeout_s=0.0):
            pass
    assert [r.episode for r in records] == [e for e, f in enumerate(training.frames) for _ in f]
    assert all(r.valid for r in records)
    for episode, frames in enumerate(training.frames):
        mine = [r for r in records if r.episode == episode]
        np.testing.assert_allclose([r.progress for r in mine], training.progress[episode], atol=ATOL)
        task_free = np.array(training.rewards[episode]) - np.array(training.success[episode])
        np.testing.assert_allclose([r.reward for r in mine[1:]], task_free, atol=ATOL)


def test_the_first_observation_after_an_auto_reset_starts_a_new_context(model, training):
    first, second = training.frames
    # the training stream restarted at the auto-reset: episode 2 scored against its own first set …
    np.testing.assert_allclose(scored_progress(model, second), training.progress[1], atol=ATOL)
    # … which differs from scoring it against episode 1's first set (a stream that did not restart)
    stale = scored_progress(model, second, first=first[0])
    assert np.abs(stale - np.array(training.progress[1])).max() > 1e-3
    assert not all(np.array_equal(first[0][v], second[0][v]) for v in first[0])


def test_the_agreement_is_not_trivial_another_first_set_gives_other_progress(model, training):
    frames = training.frames[0]
    own = np.array(training.progress[0])
    np.testing.assert_allclose(scored_progress(model, frames), own, atol=ATOL)
    for other in (frames[-1], training.frames[1][0]):
        assert np.abs(scored_progress(model, frames, first=other) - own).max() > 1e-3
    with pytest.raises(ConfigError, match="EpisodeContext"):  # and the model refuses to score without one
        model.score(stack_views(frames[:1], [0]), TASK)
