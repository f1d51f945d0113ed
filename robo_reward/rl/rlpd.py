"""RLPD: sample-efficient SAC seeded with demonstrations (Ball, Smith, Kostrikov & Levine 2023,
"Efficient Online Reinforcement Learning with Offline Data"), on stable-baselines3.

What RLPD changes in SAC, each a small piece here (settings of ``ikostrikov/rlpd``'s
``configs/rlpd_config.py``):

* **symmetric sampling** — every batch is half demonstrations, half online data
  (:class:`SymmetricReplayBuffer`, ``demo_ratio`` 0.5);
* **LayerNorm critics** — a LayerNorm after every hidden layer of every Q network
  (:class:`LayerNormCritic`), which keeps Q from extrapolating wildly off the data;
* **a critic ensemble with random-subset targets** — ``n_critics`` Q networks (10); the
  TD target takes the minimum over a random subset of ``num_min_qs`` (2) target networks
  (REDQ), the actor maximises their mean;
* **update-to-data ratio** — ``utd_ratio`` critic updates per environment step, then one
  actor and one temperature update (``sac_learner.update``);
* target entropy −|A|/2, ``backup_entropy`` (the entropy term in the target) optional;
* optionally (``bc_weight`` > 0, not part of RLPD) a behaviour-cloning term on the
  demonstrations in the actor's loss, scaled as in TD3+BC (Fujimoto & Gu 2021):
  ``β · mean|Q| · ‖μ(s_demo) − a_demo‖²``, so its weight relative to the Q term does not
  depend on the reward's scale.

Action repeat is an environment wrapper (:class:`robo_reward.envs.action_repeat.ActionRepeat`);
its discount, γ per agent step, is what the learner and the shaping use.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import SACPolicy
from torch import nn
from torch.nn import functional as F


def layer_norm_mlp(in_features: int, hidden: list[int]) -> nn.Sequential:
    """Linear → LayerNorm → ReLU per hidden layer, then a linear output of one Q value."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_features, width), nn.LayerNorm(width), nn.ReLU()]
        in_features = width
    return nn.Sequential(*layers, nn.Linear(in_features, 1))


class LayerNormCritic(ContinuousCritic):
    """SB3's continuous critic (``n_critics`` Q networks) with LayerNorm in every hidden layer."""

    def __init__(self, *args: Any, net_arch: list[int], features_dim: int, n_critics: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, net_arch=net_arch, features_dim=features_dim, n_critics=n_critics, **kwargs)
        in_features = features_dim + int(np.prod(self.action_space.shape))
        for i in range(n_critics):
            network = layer_norm_mlp(in_features, list(net_arch))
            self.add_module(f"qf{i}", network)
            self.q_networks[i] = network


class RLPDPolicy(SACPolicy):
    """SAC's policy with a :class:`LayerNormCritic` ensemble."""

    def make_critic(self, features_extractor: Any = None) -> ContinuousCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return LayerNormCritic(**critic_kwargs).to(self.device)


