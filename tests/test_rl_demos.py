"""Demonstration-seeded RL: demo transitions rewarded exactly as the online ones, action
repeat in the shaping, and RLPD through `train` end to end on a real Meta-World task with
a LeRobot dataset made by the demo recipe."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("robo_reward.envs")  # picks MuJoCo's GL backend before mujoco is imported

from stable_baselines3.common.vec_env import DummyVecEnv

from robo_reward.assets import DEFAULT_MODEL
from robo_reward.envs.metaworld import expert_policy
from robo_reward.errors import ConfigError, InputError
from robo_reward.models import load_model
from robo_reward.rl.demos import Demonstration, demo_transitions, load_demonstrations
from robo_reward.rl.rlpd import RLPD
from robo_reward.rl.train import TrainArgs, make_camera_env, read_eval_log, train
from robo_reward.rl.vec_reward import VecRewardModel
from robo_reward.scoring import Scorer
from robo_reward.types import FrameBatch, Task

TASK = Task("open the drawer")
GAMMA = 0.97
VIEWS = ("corner", "topview")  # the shipped progress model's


def camera_args(**overrides) -> TrainArgs:
    values = dict(task="drawer-open-v3", cameras=VIEWS, image_size=64, max_episode_steps=12, action_repeat=2,
                  reward="shaped", reward_model=str(DEFAULT_MODEL), gamma=GAMMA, shadows=False, progress_bar=False,
                  record_video=False)
    values.update(overrides)
    return TrainArgs(**values)


@pytest.fixture(scope="module")
def progress_model():
    return load_model(str(DEFAULT_MODEL))


class RecordViews(gym.Wrapper):
    """Keeps every view the camera env renders (VecRewardModel takes them out of infos)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.views: list[dict[str, np.ndarray]] = []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.views.append({k: v.copy() for k, v in info["views"].items()})
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.views.append({k: v.copy() for k, v in info["views"].items()})
        return obs, reward, terminated, truncated, info


def expert_rollout_through_the_reward_env(model, reward: str):
    """The scripted expert stepping a real camera env inside VecRewardModel: the online
    rewards, and the same episode as a Demonstration (the views before each action)."""
    args = camera_args(reward=reward)
    recorder = RecordViews(make_camera_env(args, 3))
    venv = DummyVecEnv([lambda: recorder])
    env = VecRewardModel(venv, model, TASK, GAMMA, reward, rendered_views=args.cameras)
    obs = env.reset()
    recorder.views = recorder.views[-1:]  # the reset DummyVecEnv made at construction is not this episode
    policy = expert_policy("drawer-open-v3")
    observations, actions, success, online = [], [], [], []
    for _ in range(args.max_episode_steps):
        action = np.clip(policy.get_action(obs[0]), -1, 1).astype(np.float32)
        observations.append(obs[0].astype(np.float32))
        actions.append(action)
        obs, rewards, dones, infos = env.step(action[None])
        online.append(float(rewards[0]))
        success.append(bool(infos[0]["success"]))
        if dones[0]:
            break
    env.close()
    views = {view: np.stack([v[view] for v in recorder.views[: len(actions)]]) for view in VIEWS}
    demo = Demonstration("expert rollout", np.array(observations), np.array(actions),
                         np.zeros(len(actions), np.float32), np.array(success), views)
    return demo, np.array(online)


