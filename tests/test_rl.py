"""Reward models in the RL loop: real Meta-World rollouts, SB3 VecEnvs and SAC."""

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("robo_reward.envs")  # picks MuJoCo's GL backend before mujoco is imported

from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from robo_reward.errors import ConfigError
from robo_reward.models import load_model
from robo_reward.rl.train import TrainArgs, make_camera_env, read_eval_log, train
from robo_reward.rl.vec_reward import VecRewardModel
from robo_reward.types import FrameBatch, Task

GAMMA = 0.9
TASK = Task("open the drawer")


def tiny_args(**overrides) -> TrainArgs:
    values = dict(task="drawer-open-v3", cameras=("corner",), image_size=24, max_episode_steps=6,
                  reward="shaped", reward_model="clip", gamma=GAMMA, progress_bar=False, record_video=False)
    values.update(overrides)
    return TrainArgs(**values)


@pytest.fixture(scope="module")
def clip_model(tiny_clip_arch):
    return load_model("clip", arch=tiny_clip_arch, pretrained="none", device="cpu")


def reward_stack(clip_model, n_envs=1, seed=0, **kwargs) -> VecRewardModel:
    args = tiny_args()
    venv = DummyVecEnv([lambda i=i: make_camera_env(args, seed + i) for i in range(n_envs)])
    venv.seed(seed)
    return VecRewardModel(venv, clip_model, TASK, GAMMA, rendered_views=args.cameras, **kwargs)


def phi_of(model, views) -> float:
    batch = FrameBatch(views={k: v[None] for k, v in views.items()}, timestamps_ns=np.zeros(1))
    return float(model.score(batch, TASK).progress[0])


def test_shaped_return_identity_in_a_real_rollout_with_truncation(clip_model):
    env = reward_stack(clip_model)
    env.reset()
    phi0 = float(env.rewards.potential[0])
    assert phi0 == pytest.approx(phi_of(clip_model, env.venv.reset_infos[0]["views"]))
    rng = np.random.default_rng(0)
    shaped, task_rewards = [], []
    for _ in range(6):
        _, reward, done, infos = env.step(rng.uniform(-1, 1, (1, 4)).astype(np.float32))
        shaped.append(float(reward[0]))
        task_rewards.append(float(infos[0].get("success", 0.0)))
    assert done[0] and infos[0]["TimeLimit.truncated"], "the 6-step time limit truncates"
    phi_last = infos[0]["progress"]
    discount = GAMMA ** np.arange(6)
    # truncation keeps Φ(s_T): Σγᵗr' = Σγᵗr + γᵀΦ(s_T) − Φ(s_0)
    assert np.dot(discount, shaped) == pytest.approx(np.dot(discount, task_rewards) + GAMMA**6 * phi_last - phi0,
                                                     abs=1e-5)
    # after the auto-reset the stream restarts from the new episode's first observation
    assert env.rewards.potential[0] == pytest.approx(phi_of(clip_model, env.venv.reset_infos[0]["views"]), abs=1e-6)
    env.close()


def test_same_seed_same_first_rewards(clip_model):
    actions = np.random.default_rng(1).uniform(-1, 1, (4, 2, 4)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = reward_stack(clip_model, n_envs=2, seed=3)
        env.reset()
        runs.append([env.step(a)[1] for a in actions])
        env.close()
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))
    assert not np.allclose(runs[0][0], 0)


def test_relabeling_the_replay_buffer_equals_in_loop_rewards(clip_model):
    buffers = []
    for relabel in (False, True):
        env = reward_stack(clip_model, seed=5, relabel=relabel)
        learner = SAC("MlpPolicy", env, gamma=GAMMA, learning_starts=10_000, train_freq=4, seed=5, device="cpu")
        callbacks = []
        if relabel:
            from robo_reward.rl.relabel import RelabelCallback

            callbacks.append(RelabelCallback(env))
        learner.learn(total_timesteps=12, callback=callbacks)
        buffers.append(learner.replay_buffer.rewards[:12].copy())
        env.close()
    np.testing.assert_allclose(buffers[1], buffers[0], atol=1e-6)
    assert np.abs(buffers[0]).sum() > 0


