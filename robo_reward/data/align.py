"""Offline alignment of views by timestamp: views of different lengths or rates are
matched by time, never by index."""

from __future__ import annotations

import numpy as np


def nearest_indices(reference_ns: np.ndarray, stamps_ns: np.ndarray) -> np.ndarray:
    """For each reference stamp, the index of the nearest stamp in sorted ``stamps_ns``."""
    reference_ns = np.asarray(reference_ns, dtype=np.int64)
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    right = np.clip(np.searchsorted(stamps_ns, reference_ns), 1, len(stamps_ns) - 1) if len(stamps_ns) > 1 else None
    if right is None:
        return np.zeros(len(reference_ns), dtype=np.int64)
    left = right - 1
    take_left = (reference_ns - stamps_ns[left]) <= (stamps_ns[right] - reference_ns)
    return np.where(take_left, left, right).astype(np.int64)


def sample_times(stamps_ns: np.ndarray, stride: int = 1, fps: float | None = None) -> np.ndarray:
    """Indices into ``stamps_ns`` to score: every ``stride``-th frame, or resampled to ``fps``."""
    if fps:
        targets = np.arange(stamps_ns[0], stamps_ns[-1] + 1, int(round(1e9 / fps)), dtype=np.int64)
        picked = np.unique(nearest_indices(targets, stamps_ns))
        return picked[::stride]
    return np.arange(0, len(stamps_ns), stride, dtype=np.int64)