@pytest.mark.parametrize("reward", ["shaped", "progress"])
def test_demo_transitions_get_the_rewards_the_online_learner_gets(progress_model, reward):
    demo, online = expert_rollout_through_the_reward_env(progress_model, reward)
    transitions = demo_transitions([demo], reward, GAMMA, progress_model, TASK)
    # T rows give T-1 transitions (the last row's successor was not recorded)
    assert len(transitions.rewards) == len(demo) - 1
    np.testing.assert_allclose(transitions.rewards, online[: len(demo) - 1], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(transitions.next_observations[:-1], demo.observations[1:-1])
    assert not transitions.dones.any(), "Meta-World never terminates: no demo transition is terminal"


def test_a_terminating_task_keeps_its_last_successful_transition(progress_model):
    demo, _ = expert_rollout_through_the_reward_env(progress_model, "shaped")
    demo.success[-1] = True
    terminal = demo_transitions([demo], "shaped", GAMMA, progress_model, TASK, terminates_on_success=True)
    assert len(terminal.rewards) == len(demo) and terminal.dones[-1] == 1.0 and not terminal.dones[:-1].any()
    truncated = demo_transitions([demo], "shaped", GAMMA, progress_model, TASK)
    # the transitions before the last are those of the truncated reading; on termination
    # Φ(s') is zeroed: the terminal reward is success − Φ(s_{T−1})
    np.testing.assert_allclose(terminal.rewards[:-1], truncated.rewards, atol=1e-9)
    batch = FrameBatch(views=demo.views, timestamps_ns=np.arange(len(demo)))
    phi = Scorer(progress_model, TASK).score(batch).progress
    assert terminal.rewards[-1] == pytest.approx(1.0 - phi[-1], abs=1e-6)
    sparse = demo_transitions([demo], "sparse", GAMMA, terminates_on_success=True)
    assert sparse.rewards[-1] == 1.0 and sparse.dones[-1] == 1.0


def test_action_repeat_discounts_the_shaping_per_agent_step(progress_model):
    """With action repeat k, an agent step spans k simulator steps; the shaping uses the
    learner's γ per agent step, so the shaped return telescopes in agent steps."""
    args = camera_args(max_episode_steps=6, action_repeat=3)
    venv = DummyVecEnv([lambda: make_camera_env(args, 1)])
    env = VecRewardModel(venv, progress_model, TASK, GAMMA, rendered_views=args.cameras)
    env.reset()
    phi0 = float(env.rewards.potential[0])
    rng = np.random.default_rng(0)
    shaped, success, simulator_steps = [], [], []
    for _ in range(6):
        _, reward, done, infos = env.step(rng.uniform(-1, 1, (1, 4)).astype(np.float32))
        shaped.append(float(reward[0]))
        success.append(float(infos[0]["success"]))
        simulator_steps.append(venv.envs[0].unwrapped.curr_path_length)
    assert done[0] and infos[0]["TimeLimit.truncated"], "6 agent steps end the episode"
    assert simulator_steps[:5] == [3, 6, 9, 12, 15], "each agent step is 3 simulator steps"
    discount = GAMMA ** np.arange(6)
    expected = np.dot(discount, success) + GAMMA**6 * infos[0]["progress"] - phi0
    assert np.dot(discount, shaped) == pytest.approx(expected, abs=1e-9)
    env.close()


@pytest.fixture(scope="module")
def recorded(recorder, tmp_path_factory) -> Path:
    """Two expert episodes and one perturbed one, recorded by the demo recipe with action repeat 2."""
    config = recorder.RecordConfig(tasks=("drawer-open-v3",), cameras=VIEWS, size=64, successes=2, failures=1,
                                   action_repeat=2, max_steps=60, tail=3, vcodec="h264", shadows=False)
    return recorder.record_dataset(config, tmp_path_factory.mktemp("demos") / "demos", "robo_reward/test_demos")


def test_only_successful_recordings_become_demonstrations(recorded):
    demos = load_demonstrations(recorded, VIEWS)
    assert len(demos) == 2 and all(d.success.any() for d in demos)
    assert demos[0].views["corner"].shape == (len(demos[0]), 64, 64, 3)
    assert demos[0].observations.shape[1] == 39 and demos[0].actions.shape[1] == 4
    assert np.abs(demos[0].actions).max() <= 1.0, "the executed (clipped) actions are recorded"
    assert len(load_demonstrations(recorded, (), limit=1)) == 1
    with pytest.raises(InputError, match="corner3"):
        load_demonstrations(recorded, ("corner3",))


def test_rlpd_trains_from_a_recorded_dataset_end_to_end(recorded, tmp_path):
    args = camera_args(algo="rlpd", demos=str(recorded), total_steps=60, learning_starts=20, batch_size=32,
                       eval_every=30, eval_episodes=1, checkpoint_every=60, n_critics=2, utd_ratio=2,
                       out=str(tmp_path / "run"))
    out = train(args)
    assert [r["steps"] for r in read_eval_log(out)] == [30, 60]
    learner = RLPD.load(out / "final_model.zip")
    assert learner.utd_ratio == 2 and len(learner.critic.q_networks) == 2
    learner.load_replay_buffer(out / "checkpoints" / "model_replay_buffer_60_steps.pkl")
    demos = load_demonstrations(recorded, ())
    assert learner.replay_buffer.demos.size() == sum(len(d) - 1 for d in demos)


def test_demos_recorded_with_another_action_repeat_are_refused(recorded, tmp_path):
    args = camera_args(algo="rlpd", demos=str(recorded), action_repeat=1, reward="sparse", reward_model=None,
                       total_steps=10, out=str(tmp_path / "bad"))
    with pytest.raises(ConfigError, match="action repeat 2"):
        train(args)


def test_demos_rendered_unlike_the_env_are_refused_for_a_camera_reward(recorded, tmp_path):
    """A camera model scores the demos' frames and the online renders: a recording made with
    shadows the env does not render (or at another size) would be scored unlike the online data."""
    args = camera_args(algo="rlpd", demos=str(recorded), shadows=True, total_steps=10, out=str(tmp_path / "bad"))
    with pytest.raises(ConfigError, match="shadows off, training renders 64 px with shadows on"):
        train(args)


def test_demos_need_rlpd(tmp_path, recorded):
    with pytest.raises(ConfigError, match="algo: rlpd"):
        train(camera_args(algo="sac", demos=str(recorded), out=str(tmp_path / "x")))
