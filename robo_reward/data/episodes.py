"""Episodes: the unit a source yields and a sink writes.

An episode knows its task, its views and how to yield synchronised
:class:`~robo_reward.types.FrameBatch` micro-batches. :class:`VideoEpisode` reads one
video file per view; LeRobot datasets and rosbag2 recordings provide their own episode
classes with the same :class:`Episode` protocol.

The episode manifest (``episodes.json``, format ``robo_reward.episodes/v1``) lists
episodes of video files with their task and, where known, their outcome::

    {"format": "robo_reward.episodes/v1",
     "episodes": [{"name": "ep0", "task": {"instruction": "open the drawer"},
                   "views": {"front": "videos/ep0_front.mp4", "wrist": "videos/ep0_wrist.mp4"},
                   "outcome": "success", "split": "fit"}]}
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robo_reward.data.align import nearest_indices, sample_times
from robo_reward.data.video import VideoInfo, probe_video, read_frames
from robo_reward.errors import InputError
from robo_reward.types import FrameBatch, Task

MANIFEST_FORMAT = "robo_reward.episodes/v1"
OUTCOMES = ("success", "partial", "failure")


@dataclass(frozen=True)
class Sampling:
    """Which frames of an episode to score: every ``stride``-th, after resampling to ``fps`` if set."""

    stride: int = 1
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise InputError(f"stride must be >= 1, got {self.stride}")
        if self.fps is not None and self.fps <= 0:
            raise InputError(f"fps must be > 0, got {self.fps}")


@runtime_checkable
class Episode(Protocol):
    """What every source yields: a named episode with a task that produces frame batches."""

    name: str
    task: Task
    outcome: str | None
    metadata: dict[str, Any]

    @property
    def view_names(self) -> list[str]: ...

    def timestamps(self, sampling: Sampling) -> np.ndarray:
        """(T,) int64 ns stamps of the samples that :meth:`iter_batches` will yield."""
        ...

    def iter_batches(self, batch_size: int, sampling: Sampling) -> Iterator[FrameBatch]: ...


@dataclass
class VideoEpisode:
    """An episode of one video file per view, views aligned by timestamp.

    The first view is the time reference: each sampled reference frame is matched to
    the nearest-in-time frame of every other view. Samples outside the time span that
    all views cover are dropped; a view with no frame in the reference's span is an error.
    """

    name: str
    task: Task
    views: dict[str, Path]
    outcome: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.views:
            raise InputError(f"episode '{self.name}': no views given")
        self.views = {view: Path(path) for view, path in self.views.items()}
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise InputError(f"episode '{self.name}': outcome must be one of {OUTCOMES}, got '{self.outcome}'")

    @property
    def view_names(self) -> list[str]:
        return list(self.views)

    @cached_property
    def infos(self) -> dict[str, VideoInfo]:
        return {view: probe_video(path) for view, path in self.views.items()}

    def _alignment(self, sampling: Sampling) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        infos = self.infos
        reference = infos[self.view_names[0]]
        picked = sample_times(reference.timestamps_ns, sampling.stride, sampling.fps)
        ref_stamps = reference.timestamps_ns[picked]
        keep = np.ones(len(picked), dtype=bool)
        for view, info in infos.items():
            tolerance = int(0.5e9 / info.fps) if info.fps else 0
            lo, hi = info.timestamps_ns[0] - tolerance, info.timestamps_ns[-1] + tolerance
            inside = (ref_stamps >= lo) & (ref_stamps <= hi)
            if not inside.any():
                raise InputError(
                    f"episode '{self.name}': view '{view}' ({info.path}) has no frames in the time range "
                    f"{ref_stamps[0] / 1e9:.3f}–{ref_stamps[-1] / 1e9:.3f} s of view '{self.view_names[0]}'"
                )
            keep &= inside
        ref_stamps = ref_stamps[keep]
        indices = {view: nearest_indices(ref_stamps, info.timestamps_ns) for view, info in infos.items()}
        return ref_stamps, indices

    def timestamps(self, sampling: Sampling) -> np.ndarray:
        return self._alignment(sampling)[0]

    def iter_batches(self, batch_size: int, sampling: Sampling) -> Iterator[FrameBatch]:
        stamps, indices = self._alignment(sampling)
        readers = {view: _ordered_reader(self.views[view], idx) for view, idx in indices.items()}
        for start in range(0, len(stamps), batch_size):
            stop = min(start + batch_size, len(stamps))
            images = {view: np.stack([next(reader) for _ in range(start, stop)]) for view, reader in readers.items()}
            yield FrameBatch(
                views=images,
                timestamps_ns=stamps[start:stop],
                frame_index=indices[self.view_names[0]][start:stop],
                source=f"episode '{self.name}'",
            )


def _ordered_reader(path: Path, indices: np.ndarray) -> Iterator[np.ndarray]:
    """Frames at ``indices`` (possibly unsorted after nearest matching) in the given order."""
    order = np.argsort(indices, kind="stable")
    if np.all(order == np.arange(len(order))):
        return read_frames(path, indices)
    frames = list(read_frames(path, indices[order]))
    return iter([frames[i] for i in np.argsort(order)])


def episode_from_views(views: Mapping[str, str | Path], task: str | Task, name: str | None = None) -> VideoEpisode:
    """One episode from ``--view name=path`` arguments."""
    task = task if isinstance(task, Task) else Task(task)
    first = Path(next(iter(views.values())))
    return VideoEpisode(name=name or first.stem, task=task, views={k: Path(v) for k, v in views.items()})


def load_manifest(
    path: str | Path,
    split: str | None = None,
    outcomes: Sequence[str] | None = None,
) -> list[VideoEpisode]:
    """Episodes listed in an ``episodes.json`` (a folder holding one, or the file itself).

    ``split`` keeps only episodes of that split; ``outcomes`` only those outcomes.
    """
    path = Path(path)
    manifest_path = path / "episodes.json" if path.is_dir() else path
    if not manifest_path.is_file():
        raise InputError(f"episode manifest not found: {manifest_path}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{manifest_path}: not a {MANIFEST_FORMAT} manifest")
    root = manifest_path.parent
    episodes = []
    for entry in manifest.get("episodes", []):
        if split is not None and entry.get("split") != split:
            continue
        if outcomes is not None and entry.get("outcome") not in outcomes:
            continue
        extra = {k: v for k, v in entry.items() if k not in {"name", "task", "views", "outcome"}}
        episodes.append(
            VideoEpisode(
                name=entry["name"],
                task=Task.from_dict(entry["task"]),
                views={view: root / rel for view, rel in entry["views"].items()},
                outcome=entry.get("outcome"),
                metadata=extra,
            )
        )
    if not episodes:
        raise InputError(f"{manifest_path}: no episodes match split={split!r} outcomes={outcomes!r}")
    return episodes