def test_short_sac_run_end_to_end(tmp_path, tiny_clip_arch):
    args = tiny_args(out=str(tmp_path / "run"), total_steps=40, learning_starts=20, batch_size=16,
                     eval_every=20, eval_episodes=1, checkpoint_every=20, record_video=True, init_temperature=0.01,
                     reward_model_options={"arch": tiny_clip_arch, "pretrained": "none", "device": "cpu"})
    out = train(args)
    temperature = SAC.load(out / "final_model.zip", device="cpu").log_ent_coef.exp().item()
    assert 0.009 < temperature < 0.011  # started at init_temperature, 20 Adam steps of 3e-4 in log α since
    rows = read_eval_log(out)
    assert [r["steps"] for r in rows][:2] == [20, 40]
    assert all(0.0 <= r["success_rate"] <= 1.0 for r in rows)
    assert (out / "final_model.zip").is_file() and list((out / "videos").glob("eval_*.mp4"))
    assert list((out / "checkpoints").glob("model_*_steps.zip"))
    assert list((out / "tb").rglob("events.out.tfevents*"))


@pytest.mark.parametrize("overrides,message", [
    ({"task": "drawer-opn-v3"}, "drawer-open-v3"),
    ({"cameras": ("cornerr",)}, "corner"),
    ({"shaping_gamma": 0.95}, "learner's gamma"),
    ({"algo": "ppo", "relabel": True}, "off-policy"),
    ({"reward_model": None}, "needs reward_model"),
    ({"init_temperature": 0.0}, "init_temperature"),
])
def test_bad_configuration_fails_before_training(tmp_path, overrides, message, tiny_clip_arch):
    options = {"arch": tiny_clip_arch, "pretrained": "none", "device": "cpu"}
    args = tiny_args(out=str(tmp_path / "bad"), reward_model_options=options, **overrides)
    with pytest.raises(ConfigError, match=message):
        train(args)
    assert not (tmp_path / "bad" / "eval.csv").exists()


def test_model_needing_a_view_the_env_does_not_render(clip_model):
    fitted = load_model("perceptual")
    fitted.views = {"topview": None}
    args = tiny_args()
    venv = DummyVecEnv([lambda: make_camera_env(args, 0)])
    with pytest.raises(ConfigError, match=r"needs view\(s\) \['topview'\].*renders \['corner'\]"):
        VecRewardModel(venv, fitted, TASK, GAMMA, rendered_views=args.cameras)
    venv.close()


def test_resume_continues_from_the_newest_checkpoint(tmp_path, tiny_clip_arch):
    options = {"arch": tiny_clip_arch, "pretrained": "none", "device": "cpu"}
    args = tiny_args(out=str(tmp_path / "run"), total_steps=30, learning_starts=10, batch_size=8, eval_every=15,
                     eval_episodes=1, checkpoint_every=15, reward_model_options=options)
    train(args)
    assert [r["steps"] for r in read_eval_log(args.out)] == [15, 30]
    args.total_steps, args.resume = 45, True
    out = train(args)
    assert [r["steps"] for r in read_eval_log(out)] == [15, 30, 45]
    assert SAC.load(out / "final_model.zip").num_timesteps == 45


def test_logged_episode_return_is_the_return_the_learner_receives(tmp_path, tiny_clip_arch):
    """``rollout/ep_rew_mean`` (the learner's ep_info_buffer) sums the rewards of the reward
    VecEnv — what the replay buffer holds — not the simulator's own dense reward."""
    reward = "shaped"
    options = {"arch": tiny_clip_arch, "pretrained": "none", "device": "cpu"}
    returns = {}
    for name in (reward, "dense"):
        # SB3 stores a step's transition after the callbacks: the replay buffer saved at step
        # 13 holds the 12 transitions of the first two episodes
        args = tiny_args(out=str(tmp_path / name), reward=name, total_steps=13, learning_starts=100,
                         eval_every=100, eval_episodes=1, checkpoint_every=13, seed=4,
                         reward_model="clip" if name != "dense" else None,
                         reward_model_options=options if name != "dense" else {})
        out = train(args)
        learner = SAC.load(out / "final_model.zip")
        learner.load_replay_buffer(out / "checkpoints" / "model_replay_buffer_13_steps.pkl")
        received = learner.replay_buffer.rewards[:12, 0].astype(np.float64)
        episodes = list(learner.ep_info_buffer)
        assert [e["l"] for e in episodes] == [6, 6]  # two 6-step episodes, each truncated
        np.testing.assert_allclose([e["r"] for e in episodes], received.reshape(2, 6).sum(axis=1), atol=1e-5)
        returns[name] = np.array([e["r"] for e in episodes])
    # same seed, same random actions, same episodes: only the reward differs
    assert not np.allclose(returns[reward], returns["dense"], atol=1e-3)
