"""Video files on PyAV (FFmpeg): probe, decode selected frames, encode.

Decodes H.264 (including 4:4:4), AV1, VP9 and others in mp4/mkv/webm. One file holds one
view. Frame timestamps come from the container (presentation time of each frame on the
file's clock, usually starting at 0) in integer nanoseconds, so a view whose recording
started later carries its offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np

from robo_reward.atomic import atomic_path
from robo_reward.errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: per-frame presentation stamps (N,) int64 ns on the file's own clock."""

    path: Path
    timestamps_ns: np.ndarray
    fps: float
    width: int
    height: int
    codec: str

    @property
    def num_frames(self) -> int:
        return len(self.timestamps_ns)


def open_video(path: Path) -> av.container.InputContainer:
    """Open a video file, or raise InputError naming it (missing, corrupt, no video stream)."""
    if not path.is_file():
        raise InputError(f"video file not found: {path}")
    if av.logging.get_level() is not None:
        # A Python log callback (installed by LeRobot's import: av.logging.set_level(ERROR))
        # can deadlock threaded decoding when a decoder is freed mid-stream; FFmpeg's own
        # logging to stderr cannot.
        av.logging.set_level(None)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot open video (corrupt, truncated or not a video): {exc}") from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: holds no video stream (corrupt or truncated file?)")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Read the frame stamps of ``path`` from its packets (no decoding)."""
    path = Path(path)
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        pts: list[int] = []
        try:
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if packet.size and stamp is not None:
                    pts.append(stamp)
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: corrupt or truncated video after frame {len(pts)}: {exc}") from exc
        if not pts:
            raise InputError(f"{path}: video has zero frames")
        if stream.frames and len(pts) < stream.frames:
            raise InputError(
                f"{path}: truncated video: its index lists {stream.frames} frames but frame {len(pts)} "
                "and later are missing"
            )
        time_base = stream.time_base or Fraction(1, 90000)
        ordered = np.sort(np.asarray(pts, dtype=np.int64))
        stamps = (ordered * time_base.numerator * 1_000_000_000) // time_base.denominator
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else _fps_from_stamps(stamps)
        return VideoInfo(
            path=path,
            timestamps_ns=stamps.astype(np.int64),
            fps=fps,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
        )
    finally:
        container.close()


def _fps_from_stamps(stamps: np.ndarray) -> float:
    if len(stamps) < 2:
        return 0.0
    return float(1e9 / np.median(np.diff(stamps)))


def read_frames(path: str | Path, indices: np.ndarray) -> Iterator[np.ndarray]:
    """Decode ``path`` once and yield the RGB frame (H, W, 3) uint8 at each of ``indices``.

    ``indices`` must be non-decreasing (repeats allowed: the frame is yielded again).
    Raises InputError naming the file and frame if the stream is corrupt or ends early.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) == 0:
        return
    if np.any(np.diff(indices) < 0):
        raise ValueError("read_frames needs non-decreasing indices")
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        cursor = 0
        frame_number = -1
        try:
            for frame_number, frame in enumerate(container.decode(stream)):
                if frame_number < indices[cursor]:
                    continue
                image = frame.to_ndarray(format="rgb24")
                while cursor < len(indices) and indices[cursor] == frame_number:
                    yield image
                    cursor += 1
                if cursor == len(indices):
                    return
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: cannot decode frame {frame_number + 1}: {exc}") from exc
        raise InputError(
            f"{path}: video ended after {frame_number + 1} decodable frames, "
            f"frame {indices[cursor]} is missing (truncated or corrupt file)"
        )
    finally:
        container.close()


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    crf: int = 18,
    start_s: float = 0.0,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) at ``fps`` to ``path`` atomically; returns the path.

    ``start_s`` offsets every presentation stamp (a view whose recording began later).
    mp4 files are written with the index first (faststart), so a cut file keeps its
    leading frames decodable.
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    container_format = _container_format(path)
    options = {"movflags": "faststart"} if container_format == "mp4" else {}
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=container_format, options=options) as container:
            stream = container.add_stream(codec, rate=rate)
            stream.time_base = 1 / rate
            offset = round(start_s * rate)
            stream.pix_fmt = pix_fmt
            if codec in {"libx264", "libx265"}:
                stream.options = {"crf": str(crf)}
            count = 0
            for image in frames:
                if count == 0:
                    stream.height, stream.width = image.shape[:2]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts = offset + count
                container.mux(stream.encode(frame))
                count += 1
            if count == 0:
                raise InputError(f"{path}: no frames to write")
            container.mux(stream.encode(None))
    return path


def _container_format(path: Path) -> str:
    return {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}.get(path.suffix.lower(), "mp4")
