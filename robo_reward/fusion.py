"""Multi-view fusion of per-view progress (Robo-Dopamine's multi-perspective fusion).

A missing or stale view degrades the estimate and raises the uncertainty instead of
failing: it is left out of the mean and counted as an uninformed view whose progress
could be anywhere in [0, 1] (variance 1/12 of the uniform distribution).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from robo_reward.errors import InputError, ModelOutputError

UNINFORMED_VARIANCE = 1.0 / 12.0


def fuse_views(
    per_view: Mapping[str, np.ndarray],
    valid: Mapping[str, np.ndarray] | None = None,
    weights: Mapping[str, float] | None = None,
    source: str = "",
    frame_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse per-view values of shape (B,) into (fused (B,), uncertainty (B,)).

    ``valid`` marks, per view, the samples whose view was present (default: all); a
    non-finite value of a present view is a model error, named by frame.

    fused is the weighted mean of the valid views; uncertainty is the root of the
    weighted spread of the valid views around it plus 1/12 for every missing view's
    share of the weight, so the more views are missing the larger it gets.
    """
    names = list(per_view)
    values = np.stack([np.asarray(per_view[n], dtype=np.float64) for n in names])  # (V, B)
    mask = np.stack(
        [
            np.ones(values.shape[1], dtype=bool) if valid is None or n not in valid else np.asarray(valid[n], bool)
            for n in names
        ]
    )
    broken = mask & ~np.isfinite(values)
    if broken.any():
        view, samples = names[int(np.argmax(broken.any(axis=1)))], np.flatnonzero(broken.any(axis=0))
        frames = (frame_index[samples] if frame_index is not None else samples)[:5].tolist()
        raise ModelOutputError(f"non-finite progress for {source or 'batch'} frame(s) {frames} (view '{view}')")
    w = np.array([1.0 if weights is None else float(weights.get(n, 1.0)) for n in names])[:, None]
    w_valid = w * mask
    total = w_valid.sum(axis=0)
    if (total <= 0).any():
        empty = np.flatnonzero(total <= 0)
        frames = (frame_index[empty] if frame_index is not None else empty)[:5].tolist()
        raise InputError(f"{source or 'batch'}: no valid view for frame(s) {frames}")
    filled = np.where(mask, values, 0.0)
    fused = (w_valid * filled).sum(axis=0) / total
    spread = (w_valid * (filled - fused) ** 2).sum(axis=0)
    missing = (w * ~mask).sum(axis=0) * UNINFORMED_VARIANCE
    uncertainty = np.sqrt((spread + missing) / w.sum())
    return fused, uncertainty
