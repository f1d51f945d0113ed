"""Perceptual rewards from a few demonstrations (Sermanet, Xu & Levine 2017,
"Unsupervised Perceptual Rewards for Imitation Learning").

Fitting, on frozen image features of a handful of successful demos:

1. **Step discovery** — each demo is split into K contiguous segments that minimise the
   total within-segment variance of its features (exact dynamic programme over split
   points on a PCA projection; the paper searches split points for the same objective).
2. **Feature selection** — per step and per view, features are ranked by how well they
   separate in-step from out-of-step frames, |μ⁺ − μ⁻| / (σ⁺ + σ⁻), and the top M kept.
3. **Per-step reward** — a diagonal Gaussian over the selected features of in-step
   frames; the step's reward is its mean log-likelihood
   ℓᵢ(x) = −½·mean_j ((x_j − μᵢⱼ)/σᵢⱼ)².

Scoring turns the per-step rewards into a bounded potential, as the Scores contract
needs Φ ∈ [0, 1]: the posterior over steps pᵢ ∝ exp(ℓᵢ/τ) (τ fitted on the demos) and
Φ = Σᵢ pᵢ · i/(K − 1), so later steps weigh more — the paper instead sums per-step
rewards with weights 2^(i−1), which is unbounded below. The success probability is a
naive-Bayes likelihood ratio between the final step's Gaussian and the out-of-final-step
Gaussian on the final step's features, calibrated by logistic regression on the demos.
Each view has its own steps' statistics (the segmentation is shared across views);
views are fused with :func:`robo_reward.fusion.fuse_views`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, softmax
from tqdm.auto import tqdm

from robo_reward.errors import ConfigError, InputError
from robo_reward.fusion import fuse_views
from robo_reward.models import register_model
from robo_reward.models.base import LearnedRewardModel
from robo_reward.models.features import make_features
from robo_reward.types import Episode, EpisodeContext, FrameBatch, Sampling, Scores, Task

SIGMA_FLOOR = 0.1  # in units of the feature's standard deviation over all demo frames


@dataclass
class PerceptualConfig:
    """Options of the ``perceptual`` model.

    Attributes:
        num_steps: K, the number of intermediate steps to discover (>= 2).
        features: frozen feature extractor, ``pixels[:N]`` (offline) or ``clip:ARCH:TAG``.
        features_per_step: M, features kept per step and view.
        segmentation_dims: PCA dimensions used to discover steps.
        stride: use every stride-th demo frame when fitting.
        batch_size: frames per feature-extraction call.
    """

    num_steps: int = 4
    features: str = "pixels:16"
    features_per_step: int = 32
    segmentation_dims: int = 16
    stride: int = 1
    batch_size: int = 64


@dataclass
class ViewSteps:
    """Fitted statistics of one view; arrays over K steps and M selected features."""

    mean: np.ndarray  # (D,) feature standardisation
    scale: np.ndarray  # (D,)
    selected: np.ndarray  # (K, M) int feature indices
    mu: np.ndarray  # (K, M) in-step means
    sigma: np.ndarray  # (K, M) in-step standard deviations
    final_out_mu: np.ndarray  # (M,) out-of-final-step means on the final step's features
    final_out_sigma: np.ndarray  # (M,)
    temperature: float
    success_calibration: tuple[float, float]  # (a, b) of σ(a·llr + b)


def segment(features: np.ndarray, num_steps: int) -> np.ndarray:
    """Optimal split of a (T, D) sequence into ``num_steps`` contiguous segments.

    Minimises the sum over segments of the within-segment sum of squared deviations.
    Returns (T,) int step labels 0 … K−1, non-decreasing.
    """
    length = len(features)
    if length < num_steps:
        raise InputError(f"a demo of {length} frames cannot be split into {num_steps} steps")
    cum = np.vstack([np.zeros(features.shape[1]), np.cumsum(features, axis=0)])
    cum_sq = np.concatenate([[0.0], np.cumsum((features**2).sum(axis=1))])

    def cost(start: np.ndarray, stop: int) -> np.ndarray:  # SSE of features[start:stop] per start
        n = stop - start
        total = cum[stop] - cum[start]
        return cum_sq[stop] - cum_sq[start] - (total**2).sum(axis=1) / n

    best = np.full((num_steps + 1, length + 1), np.inf)
    back = np.zeros((num_steps + 1, length + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, num_steps + 1):
        for stop in range(k, length + 1):
            starts = np.arange(k - 1, stop)
            candidates = best[k - 1, starts] + cost(starts, stop)
            arg = int(np.argmin(candidates))
            best[k, stop], back[k, stop] = candidates[arg], starts[arg]
    labels = np.empty(length, dtype=np.int64)
    stop = length
    for k in range(num_steps, 0, -1):
        start = back[k, stop]
        labels[start:stop] = k - 1
        stop = start
    return labels


def _step_log_likelihoods(x: np.ndarray, steps: ViewSteps) -> np.ndarray:
    """(B, D) standardised features → (B, K) mean Gaussian log-likelihood per step."""
    picked = x[:, steps.selected]  # (B, K, M)
    return -0.5 * (((picked - steps.mu) / steps.sigma) ** 2).mean(axis=2)


def _final_log_ratio(x: np.ndarray, steps: ViewSteps) -> np.ndarray:
    """(B,) mean log-likelihood ratio of the final step against the rest."""
    picked = x[:, steps.selected[-1]]
    inside = -0.5 * ((picked - steps.mu[-1]) / steps.sigma[-1]) ** 2 - np.log(steps.sigma[-1])
    outside = -0.5 * ((picked - steps.final_out_mu) / steps.final_out_sigma) ** 2 - np.log(steps.final_out_sigma)
    return (inside - outside).mean(axis=1)


def _fit_temperature(loglik: np.ndarray, labels: np.ndarray) -> float:
    """τ maximising the demos' step-label likelihood under softmax(ℓ/τ)."""
    grid = np.logspace(-3, 1, 49)
    nll = [-log_softmax(loglik / t, axis=1)[np.arange(len(labels)), labels].mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def _fit_logistic(score: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(a, b) of σ(a·score + b) by maximum likelihood, lightly L2-regularised."""

    def loss(params: np.ndarray) -> float:
        z = params[0] * score + params[1]
        return float(np.mean(np.logaddexp(0, z) - target * z) + 1e-3 * params[0] ** 2)

    result = minimize(loss, x0=np.array([1.0, 0.0]), method="L-BFGS-B")
    return float(result.x[0]), float(result.x[1])


@register_model("perceptual")
class PerceptualRewardModel(LearnedRewardModel):
    """Few-shot perceptual reward (Sermanet et al. 2017) on frozen features, per view then fused."""

    config_class = PerceptualConfig

    def __init__(self, config: PerceptualConfig) -> None:
        super().__init__(config)
        if config.num_steps < 2:
            raise ConfigError(f"num_steps must be >= 2, got {config.num_steps}")
        self.features = make_features(config.features)
        self.views: dict[str, ViewSteps] = {}
        self.task_instruction: str | None = None

    @property
    def expected_views(self) -> tuple[str, ...]:
        return tuple(self.views)

    def _extract(self, episode: Episode) -> dict[str, np.ndarray]:
        chunks: dict[str, list[np.ndarray]] = {}
        for batch in episode.iter_batches(self.config.batch_size, Sampling(stride=self.config.stride)):
            for view, images in batch.views.items():
                chunks.setdefault(view, []).append(self.features(images))
        return {view: np.concatenate(parts) for view, parts in chunks.items()}

    def fit(self, episodes: Sequence[Episode]) -> PerceptualRewardModel:
        """Fit from successful demonstrations (all must show the same views and task)."""
        if not episodes:
            raise InputError("perceptual model: no demonstrations to fit from")
        view_names = episodes[0].view_names
        for episode in episodes:
            if episode.view_names != view_names:
                raise InputError(
                    f"demo '{episode.name}' has views {episode.view_names}, the first demo has {view_names}"
                )
        demos = [self._extract(e) for e in tqdm(episodes, desc="features", unit="demo")]
        stats = {}
        for view in view_names:
            stacked = np.concatenate([d[view] for d in demos])
            stats[view] = (stacked.mean(axis=0), stacked.std(axis=0) + 1e-6)
        labels = self._discover_steps(demos, stats, view_names)
        all_labels = np.concatenate(labels)
        self.views = {
            view: self._fit_view(
                np.concatenate([(d[view] - stats[view][0]) / stats[view][1] for d in demos]),
                all_labels,
                stats[view],
            )
            for view in view_names
        }
        self.task_instruction = episodes[0].task.instruction
        return self

    def _discover_steps(self, demos: list[dict[str, np.ndarray]], stats: dict, views: list[str]) -> list[np.ndarray]:
        joined = [np.hstack([(d[v] - stats[v][0]) / stats[v][1] for v in views]) for d in demos]
        stacked = np.concatenate(joined)
        centre = stacked.mean(axis=0)
        _, _, components = np.linalg.svd(stacked - centre, full_matrices=False)
        basis = components[: self.config.segmentation_dims].T
        return [segment((j - centre) @ basis, self.config.num_steps) for j in joined]

    def _fit_view(self, x: np.ndarray, labels: np.ndarray, standardisation: tuple) -> ViewSteps:
        k, m = self.config.num_steps, min(self.config.features_per_step, x.shape[1])
        selected, mus, sigmas = [], [], []
        for step in range(k):
            inside, outside = x[labels == step], x[labels != step]
            separation = np.abs(inside.mean(0) - outside.mean(0)) / (inside.std(0) + outside.std(0) + 1e-6)
            chosen = np.argsort(-separation, kind="stable")[:m]
            selected.append(chosen)
            mus.append(inside[:, chosen].mean(0))
            sigmas.append(np.maximum(inside[:, chosen].std(0), SIGMA_FLOOR))
        final_outside = x[labels != k - 1][:, selected[-1]]
        steps = ViewSteps(
            mean=standardisation[0],
            scale=standardisation[1],
            selected=np.stack(selected),
            mu=np.stack(mus),
            sigma=np.stack(sigmas),
            final_out_mu=final_outside.mean(0),
            final_out_sigma=np.maximum(final_outside.std(0), SIGMA_FLOOR),
            temperature=1.0,
            success_calibration=(1.0, 0.0),
        )
        steps.temperature = _fit_temperature(_step_log_likelihoods(x, steps), labels)
        steps.success_calibration = _fit_logistic(_final_log_ratio(x, steps), (labels == k - 1).astype(float))
        return steps

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        if not self.views:
            raise ConfigError("perceptual model is not fitted: run `robo-reward fit perceptual` or .fit(demos)")
        missing = [v for v in self.views if v not in batch.views]
        if len(missing) == len(self.views):
            raise InputError(
                f"{batch.source or 'batch'}: the perceptual model was fitted on views {list(self.views)}; "
                f"the batch has {batch.view_names}"
            )
        k = self.config.num_steps
        step_value = np.arange(k) / (k - 1)
        per_view, success_views, valid = {}, {}, {}
        for view, steps in self.views.items():
            if view not in batch.views:
                per_view[view] = success_views[view] = np.full(len(batch), np.nan)
                valid[view] = np.zeros(len(batch), dtype=bool)
                continue
            x = (self.features(batch.views[view]) - steps.mean) / steps.scale
            posterior = softmax(_step_log_likelihoods(x, steps) / steps.temperature, axis=1)
            a, b = steps.success_calibration
            valid[view] = batch.valid_mask(view)
            per_view[view] = np.where(valid[view], posterior @ step_value, np.nan)
            success_views[view] = np.where(valid[view], expit(a * _final_log_ratio(x, steps) + b), np.nan)
        progress, uncertainty = fuse_views(per_view, valid, source=batch.source, frame_index=batch.frame_index)
        success, _ = fuse_views(success_views, valid, source=batch.source, frame_index=batch.frame_index)
        return Scores(progress=progress, success=success, per_view=per_view, uncertainty=uncertainty)

    def state_dict(self) -> dict[str, Any]:
        if not self.features.reproducible:
            raise ConfigError(
                f"cannot save a model fitted on {self.features.spec}: random weights are not reproducible; "
                "use pixel features or pretrained CLIP weights"
            )
        # Arrays travel as tensors (same dtype and bits) and scalars as Python floats, so the
        # checkpoint loads with torch.load(weights_only=True).
        return {
            "task_instruction": self.task_instruction,
            "views": {
                view: {
                    key: torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray)
                    else [float(v) for v in value] if key == "success_calibration"
                    else float(value)
                    for key, value in vars(steps).items()
                }
                for view, steps in self.views.items()
            },
        }

    @classmethod
    def from_state(cls, config: PerceptualConfig, state: dict[str, Any]) -> PerceptualRewardModel:
        model = cls(config)
        model.task_instruction = state["task_instruction"]
        model.views = {}
        for view, fields in state["views"].items():
            arrays = {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in fields.items()}
            arrays["temperature"] = float(arrays["temperature"])
            arrays["success_calibration"] = tuple(float(v) for v in arrays["success_calibration"])
            model.views[view] = ViewSteps(**arrays)
        return model