class SymmetricReplayBuffer(ReplayBuffer):
    """The online replay buffer; :meth:`sample` draws ``demo_ratio`` of every batch from the
    demonstrations in :attr:`demos` (a plain ReplayBuffer, filled by :meth:`add_demos`), the
    rest from the online data — RLPD's symmetric sampling. Without demos it is SB3's buffer."""

    def __init__(self, *args: Any, demo_ratio: float = 0.5, demo_capacity: int = 100_000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0.0 <= demo_ratio < 1.0:
            raise ValueError(f"demo_ratio must be in [0, 1), got {demo_ratio}")
        self.demo_ratio = demo_ratio
        self.demos = ReplayBuffer(demo_capacity, self.observation_space, self.action_space, device=self.device,
                                  n_envs=1, optimize_memory_usage=False)

    def add_demos(self, observations: np.ndarray, next_observations: np.ndarray, actions: np.ndarray,
                  rewards: np.ndarray, dones: np.ndarray) -> None:
        """Add demonstration transitions, (T, …) each; ``dones`` marks terminations (not time limits)."""
        for k in range(len(actions)):
            self.demos.add(observations[k][None], next_observations[k][None], actions[k][None],
                           np.array([rewards[k]], dtype=np.float32), np.array([dones[k]], dtype=np.float32),
                           [{}])

    def demo_count(self) -> int:
        return self.demos.size()

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        from_demos = round(batch_size * self.demo_ratio) if self.demo_count() else 0
        online = super().sample(batch_size - from_demos, env)
        if not from_demos:
            return online
        return concat_samples(online, self.demos.sample(from_demos, env))


def concat_samples(a: NamedTuple, b: NamedTuple) -> Any:
    """Two sample batches of the same kind as one (fields that are None stay None)."""
    return type(a)(*(None if x is None else th.cat([x, y], dim=0) for x, y in zip(a, b)))


class RLPD(SAC):
    """SAC with RLPD's critic ensemble, random-subset targets and update-to-data ratio.

    Args (besides SAC's):
        num_min_qs: target critics the TD target takes the minimum over, drawn at random
            from the ensemble each update (RLPD: 2 of 10).
        utd_ratio: critic updates per environment step; the actor and the temperature are
            updated once per ``utd_ratio`` critic updates. ``gradient_steps`` is set to it.
        backup_entropy: subtract the entropy term in the TD target (SAC's default; RLPD's
            configs turn it off for sparse rewards).
        bc_weight: β of the behaviour-cloning term (0: none, as in RLPD; TD3+BC's α = 2.5
            is β = 0.4).
    The policy defaults to :class:`RLPDPolicy` with ``n_critics=10`` and (256, 256) layers,
    the replay buffer to :class:`SymmetricReplayBuffer`; target entropy −|A|/2.
    """

    def __init__(self, env: Any, *, num_min_qs: int = 2, utd_ratio: int = 1, backup_entropy: bool = True,
                 bc_weight: float = 0.0, policy: Any = RLPDPolicy, policy_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        policy_kwargs = {"n_critics": 10, "net_arch": [256, 256], **(policy_kwargs or {})}
        if not 1 <= num_min_qs <= policy_kwargs["n_critics"]:
            raise ValueError(f"num_min_qs must be in 1..n_critics={policy_kwargs['n_critics']}, got {num_min_qs}")
        if utd_ratio < 1:
            raise ValueError(f"utd_ratio must be >= 1, got {utd_ratio}")
        self.num_min_qs = num_min_qs
        self.utd_ratio = utd_ratio
        if bc_weight < 0:
            raise ValueError(f"bc_weight must be >= 0, got {bc_weight}")
        self.backup_entropy = backup_entropy
        self.bc_weight = bc_weight
        kwargs.setdefault("replay_buffer_class", SymmetricReplayBuffer)
        if env is not None:  # BaseAlgorithm.load builds without an env, then restores the saved value
            kwargs.setdefault("target_entropy", -float(np.prod(env.action_space.shape)) / 2)
        super().__init__(policy, env, policy_kwargs=policy_kwargs, gradient_steps=utd_ratio, train_freq=1, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        critic_losses, ent_coefs = [], []
        actor_stats: list[dict[str, float]] = []
        n_critics = len(self.critic.q_networks)
        for step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            ent_coef = th.exp(self.log_ent_coef.detach()) if self.ent_coef_optimizer is not None else self.ent_coef_tensor
            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                subset = th.randperm(n_critics, device=self.device)[: self.num_min_qs]
                next_q = th.cat(self.critic_target(data.next_observations, next_actions), dim=1)[:, subset]
                next_q = next_q.min(dim=1, keepdim=True).values
                if self.backup_entropy:
                    next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = data.rewards + (1 - data.dones) * discounts * next_q
            current_q = self.critic(data.observations, data.actions)
            critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in current_q)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            critic_losses.append(critic_loss.item())
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            if (step + 1) % self.utd_ratio == 0:
                actor_stats.append(self._update_actor(data, ent_coef))
            ent_coefs.append(ent_coef.item())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", float(np.mean(ent_coefs)))
        self.logger.record("train/critic_loss", float(np.mean(critic_losses)))
        for key in actor_stats[0] if actor_stats else ():  # actor_loss, q_abs_mean (the BC term's scale), bc_mse
            self.logger.record(f"train/{key}", float(np.mean([stats[key] for stats in actor_stats])))

    def _update_actor(self, data: ReplayBufferSamples, ent_coef: th.Tensor) -> dict[str, float]:
        """One actor step (maximising the ensemble's mean Q) and one temperature step; returns
        the actor loss, mean |Q| and, with the BC term, its squared action error."""
        actions, log_prob = self.actor.action_log_prob(data.observations)
        log_prob = log_prob.reshape(-1, 1)
        q = th.cat(self.critic(data.observations, actions), dim=1).mean(dim=1, keepdim=True)
        actor_loss = (ent_coef * log_prob - q).mean()
        stats = {"q_abs_mean": q.abs().mean().item()}
        demos = getattr(self.replay_buffer, "demos", None)
        if self.bc_weight > 0 and demos is not None and demos.size():
            demo = demos.sample(max(len(actions) // 2, 1), env=self._vec_normalize_env)
            imitation = F.mse_loss(self.actor(demo.observations, deterministic=True), demo.actions)
            actor_loss = actor_loss + self.bc_weight * q.abs().mean().detach() * imitation
            stats["bc_mse"] = imitation.item()
        self.actor.optimizer.zero_grad()
        actor_loss.backward()
        self.actor.optimizer.step()
        if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
            ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
            self.ent_coef_optimizer.zero_grad()
            ent_coef_loss.backward()
            self.ent_coef_optimizer.step()
        return {"actor_loss": actor_loss.item(), **stats}
