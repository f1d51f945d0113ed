"""Clips as H.264 mp4 bytes in memory (what an OpenAI-compatible server takes as a
``data:video/mp4`` part)."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np

from robo_reward.errors import InputError


def encode_mp4(frames: np.ndarray, fps: float, crf: int = 18) -> bytes:
    """uint8 RGB frames (T, H, W, 3), H and W even, → an H.264 (yuv420p) mp4 at ``fps``."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise InputError(f"a clip needs uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise InputError(f"H.264 needs even frame sizes, got {frames.shape[2]}x{frames.shape[1]}")
    rate = Fraction(fps).limit_denominator(1001)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.time_base = 1 / rate
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for count, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = count
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
