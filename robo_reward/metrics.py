"""Metrics that judge reward models.

* VOC, value-order correlation (GVL, Ma et al. 2024): Spearman ρ between predicted
  progress and frame index on a successful episode; on the same episode reversed it
  must come out negative.
* Success AUROC and completion accuracy over success / partial / failure episodes.
* EPIC (Gleave et al. 2021) and STARC (Skalse et al. 2024) distances between a learned
  and a reference reward on transitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata, spearmanr


def voc(progress: np.ndarray) -> float:
    """Spearman ρ between ``progress`` (T,) and the frame index; NaN if T < 2 or constant."""
    progress = np.asarray(progress, dtype=np.float64)
    if len(progress) < 2 or np.ptp(progress) == 0:
        return float("nan")
    return float(spearmanr(progress, np.arange(len(progress))).statistic)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U with ties counted ½); NaN if one class is absent."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def completion_accuracy(final_success: np.ndarray, completed: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of episodes where (final success probability > threshold) equals the label."""
    final_success = np.asarray(final_success, dtype=np.float64)
    if len(final_success) == 0:
        return float("nan")
    return float(np.mean((final_success > threshold) == np.asarray(completed, dtype=bool)))


def epic_distance(
    reward_a: np.ndarray, reward_b: np.ndarray, gamma: float = 0.99
) -> float:
    """EPIC pseudometric between two rewards tabulated on the same transitions.

    ``reward_x`` has shape (S, A, S): R(s, a, s') over coverage distributions that are
    uniform over the tabulated states and actions. Canonicalisation removes potential
    shaping: C(R)(s,a,s') = R(s,a,s') + γ E[R(s',A,S')] − E[R(s,A,S')] − γ E[R(S,A,S')].
    The distance is √((1 − ρ)/2) with ρ the Pearson correlation of the canonical rewards;
    0 for rewards that differ by shaping and positive scaling, 1 at most.
    """
    canon = [_epic_canonical(np.asarray(r, dtype=np.float64), gamma) for r in (reward_a, reward_b)]
    rho = np.corrcoef(canon[0].ravel(), canon[1].ravel())[0, 1]
    return float(np.sqrt(max(0.0, (1.0 - rho) / 2.0)))


def _epic_canonical(reward: np.ndarray, gamma: float) -> np.ndarray:
    per_state = reward.mean(axis=(1, 2))  # E[R(s, A, S')], shape (S,)
    return (
        reward
        + gamma * per_state[None, None, :]
        - per_state[:, None, None]
        - gamma * reward.mean()
    )


def starc_distance(reward_a: np.ndarray, reward_b: np.ndarray, gamma: float = 0.99) -> float:
    """STARC distance (Skalse et al. 2024) with the EPIC canonicalisation and L2 norm.

    Each reward (S, A, S) is canonicalised, divided by its L2 norm, and the distance is
    half the L2 norm of the difference: 0 for equivalent rewards, at most 1.
    """
    normed = []
    for reward in (reward_a, reward_b):
        canon = _epic_canonical(np.asarray(reward, dtype=np.float64), gamma)
        norm = np.linalg.norm(canon)
        normed.append(canon / norm if norm > 0 else canon)
    return float(np.linalg.norm(normed[0] - normed[1]) / 2.0)


class Interval(NamedTuple):
    """A point estimate with the bounds of its confidence interval."""

    estimate: float
    low: float
    high: float


def bootstrap_ci(
    statistic: Callable[..., float],
    *arrays: np.ndarray,
    strata: np.ndarray | None = None,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic(*arrays)``, resampling rows (episodes).

    ``arrays`` share their first axis (one row per episode); each resample draws rows
    with replacement — within each stratum when ``strata`` (one label per row) is given,
    so that, e.g., every resample keeps the numbers of successes and failures and an AUROC
    stays defined. Resamples whose statistic is NaN are dropped; the interval is NaN when
    the estimate or every resample is. The same ``seed`` gives the same interval.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    if not arrays:
        raise ValueError("bootstrap_ci: no data")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_ci: arrays must have the same length")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    estimate = float(statistic(*arrays))
    if n == 0 or resamples < 1:
        return Interval(estimate, float("nan"), float("nan"))
    labels = np.zeros(n, dtype=int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    groups = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for r in range(resamples):
        rows = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        values[r] = statistic(*(a[rows] for a in arrays))
    values = values[np.isfinite(values)]
    if not np.isfinite(estimate) or len(values) == 0:
        return Interval(estimate, float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))
