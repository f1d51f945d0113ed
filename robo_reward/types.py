"""The contracts between parts (DESIGN.md §2): Task, FrameBatch, EpisodeContext, Scores, Episode.

Images cross every boundary as ``uint8`` RGB arrays of shape (B, H, W, 3), keyed by
view name (``"front"``, ``"wrist"``…), never by position. Timestamps are integer
nanoseconds. Models do their own resizing and normalisation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from robo_reward.errors import InputError, ModelOutputError
from robo_reward.keypoint_spec import KeypointSpec

EPISODE_TASK = "task"
"""The ``info`` key of a reset that gives the new episode its own :class:`Task` (e.g. its
keypoints); the simulation reward wrappers score the episode with it."""


@dataclass(frozen=True)
class Task:
    """What to reward.

    Attributes:
        instruction: the task in words, e.g. ``"open the drawer"``; never empty.
        baselines: baseline prompts for the VLM-RM goal–baseline projection
            (Rocamonde et al. 2023), e.g. ``("a robot arm",)``.
        goal_images: optional goal images, view name → uint8 (H, W, 3).
        keypoints: optional keypoint spec (KAGI, Lee et al. 2024): named keypoints and the
            waypoints between them, read by the ``keypoint`` reward model.
    """

    instruction: str
    baselines: tuple[str, ...] = ()
    goal_images: Mapping[str, np.ndarray] = field(default_factory=dict)
    keypoints: KeypointSpec | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.instruction, str) or not self.instruction.strip():
            raise InputError("empty task: give a task instruction, e.g. --task 'open the drawer'")
        object.__setattr__(self, "baselines", tuple(b for b in self.baselines if b.strip()))

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"instruction": self.instruction, "baselines": list(self.baselines)}
        if self.keypoints is not None:
            out["keypoints"] = self.keypoints.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping | str) -> Task:
        if isinstance(data, str):
            return cls(data)
        keypoints = data.get("keypoints")
        spec = None if keypoints is None else KeypointSpec.from_dict(keypoints, "task.keypoints")
        return cls(str(data.get("instruction", "")), tuple(data.get("baselines", ())), keypoints=spec)


@dataclass
class FrameBatch:
    """A micro-batch of synchronised multi-view frames.

    Attributes:
        views: view name → uint8 RGB array (B, H, W, 3). Views may differ in H, W.
        timestamps_ns: (B,) int64, the stamp of each synchronised set.
        frame_index: (B,) int64, index of each sample in its episode (for messages).
        state: optional (B, D) float proprioceptive state.
        depth: optional view → float32 (B, H, W) depth of that view's images, metres along
            the optical axis (z in the OpenCV camera frame); 0, NaN or inf where unknown.
        view_valid: optional view → (B,) bool; False marks a missing or stale view
            for that sample (its pixels are then ignored).
        source: where the frames came from (file, episode, topic), for messages.
    """

    views: dict[str, np.ndarray]
    timestamps_ns: np.ndarray
    frame_index: np.ndarray | None = None
    state: np.ndarray | None = None
    view_valid: dict[str, np.ndarray] | None = None
    source: str = ""
    depth: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not self.views:
            raise InputError(f"{self.source or 'batch'}: no camera views")
        self.timestamps_ns = np.asarray(self.timestamps_ns, dtype=np.int64)
        size = len(self.timestamps_ns)
        for name, images in self.views.items():
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
                raise InputError(
                    f"{self.source or 'batch'}: view '{name}' must be uint8 (B, H, W, 3), "
                    f"got {images.dtype} {images.shape}"
                )
            if images.shape[0] != size:
                raise InputError(
                    f"{self.source or 'batch'}: view '{name}' has {images.shape[0]} frames "
                    f"but there are {size} timestamps"
                )
        for name, depth in (self.depth or {}).items():
            images = self.views.get(name)
            if images is None or depth.shape != images.shape[:3]:
                raise InputError(
                    f"{self.source or 'batch'}: depth of view '{name}' must be (B, H, W) like its images "
                    f"{None if images is None else images.shape[:3]}, got {depth.shape}"
                )
        if self.frame_index is None:
            self.frame_index = np.arange(size, dtype=np.int64)
        self.frame_index = np.asarray(self.frame_index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.timestamps_ns)

    @property
    def view_names(self) -> list[str]:
        return list(self.views)

    def valid_mask(self, view: str) -> np.ndarray:
        """(B,) bool: which samples of ``view`` carry a real image."""
        if self.view_valid is None or view not in self.view_valid:
            return np.ones(len(self), dtype=bool)
        return np.asarray(self.view_valid[view], dtype=bool)

    def select(self, index: np.ndarray | slice) -> FrameBatch:
        """The samples at ``index``, in that order."""
        return FrameBatch(
            views={k: v[index] for k, v in self.views.items()},
            timestamps_ns=self.timestamps_ns[index],
            frame_index=self.frame_index[index],
            state=None if self.state is None else self.state[index],
            view_valid=None
            if self.view_valid is None
            else {k: np.asarray(v)[index] for k, v in self.view_valid.items()},
            source=self.source,
            depth=None if self.depth is None else {k: v[index] for k, v in self.depth.items()},
        )

    @staticmethod
    def concat(batches: Sequence[FrameBatch]) -> FrameBatch:
        if not batches:
            raise InputError("cannot concatenate zero batches")
        first = batches[0]
        names = first.view_names
        valid = None
        if any(b.view_valid for b in batches):
            valid = {n: np.concatenate([b.valid_mask(n) for b in batches]) for n in names}
        return FrameBatch(
            views={n: np.concatenate([b.views[n] for b in batches]) for n in names},
            timestamps_ns=np.concatenate([b.timestamps_ns for b in batches]),
            frame_index=np.concatenate([b.frame_index for b in batches]),
            state=None if first.state is None else np.concatenate([b.state for b in batches]),
            view_valid=valid,
            source=first.source,
            depth=None if first.depth is None else {n: np.concatenate([b.depth[n] for b in batches]) for n in first.depth},
        )


@dataclass(eq=False)
class EpisodeContext:
    """What a model may score an episode's frames against besides the frames themselves.

    Models that use context (``RewardModel.uses_context``) receive it in every scoring
    call and refuse to score without it; :class:`robo_reward.scoring.Scorer` carries one
    per episode stream, so no caller has to remember it.

    Attributes:
        first: the episode's first synchronised set, a one-sample batch (an episode
            played backwards starts with its last set).
        cache: what a model derives from the context (e.g. encodings of ``first``),
            keyed by the model, so a long episode pays for it once. Not pickled.
    """

    first: FrameBatch
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if len(self.first) != 1:
            raise InputError(f"an episode context holds one set, got {len(self.first)}")

    @classmethod
    def starting_with(cls, batch: FrameBatch, index: int = 0) -> EpisodeContext:
        """The context of an episode whose first set is sample ``index`` of ``batch``."""
        return cls(batch.select(np.array([index])))

    def __getstate__(self) -> dict[str, Any]:
        return {"first": self.first, "cache": {}}


@dataclass
class Scores:
    """What a reward model says about a batch; every array has shape (B,).

    Attributes:
        progress: the potential Φ, task progress in [0, 1].
        success: probability that the task is done, in [0, 1].
        per_view: view name → progress in [0, 1] from that view alone (NaN where the
            view was missing for that sample).
        uncertainty: ensemble spread or view disagreement, >= 0; 0 when unknown.
    """

    progress: np.ndarray
    success: np.ndarray
    per_view: dict[str, np.ndarray] = field(default_factory=dict)
    uncertainty: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.progress = np.asarray(self.progress, dtype=np.float64)
        self.success = np.asarray(self.success, dtype=np.float64)
        self.per_view = {k: np.asarray(v, dtype=np.float64) for k, v in self.per_view.items()}
        if self.uncertainty is None:
            self.uncertainty = np.zeros_like(self.progress)
        self.uncertainty = np.asarray(self.uncertainty, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.progress)

    def check(self, batch: FrameBatch, model: str) -> Scores:
        """Raise :class:`ModelOutputError` naming the frames if any output is unusable."""
        size = len(batch)
        for name, values in (("progress", self.progress), ("success", self.success),
                             ("uncertainty", self.uncertainty)):
            if values.shape != (size,):
                raise ModelOutputError(
                    f"model '{model}' returned {name} of shape {values.shape}, expected ({size},)"
                )
            bad = ~np.isfinite(values)
            if bad.any():
                frames = batch.frame_index[bad][:5].tolist()
                raise ModelOutputError(
                    f"model '{model}' returned non-finite {name} for {batch.source or 'batch'} "
                    f"frame(s) {frames}"
                )
        return self

    @staticmethod
    def concat(parts: Sequence[Scores]) -> Scores:
        views = list(parts[0].per_view) if parts else []
        return Scores(
            progress=np.concatenate([p.progress for p in parts]),
            success=np.concatenate([p.success for p in parts]),
            per_view={v: np.concatenate([p.per_view[v] for p in parts]) for v in views},
            uncertainty=np.concatenate([p.uncertainty for p in parts]),
        )


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
