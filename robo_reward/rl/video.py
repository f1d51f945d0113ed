"""Rollout videos with the reward model's curve beside the camera views."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from robo_reward.data.video import write_video


def curve_panel(values: Sequence[float], upto: int, height: int, width: int, lo: float, hi: float,
                label: str) -> np.ndarray:
    """An RGB panel (height, width, 3) plotting ``values[:upto + 1]`` over the whole episode's x-range."""
    panel = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    span = hi - lo if hi > lo else 1.0
    count = max(len(values) - 1, 1)

    def point(i: int) -> tuple[float, float]:
        return (4 + (width - 8) * i / count, height - 4 - (height - 8) * (values[i] - lo) / span)

    if lo < 0 < hi:
        zero = height - 4 - (height - 8) * (0 - lo) / span
        draw.line([(4, zero), (width - 4, zero)], fill=(200, 200, 200))
    if upto > 0:
        draw.line([point(i) for i in range(upto + 1)], fill=(38, 70, 83), width=2)
    draw.ellipse([*(c - 2 for c in point(upto)), *(c + 2 for c in point(upto))], fill=(231, 111, 81))
    draw.text((6, 4), f"{label} {values[upto]:+.3f}", fill=(0, 0, 0))
    return np.asarray(panel)


def write_rollout_video(path: Path, frames: Sequence[np.ndarray], values: Sequence[float], fps: float = 20,
                        label: str = "progress") -> Path:
    """Encode camera frames (T, H, W, 3) with a curve of ``values`` beside each; returns ``path``."""
    lo, hi = min(0.0, float(min(values))), max(1.0, float(max(values)))
    height = frames[0].shape[0]
    width = max(2 * height, 160)

    def compose():
        for t, frame in enumerate(frames):
            yield np.concatenate([frame, curve_panel(values, t, height, width, lo, hi, label)], axis=1)

    return write_video(path, compose(), fps)
