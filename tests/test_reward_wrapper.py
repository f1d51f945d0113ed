"""The plain gymnasium RewardModelWrapper with the default model on a synthetic camera env:
shaping with terminated and truncated kept apart, one context per episode, γ and view checks.
(Its agreement with training, labeling and the live stream on Meta-World frames is in
tests/test_same_scores.py.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from robo_reward.assets import DEFAULT_MODEL
from robo_reward.envs.reward_wrapper import RewardModelWrapper
from robo_reward.errors import ConfigError, InputError
from robo_reward.models import load_model
from robo_reward.scoring import Scorer, stack_views
from robo_reward.types import Task

TASK = Task("open the drawer")
GAMMA = 0.9


@pytest.fixture(scope="module")
def model():
    return load_model(DEFAULT_MODEL)


def square(view: int, t: int, start: int) -> np.ndarray:
    """A 64×64 frame: a block that slides right with t, from a per-episode start."""
    image = np.full((64, 64, 3), 80 + 40 * view, dtype=np.uint8)
    x = min(4 + start + 6 * t, 52)
    image[24:40, x : x + 12] = (220, 60, 40)
    return image


class SlideEnv(gym.Env):
    """``{"state", "views"}`` observations of two cameras; ends after ``length`` steps,
    terminated with ``info["success"] = 1`` if ``terminate``, else truncated."""

    def __init__(self, views=("corner", "topview"), length: int = 4, terminate: bool = False) -> None:
        self.views, self.length, self.terminate = views, length, terminate
        image = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-1, 1, (1,)), "views": gym.spaces.Dict({v: image for v in views})})
        self.action_space = gym.spaces.Discrete(1)
        self.episode, self.t = -1, 0

    def _obs(self) -> dict[str, Any]:
        return {"state": np.zeros(1, np.float32),
                "views": {v: square(i, self.t, 10 * self.episode) for i, v in enumerate(self.views)}}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        end = self.t == self.length
        success = float(end and self.terminate)
        return self._obs(), -5.0, end and self.terminate, end and not self.terminate, {"success": success}


def episode(env: RewardModelWrapper) -> tuple[list[float], list[float], list[float], bool]:
    """(Φ of every observation, rewards, success flags, terminated) of one episode."""
    _, info = env.reset()
    progress, rewards, success = [info["progress"]], [], []
    while True:
        _, reward, terminated, truncated, info = env.step(0)
        progress.append(info["progress"])
        rewards.append(reward)
        success.append(info["success"])
        assert 0.0 <= info["success_probability"] <= 1.0
        if terminated or truncated:
            return progress, rewards, success, terminated


@pytest.mark.parametrize("terminate", [False, True])
def test_shaped_return_telescopes_with_termination_and_truncation_kept_apart(model, terminate):
    env = RewardModelWrapper(SlideEnv(terminate=terminate), model, TASK, GAMMA)
    progress, rewards, success, terminated = episode(env)
    assert terminated == terminate
    discount = GAMMA ** np.arange(len(rewards))
    # the env's own reward (−5) is replaced; the task reward is its success flag
    tail = 0.0 if terminate else GAMMA ** len(rewards) * progress[-1]  # Φ zeroed only on termination
    assert np.dot(discount, rewards) == pytest.approx(np.dot(discount, success) + tail - progress[0], abs=1e-6)
    assert rewards[0] == pytest.approx(success[0] + GAMMA * progress[1] - progress[0], abs=1e-6)
    with pytest.raises(ConfigError, match="reset"):
        env.step(0)


def test_each_episode_is_scored_against_its_own_first_observation(model):
    env = RewardModelWrapper(SlideEnv(), model, TASK, GAMMA)
    episodes = []
    for _ in range(2):
        episodes.append(episode(env)[0])
    source = SlideEnv()  # the same frames, scored as two separate episodes
    for number, progress in enumerate(episodes):
        source.episode = number
        frames = []
        for t in range(source.length + 1):
            source.t = t
            frames.append(source._obs()["views"])
        expected = Scorer(model, TASK).score(stack_views(frames, np.arange(len(frames)))).progress
        np.testing.assert_allclose(progress, expected, atol=1e-5)
    assert not np.allclose(episodes[0], episodes[1], atol=1e-3)


def test_transform_rewards_and_checks(model):
    env = RewardModelWrapper(SlideEnv(), model, TASK, GAMMA, reward="progress")
    progress, rewards, _, _ = episode(env)
    np.testing.assert_allclose(rewards, progress[1:], atol=1e-6)  # raw Φ(s'): no γ involved
    env.check_learner(0.5)
    shaped = RewardModelWrapper(SlideEnv(), model, TASK, GAMMA)
    shaped.check_learner(GAMMA)
    with pytest.raises(ConfigError, match="learner's gamma"):
        shaped.check_learner(0.99)
    with pytest.raises(ConfigError, match="simulator's own"):
        RewardModelWrapper(SlideEnv(), model, TASK, GAMMA, reward="dense")
    with pytest.raises(ConfigError, match="unknown reward"):
        RewardModelWrapper(SlideEnv(), model, TASK, GAMMA, reward="shapd")
    with pytest.raises(ConfigError, match=r"needs view\(s\) \['topview'\]"):
        RewardModelWrapper(SlideEnv(views=("corner",)), model, TASK, GAMMA)
    with pytest.raises(InputError, match="no camera views"):
        RewardModelWrapper(SlideEnv(), model, TASK, GAMMA, views_key="cameras").reset()
