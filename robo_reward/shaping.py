"""Turning progress into RL rewards.

Two families live here, kept apart on purpose:

* :class:`PotentialShaper` and :func:`shape_potential` — potential-based shaping
  (Ng, Harada & Russell 1999, "Policy invariance under reward transformations"):
  ``r' = r_task + γ·Φ(s')·(1 − terminated) − Φ(s)``. It leaves the optimal policy
  unchanged. Φ(terminal) = 0 only on true termination; on truncation (a time limit)
  Φ(s') is kept because the learner bootstraps from s'. γ must equal the learner's γ.
* :data:`TRANSFORMS` — other ways to turn progress into reward (raw progress as in
  VLM-RM, delta, centred, success bonus, KAGI's dense-until-success). Each CHANGES the
  optimal policy in general.

:class:`OnlineRewards` makes either kind step by step over N env streams (the simulation
reward wrappers); :func:`shape_episode` and :func:`transform_episode` per recorded episode.

``terminated`` and ``truncated`` are never merged into one ``done``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError


def shape_potential(
    phi: np.ndarray,
    phi_next: np.ndarray,
    task_reward: np.ndarray | float,
    terminated: np.ndarray | bool,
    gamma: float,
    steps: np.ndarray | int = 1,
) -> np.ndarray:
    """Potential-based shaped reward for a batch of transitions s → s'.

    Args:
        phi: Φ(s), shape (N,), in [0, 1].
        phi_next: Φ(s'), shape (N,).
        task_reward: the environment's own reward, shape (N,) or scalar.
        terminated: (N,) bool; True zeroes Φ(s') (true termination only, never truncation).
        gamma: discount factor of the learner, per step.
        steps: (N,) or scalar, the learner steps each transition spans (a transition
            between every k-th frame of a recording spans k): Φ(s') is discounted by
            γ^steps, as for any k-step (semi-MDP) transition, so the shaping stays
            policy-invariant for a learner that discounts per step.

    Returns:
        (N,) float64 shaped rewards.
    """
    check_gamma(gamma)
    phi = np.asarray(phi, dtype=np.float64)
    phi_next = np.asarray(phi_next, dtype=np.float64)
    alive = 1.0 - np.asarray(terminated, dtype=np.float64)
    discount = gamma ** np.asarray(steps, dtype=np.float64)
    return np.asarray(task_reward, dtype=np.float64) + discount * phi_next * alive - phi


def check_gamma(gamma: float, learner_gamma: float | None = None) -> None:
    """Refuse a γ outside (0, 1] or one that differs from the learner's."""
    if not 0.0 < gamma <= 1.0:
        raise ConfigError(f"gamma must be in (0, 1], got {gamma}")
    if learner_gamma is not None and not np.isclose(gamma, learner_gamma, rtol=0, atol=1e-9):
        raise ConfigError(
            f"shaping gamma {gamma} differs from the learner's gamma {learner_gamma}: potential "
            "shaping keeps the optimal policy only when they are equal; set the same gamma in both"
        )


class PotentialShaper:
    """Stateful potential shaping over N parallel streams (N = 1 for one robot).

    Reuses the cached Φ(s') as the next step's Φ(s), so the shaped return telescopes
    even when the model is noisy. Call :meth:`reset` for the streams that start a new
    episode (after ``terminated`` or ``truncated``, before their first step) so that no
    reward is ever shaped across an autoreset boundary.
    """

    def __init__(self, gamma: float, num_streams: int = 1) -> None:
        check_gamma(gamma)
        self.gamma = gamma
        self._phi = np.full(num_streams, np.nan)

    def reset(self, phi0: np.ndarray | float, streams: np.ndarray | None = None) -> None:
        """Start new episodes whose first observation has potential ``phi0``."""
        if streams is None:
            self._phi[:] = phi0
        else:
            self._phi[np.asarray(streams)] = phi0

    def step(
        self,
        phi_next: np.ndarray | float,
        task_reward: np.ndarray | float,
        terminated: np.ndarray | bool,
        truncated: np.ndarray | bool,
    ) -> np.ndarray:
        """Shape one transition per stream; returns (N,) rewards.

        Streams whose episode ended (terminated or truncated) must be :meth:`reset`
        before their next step; stepping them again raises.
        """
        if np.isnan(self._phi).any():
            raise ConfigError("PotentialShaper.step before reset: call reset(phi0) at each episode start")
        phi_next = np.broadcast_to(np.asarray(phi_next, dtype=np.float64), self._phi.shape).copy()
        reward = shape_potential(self._phi, phi_next, task_reward, terminated, self.gamma)
        ended = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
        self._phi = np.where(np.broadcast_to(ended, self._phi.shape), np.nan, phi_next)
        return reward

    @property
    def potential(self) -> np.ndarray:
        """Φ of the current state of each stream (NaN for streams awaiting reset)."""
        return self._phi.copy()


def shape_episode(
    progress: np.ndarray,
    gamma: float,
    task_reward: np.ndarray | None = None,
    terminated: bool = False,
    frame_index: np.ndarray | None = None,
) -> np.ndarray:
    """Shaped rewards for a recorded episode of T observations s_0 … s_{T−1}.

    Row t is the reward of the transition s_t → s_{t+1}. A recording has no observation
    after its last frame; the last row treats the episode end as

    * ``terminated=True`` (the task ended, e.g. success): Φ(s_T) = 0;
    * ``terminated=False`` (the recording stopped — a truncation): s_T is taken to be
      s_{T−1}, so Φ(s_T) = Φ(s_{T−1}).

    ``frame_index`` (T,): the recording frame of each observation when only some frames
    were scored (``--stride k``, ``--fps``); a transition then spans the frames between
    its observations and is discounted by γ^(frames spanned); the last row spans as many
    as the one before it. None: consecutive frames (γ per row).

    Returns (T,) float64.
    """
    progress = np.asarray(progress, dtype=np.float64)
    if task_reward is None:
        task_reward = np.zeros_like(progress)
    phi_next = np.append(progress[1:], progress[-1])
    done = np.zeros(len(progress), dtype=bool)
    done[-1] = terminated
    steps: np.ndarray | int = 1
    if frame_index is not None and len(progress) > 1:
        gaps = np.diff(np.asarray(frame_index, dtype=np.int64))
        if (gaps <= 0).any():
            raise ConfigError("shape_episode: frame_index must increase")
        steps = np.append(gaps, gaps[-1])
    return shape_potential(progress, phi_next, task_reward, done, gamma, steps)


def progress_reward(phi: np.ndarray, phi_next: np.ndarray, success_next: np.ndarray,
                    sparse_next: np.ndarray) -> np.ndarray:
    """Raw progress Φ(s') as the reward (VLM-RM's CLIP reward). Changes the optimal policy."""
    return np.asarray(phi_next, dtype=np.float64)


def delta_reward(phi: np.ndarray, phi_next: np.ndarray, success_next: np.ndarray,
                 sparse_next: np.ndarray) -> np.ndarray:
    """Φ(s') − Φ(s), undiscounted. Changes the optimal policy when γ < 1."""
    return np.asarray(phi_next, dtype=np.float64) - np.asarray(phi, dtype=np.float64)


def centered_reward(phi: np.ndarray, phi_next: np.ndarray, success_next: np.ndarray,
                    sparse_next: np.ndarray) -> np.ndarray:
    """2·Φ(s') − 1, bounded in [−1, 1]. Changes the optimal policy (a per-step offset)."""
    return 2.0 * np.asarray(phi_next, dtype=np.float64) - 1.0


def success_bonus_reward(phi: np.ndarray, phi_next: np.ndarray, success_next: np.ndarray,
                         sparse_next: np.ndarray) -> np.ndarray:
    """Φ(s') plus 1 where the success probability of s' exceeds ½. Changes the optimal policy."""
    return np.asarray(phi_next, dtype=np.float64) + (np.asarray(success_next) > 0.5)


KAGI_DENSE_WEIGHT = 0.5
"""The dense part's weight in :func:`kagi_reward`: below 1, so that no dense reward pays
as much as success (our choice; KAGI's normalisation is not public)."""


def kagi_reward(phi: np.ndarray, phi_next: np.ndarray, success_next: np.ndarray,
                sparse_next: np.ndarray) -> np.ndarray:
    """KAGI's rule (Lee et al. 2024, arXiv 2407.10341): "the dense reward is used for online
    RL if the sparse reward is 0, else the sparse reward is used" — the sparse success
    reward of s' where it is non-zero, else ``KAGI_DENSE_WEIGHT``·Φ(s') (the keypoint
    model's waypoint progress). The sparse reward is the simulator's success flag online;
    offline, where a recording has none, the model's own success (probability > ½) stands
    in for KAGI's success classifier. Changes the optimal policy: it is no potential
    difference, and an agent is paid every step it lingers near the goal."""
    sparse = np.asarray(sparse_next, dtype=np.float64)
    return np.where(sparse > 0, sparse, KAGI_DENSE_WEIGHT * np.asarray(phi_next, dtype=np.float64))


TRANSFORMS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "progress": progress_reward,
    "delta": delta_reward,
    "centered": centered_reward,
    "success-bonus": success_bonus_reward,
    "kagi": kagi_reward,
}
"""Non-invariant reward transforms by name: (Φ(s), Φ(s'), success probability of s', the
task's sparse reward of the transition) of N transitions → (N,) rewards."""

SIMULATOR_REWARDS = ("sparse", "dense")
"""Rewards a simulator gives without a reward model: ``sparse`` its success flag (1/0),
``dense`` its own hand-designed reward."""

REWARD_MODES = ("shaped", *TRANSFORMS)
"""How progress becomes reward, everywhere (labeling, simulation, live): ``shaped``
(policy-invariant potential shaping; in simulation added to the sparse success reward)
or a transform of :data:`TRANSFORMS`."""


def simulator_success(info: Mapping[str, Any]) -> float:
    """A simulator's own success flag from a step's ``info``: Meta-World ``success``,
    panda-gym ``is_success``; 0.0 when it reports neither."""
    return float(info.get("success", info.get("is_success", 0.0)))


class OnlineRewards:
    """Rewards of N env streams made step by step, under one reward mode of
    :data:`REWARD_MODES` — the one computation of every simulation reward wrapper
    (:class:`robo_reward.rl.vec_reward.VecRewardModel`,
    :class:`robo_reward.envs.reward_wrapper.RewardModelWrapper`).

    ``shaped``: ``task_reward + γ·Φ(s')·(1 − terminated) − Φ(s)`` through a
    :class:`PotentialShaper` (the wrappers pass the simulator's success flag as the task
    reward); a transform: ``TRANSFORMS[mode](Φ(s), Φ(s'), success(s'), task_reward)`` (the
    task reward is the sparse reward ``kagi`` switches on). Every mode keeps
    Φ(s) per stream, so each stream must be :meth:`reset` with Φ(s₀) at each episode start.
    """

    def __init__(self, mode: str, gamma: float, num_streams: int = 1) -> None:
        if mode not in REWARD_MODES:
            raise ConfigError(f"unknown reward '{mode}'; choose from {', '.join(REWARD_MODES)}")
        self.mode = mode
        self.shaper = PotentialShaper(gamma, num_streams)

    @property
    def gamma(self) -> float:
        return self.shaper.gamma

    @property
    def potential(self) -> np.ndarray:
        """Φ of the current state of each stream (NaN for streams awaiting reset)."""
        return self.shaper.potential

    def check_learner(self, learner_gamma: float) -> None:
        """Refuse a learner whose γ differs from the shaping's (only ``shaped`` depends on γ)."""
        if self.mode == "shaped":
            check_gamma(self.gamma, learner_gamma)

    def reset(self, phi0: np.ndarray | float, streams: np.ndarray | None = None) -> None:
        """Start new episodes on ``streams`` (default: all) whose first observation has Φ ``phi0``."""
        self.shaper.reset(phi0, streams)

    def step(
        self,
        phi_next: np.ndarray,
        success_next: np.ndarray,
        task_reward: np.ndarray | float,
        terminated: np.ndarray | bool,
        truncated: np.ndarray | bool,
    ) -> np.ndarray:
        """(N,) float64 rewards of one transition per stream; a stream whose episode ended
        (terminated or truncated) awaits :meth:`reset`."""
        phi = self.shaper.potential
        shaped = self.shaper.step(phi_next, task_reward, terminated, truncated)
        if self.mode == "shaped":
            return shaped
        sparse = np.broadcast_to(np.asarray(task_reward, dtype=np.float64), phi.shape)
        return TRANSFORMS[self.mode](phi, np.asarray(phi_next, dtype=np.float64), np.asarray(success_next), sparse)


def transform_episode(mode: str, progress: np.ndarray, success: np.ndarray,
                      sparse: np.ndarray | None = None) -> np.ndarray:
    """A transform's rewards (T,) for a recorded episode, row t for s_t → s_{t+1} as in
    :func:`shape_episode` (the last row's s_T is s_{T−1}, as for a truncation).

    ``sparse`` (T,): the task's sparse reward of each observation (e.g. a recorded success
    flag); None: the model's success probability > ½ stands in for it."""
    progress = np.asarray(progress, dtype=np.float64)
    success = np.asarray(success, dtype=np.float64)
    sparse = (success > 0.5).astype(np.float64) if sparse is None else np.asarray(sparse, dtype=np.float64)
    return TRANSFORMS[mode](progress, np.append(progress[1:], progress[-1]), np.append(success[1:], success[-1]),
                            np.append(sparse[1:], sparse[-1]))
