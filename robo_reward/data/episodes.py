"""Episodes: the unit a source yields and a sink writes.

An episode knows its task, its views and how to yield synchronised
:class:`~robo_reward.types.FrameBatch` micro-batches. :class:`VideoEpisode` reads one
video file per view; LeRobot datasets and rosbag2 recordings provide their own episode
classes with the same :class:`~robo_reward.types.Episode` protocol.

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
from typing import Any

import numpy as np

from robo_reward.data.align import sample_times
from robo_reward.data.video import VideoInfo, probe_video, read_frames
from robo_reward.errors import InputError
from robo_reward.sync import RecordingSets, synchronise
from robo_reward.types import FrameBatch, Sampling, Task

MANIFEST_FORMAT = "robo_reward.episodes/v1"
OUTCOMES = ("success", "partial", "failure")


@dataclass
class VideoEpisode:
    """An episode of one video file per view, views synchronised by timestamp.

    Views are cut into sets by :func:`robo_reward.sync.synchronise` (the live node's
    approximate-time synchroniser) with ``slop_s`` (default: half the frame period of the
    fastest view, so views of equal rate pair frame by frame and a slower view is paired
    with the nearest frame of a faster one). A set's ``frame_index`` is the first view's
    frame number. A view with no frame in the first view's time span is an error.
    """

    name: str
    task: Task
    views: dict[str, Path]
    outcome: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    slop_s: float | None = None

    def __post_init__(self) -> None:
        if not self.views:
            raise InputError(f"episode '{self.name}': no views given")
        self.views = {view: Path(path) for view, path in self.views.items()}
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise InputError(f"episode '{self.name}': outcome must be one of {OUTCOMES}, got '{self.outcome}'")
        if self.slop_s is not None and self.slop_s < 0:
            raise InputError(f"episode '{self.name}': slop must be >= 0 s, got {self.slop_s}")

    @property
    def view_names(self) -> list[str]:
        return list(self.views)

    @cached_property
    def infos(self) -> dict[str, VideoInfo]:
        return {view: probe_video(path) for view, path in self.views.items()}

    @cached_property
    def sets(self) -> RecordingSets:
        """The synchronised frame sets of the views."""
        infos = self.infos
        first = infos[self.view_names[0]]
        span = first.timestamps_ns[[0, -1]]
        for view, info in infos.items():
            tolerance = int(0.5e9 / info.fps) if info.fps else 0
            if info.timestamps_ns[-1] + tolerance < span[0] or info.timestamps_ns[0] - tolerance > span[1]:
                raise InputError(
                    f"episode '{self.name}': view '{view}' ({info.path}) has no frames in the time range "
                    f"{span[0] / 1e9:.3f}–{span[1] / 1e9:.3f} s of view '{self.view_names[0]}'"
                )
        fastest = max((info.fps for info in infos.values() if info.fps), default=0.0)
        slop_s = self.slop_s if self.slop_s is not None else (0.5 / fastest if fastest else 0.0)
        return synchronise({view: info.timestamps_ns for view, info in infos.items()}, round(slop_s * 1e9),
                           where=f"episode '{self.name}'")

    def _alignment(self, sampling: Sampling) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        sets = self.sets
        picked = sample_times(sets.stamps_ns, sampling.stride, sampling.fps)
        return sets.stamps_ns[picked], {view: index[picked] for view, index in sets.indices.items()}

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
