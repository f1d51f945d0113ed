"""Demonstration-seeded RL: demo transitions rewarded exactly as the online ones, action
repeat in the shaping, and RLPD through `train` end to end on a real Meta-World task with
a LeRobot dataset made by the demo recipe."""

from __future__ import annotations

from dataclasses import replace
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
from robo_reward.rl.train import (
    LEARNER_SCALARS,
    TrainArgs,
    make_camera_env,
    read_eval_log,
    read_learner_log,
    train,
)
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
    """Keeps every view (and depth) the camera env renders, which VecRewardModel takes out of
    infos, and each episode's task from its reset info."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.views: list[dict[str, np.ndarray]] = []
        self.depth: list[dict[str, np.ndarray]] = []
        self.tasks: list[Task | None] = []

    def _keep(self, info: dict) -> None:
        self.views.append({k: v.copy() for k, v in info["views"].items()})
        self.depth.append({k: v.copy() for k, v in info.get("depth", {}).items()})

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._keep(info)
        self.tasks.append(info.get("task"))
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._keep(info)
        return obs, reward, terminated, truncated, info


def expert_rollout_through_the_reward_env(model, reward: str, **overrides):
    """The scripted expert stepping a real camera env inside VecRewardModel: the online
    rewards, and the same episode as a Demonstration (the views before each action, with
    depth and the episode's keypoints where the env gives them)."""
    args = camera_args(reward=reward, **overrides)
    recorder = RecordViews(make_camera_env(args, 3))
    venv = DummyVecEnv([lambda: recorder])
    env = VecRewardModel(venv, model, TASK, GAMMA, reward, rendered_views=args.cameras)
    obs = env.reset()
    # the reset DummyVecEnv made at construction is not this episode
    recorder.views, recorder.depth, recorder.tasks = recorder.views[-1:], recorder.depth[-1:], recorder.tasks[-1:]
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
    views = {view: np.stack([v[view] for v in recorder.views[: len(actions)]]) for view in args.cameras}
    depth = {view: np.stack([d[view] for d in recorder.depth[: len(actions)]]) for view in args.cameras} \
        if args.depth else None
    keypoints = recorder.tasks[0].keypoints if args.ground_truth_keypoints else None
    demo = Demonstration("expert rollout", np.array(observations), np.array(actions),
                         np.zeros(len(actions), np.float32), np.array(success), views, depth, keypoints)
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


KEYPOINT_ENV = {"cameras": ("corner",), "image_size": 48, "max_episode_steps": 30, "reward_model": "keypoint",
                "depth": True, "ground_truth_keypoints": True}


@pytest.mark.parametrize("reward", ["shaped", "kagi"])
def test_keypoint_demo_transitions_get_the_online_rewards_from_their_state_depth_and_keypoints(reward):
    """The keypoint model reads the end effector from the state, lifts tracked points with the
    depth and takes each episode's keypoints from its reset: a demo carrying the same three
    is rewarded as online; without the depth it is not (the same frames in 2D)."""
    model = load_model("keypoint")
    demo, online = expert_rollout_through_the_reward_env(model, reward, **KEYPOINT_ENV)
    assert demo.keypoints is not None and demo.keypoints.keypoints["gripper"].state == (0, 3)
    transitions = demo_transitions([demo], reward, GAMMA, model, TASK)
    np.testing.assert_allclose(transitions.rewards, online[: len(demo) - 1], rtol=0, atol=1e-6)
    assert np.ptp(online) > 0.05, "the expert's episode moves the keypoint reward"
    flat = demo_transitions([replace(demo, depth=None)], reward, GAMMA, model, TASK)
    assert not np.allclose(flat.rewards, transitions.rewards, atol=1e-3)


def test_the_vec_reward_env_scores_each_episode_with_its_own_keypoints_as_the_gym_wrapper_does():
    """Two envs across auto-resets: every episode is scored with the keypoints its reset gave,
    with its state and depth — the rewards of the one-env gymnasium wrapper on the same seeds
    and actions."""
    from robo_reward.envs.reward_wrapper import RewardModelWrapper

    args = camera_args(reward="kagi", **{**KEYPOINT_ENV, "max_episode_steps": 5})
    recorders = [RecordViews(make_camera_env(args, 10 + i)) for i in range(2)]
    venv = DummyVecEnv([lambda r=r: r for r in recorders])
    venv.seed(10)
    env = VecRewardModel(venv, load_model("keypoint"), TASK, GAMMA, "kagi", rendered_views=args.cameras)
    policy, obs, actions, vec_rewards = expert_policy("drawer-open-v3"), env.reset(), [], []
    for _ in range(12):
        action = np.clip([policy.get_action(o) for o in obs], -1, 1).astype(np.float32)
        actions.append(action)
        obs, rewards, _, _ = env.step(action)
        vec_rewards.append(rewards)
    env.close()
    for i, recorder in enumerate(recorders):
        episodes = recorder.tasks
        assert len(episodes) == 3
        first, second = (e.keypoints.keypoints["object"].world for e in episodes[:2])
        assert not np.allclose(first, second), "the drawer moves between episodes: each has its own keypoints"
        single = RewardModelWrapper(make_camera_env(args, 10 + i), load_model("keypoint"), TASK, GAMMA, "kagi")
        single.reset(seed=10 + i)
        expected = []
        for action in actions:
            _, reward, terminated, truncated, _ = single.step(action[i])
            expected.append(reward)
            if terminated or truncated:
                single.reset()
        single.close()
        np.testing.assert_allclose(np.array(vec_rewards)[:, i], expected, rtol=0, atol=1e-6)


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
                       bc_weight=0.4, init_temperature=0.05, out=str(tmp_path / "run"))
    out = train(args)
    assert [r["steps"] for r in read_eval_log(out)] == [30, 60]
    learner = RLPD.load(out / "final_model.zip")
    assert learner.utd_ratio == 2 and len(learner.critic.q_networks) == 2
    logged = read_learner_log(out)  # SB3's tensorboard files, logged every 4 episodes of 12 steps
    assert set(logged) == set(LEARNER_SCALARS) and all(step <= 60 for pairs in logged.values() for step, _ in pairs)
    first_step, first_temperature = logged["train/ent_coef"][0]
    assert first_step == 48 and 0.045 < first_temperature < 0.05  # decays from init_temperature
    assert logged["train/bc_mse"][0][1] > 0 and logged["train/q_abs_mean"][0][1] > 0
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


