"""RLPD on stable-baselines3 (Ball et al. 2023): symmetric demo sampling, LayerNorm critic
ensemble with random-subset targets, update-to-data ratio, action repeat — and a learning
curve: on a sparse-reward task, 10 demonstrations make it learn where SAC without them
does not, in the same budget."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from robo_reward.envs.action_repeat import ActionRepeat
from robo_reward.rl.rlpd import RLPD, LayerNormCritic, SymmetricReplayBuffer


class GoToGoal(gym.Env):
    """x in [-1, 1] starts near -0.3; the action moves it by 0.1·a; reward 1 and the episode
    terminates within 0.05 of the goal +0.6 (9 steps away); 20 steps at most (a truncation), so
    random actions almost never find it."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    goal = 0.6

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = -0.3 + 0.1 * self.np_random.uniform(-1, 1), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.1 * float(np.clip(action[0], -1, 1)), -1, 1))
        self.t += 1
        success = abs(self.x - self.goal) < 0.05
        return np.array([self.x], np.float32), float(success), success, self.t >= 20, {"success": success}


def demonstrations(count: int, seed: int = 0):
    """A scripted expert's transitions (straight to the goal)."""
    env = GoToGoal()
    rows = {k: [] for k in ("observations", "next_observations", "actions", "rewards", "dones")}
    for episode in range(count):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = np.array([np.clip((env.goal - obs[0]) / 0.1, -1, 1)], np.float32)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(rows, (obs, next_obs, action, reward, terminated)):
                rows[key].append(value)
            obs, done = next_obs, terminated or truncated
    return {k: np.array(v, dtype=np.float32) for k, v in rows.items()}


def agent(seed: int, demos: bool, **options) -> RLPD:
    options = {"backup_entropy": False, "ent_coef": "auto_0.1", "tau": 0.02, **options}  # sparse reward: as RLPD's
    model = RLPD(GoToGoal(), seed=seed, learning_starts=100, batch_size=64, utd_ratio=2, device="cpu",
                 policy_kwargs={"net_arch": [64, 64], "n_critics": 4}, **options)
    if demos:
        model.replay_buffer.add_demos(**demonstrations(10))
    return model


def success_rate(model: RLPD, episodes: int = 10) -> float:
    env, wins = GoToGoal(), 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        wins += int(terminated)
    return wins / episodes


def test_batches_are_half_demonstrations():
    model = agent(0, demos=True)
    buffer = model.replay_buffer
    assert isinstance(buffer, SymmetricReplayBuffer) and buffer.demo_count() > 50
    for _ in range(60):  # online data with reward 0 only
        buffer.add(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    batch = buffer.sample(64)
    assert batch.observations.shape == (64, 1)
    assert batch.rewards.sum().item() <= 32 and (batch.observations[:32] == 0).all()  # the online half
    assert not (batch.observations[32:] == 0).all()  # the demo half


def test_the_critics_are_a_layer_norm_ensemble_and_targets_take_a_random_subset(monkeypatch):
    model = agent(0, demos=True, num_min_qs=2)
    critic = model.critic
    assert isinstance(critic, LayerNormCritic) and len(critic.q_networks) == 4
    assert all(any(isinstance(m, th.nn.LayerNorm) for m in q.modules()) for q in critic.q_networks)
    trained = {id(p) for group in critic.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in trained for q in critic.q_networks for p in q.parameters())
    subsets = []
    real = th.randperm
    monkeypatch.setattr(th, "randperm", lambda n, **kw: subsets.append(real(n, **kw)[:2]) or subsets[-1])
    model.learn(120)  # 20 updates after learning_starts
    assert len(subsets) >= 20 and len({tuple(s.tolist()) for s in subsets}) > 1


def test_the_actor_is_updated_once_per_utd_ratio_critic_updates():
    model = agent(0, demos=True)
    model.learn(101)
    actor_before = [p.detach().clone() for p in model.actor.parameters()]
    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    model.train(gradient_steps=1, batch_size=64)  # one critic step, fewer than utd_ratio=2
    assert all(th.equal(a, b) for a, b in zip(actor_before, model.actor.parameters()))
    assert not all(th.equal(a, b) for a, b in zip(critic_before, model.critic.parameters()))
    model.train(gradient_steps=2, batch_size=64)
    assert not all(th.equal(a, b) for a, b in zip(actor_before, model.actor.parameters()))


def test_the_same_seed_trains_the_same_weights():
    first = agent(3, demos=True).learn(300)  # SB3 seeds the global generators when an agent is made
    second = agent(3, demos=True).learn(300)
    assert all(th.equal(a, b) for a, b in zip(first.policy.parameters(), second.policy.parameters()))


def test_the_behaviour_cloning_term_pulls_the_actor_to_the_demonstrated_actions():
    """bc_weight > 0 adds β·mean|Q|·‖μ(s_demo) − a_demo‖² to the actor's loss: after the same
    updates from the same seed, the actor imitates the demos far more closely than without."""
    demos = demonstrations(10)
    observations = th.as_tensor(demos["observations"])
    errors = {}
    for weight in (0.0, 1.0):
        model = agent(5, demos=True, bc_weight=weight)
        model.learn(300)
        with th.no_grad():
            imitated = model.actor(observations, deterministic=True).numpy()
        errors[weight] = float(np.mean((imitated - demos["actions"]) ** 2))
    assert errors[1.0] < 0.5 * errors[0.0], errors
    with pytest.raises(ValueError, match="bc_weight"):
        agent(0, demos=False, bc_weight=-1.0)


def test_action_repeat_sums_rewards_and_stops_at_the_episode_end():
    env = ActionRepeat(GoToGoal(), 3)
    obs, _ = env.reset(seed=0)
    start = float(obs[0])
    obs, reward, terminated, truncated, _ = env.step(np.array([1.0], np.float32))
    assert obs[0] == pytest.approx(start + 0.3) and reward == 0.0
    env.unwrapped.x = 0.5  # the goal is one 0.1 step away: ends after the first of three
    obs, reward, terminated, truncated, _ = env.step(np.array([1.0], np.float32))
    assert terminated and reward == 1.0 and obs[0] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        ActionRepeat(GoToGoal(), 0)


@pytest.mark.slow
def test_ten_demonstrations_make_a_sparse_task_learnable_in_the_budget():
    budget = 400
    with_demos = [success_rate(agent(seed, demos=True).learn(budget)) for seed in (0, 1)]
    without = [success_rate(agent(seed, demos=False).learn(budget)) for seed in (0, 1)]
    assert np.mean(with_demos) >= 0.8, with_demos
    assert np.mean(without) < np.mean(with_demos) - 0.5, (without, with_demos)