def test_the_recipe_records_depth_and_keypoints_and_rlpd_trains_on_the_keypoint_reward(recorder, recorded, tmp_path):
    """``--keypoints``: each camera's depth as a feature (the env's render, exactly) and each
    episode's ground-truth keypoints at its first frame in the sidecar; `train` then fills
    the demo buffer with keypoint rewards and learns online with them."""
    from robo_reward.data.lerobot import read_recorded
    from robo_reward.envs.depth import DepthViews
    from robo_reward.envs.keypoints import GroundTruthKeypoints
    from robo_reward.envs.metaworld import make_metaworld_env

    config = recorder.RecordConfig(tasks=("drawer-open-v3",), cameras=("corner",), size=48, successes=1,
                                   action_repeat=2, max_steps=60, tail=3, vcodec="h264", shadows=False, keypoints=True)
    dataset = recorder.record_dataset(config, tmp_path / "demos", "robo_reward/test_keypoint_demos")
    (demo,) = load_demonstrations(dataset, ("corner",), depth=True, keypoints=True)
    seed = read_recorded(dataset)["episodes"][0]["seed"]
    env = GroundTruthKeypoints(DepthViews(make_metaworld_env("drawer-open-v3", cameras=("corner",), image_size=48,
                                                             shadows=False, action_repeat=2)),
                               "open the drawer", "drawer-open-v3")
    obs, info = env.reset(seed=seed)
    env.close()
    np.testing.assert_array_equal(demo.depth["corner"][0], obs["depth"]["corner"])
    assert demo.keypoints.to_dict() == info["task"].keypoints.to_dict()
    with pytest.raises(InputError, match="--keypoints"):
        load_demonstrations(recorded, VIEWS, depth=True)
    with pytest.raises(InputError, match="--keypoints"):
        load_demonstrations(recorded, VIEWS, keypoints=True)

    args = camera_args(algo="rlpd", demos=str(dataset), reward="kagi", total_steps=30, learning_starts=10,
                       batch_size=16, eval_every=30, eval_episodes=1, checkpoint_every=30,
                       out=str(tmp_path / "run"), **{**KEYPOINT_ENV, "max_episode_steps": 15})
    out = train(args)
    learner = RLPD.load(out / "final_model.zip")
    learner.load_replay_buffer(out / "checkpoints" / "model_replay_buffer_30_steps.pkl")
    rewards = learner.replay_buffer.demos.rewards[: learner.replay_buffer.demos.size()].ravel()
    expected = demo_transitions([demo], "kagi", GAMMA, load_model("keypoint"), TASK).rewards
    np.testing.assert_allclose(rewards, expected, atol=1e-6)
