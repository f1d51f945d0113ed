"""The one scorer: samples of one or many episode streams → model batches → checked Scores.

Every path that scores frames goes through :class:`Scorer`: offline labeling (local and
Ray), the live reward node and the simulation reward wrappers. It does three jobs so
that no caller can get them wrong:

* **context** — it keeps one :class:`~robo_reward.types.EpisodeContext` per stream (an
  env of a VecEnv, a camera rig, an episode being labeled) and passes it with every
  sample; a sample marked as an episode start, or the first sample of a stream that has
  none, becomes its stream's context (the episode's first set);
* **batching** — whatever the caller hands over is scored in model calls of at most
  ``batch_size`` samples, each sample with its own stream's context;
* **output checks** — :meth:`RewardModel.score` refuses non-finite or misshapen output,
  naming the frames.

Shaping stays in :mod:`robo_reward.shaping` (one formula, used per step online and per
episode offline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.models.base import RewardModel
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task


class Scorer:
    """Score samples of ``num_streams`` parallel episode streams with one model.

    Args:
        model: the reward model.
        task: what to reward (change it with :meth:`set_task`, which starts new episodes;
            an episode may have its own: ``tasks`` of :meth:`score`).
        batch_size: most samples per model call.
        num_streams: parallel episode streams (1 for one recording or one robot).
    """

    def __init__(self, model: RewardModel, task: Task, batch_size: int = 64, num_streams: int = 1) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if num_streams < 1:
            raise ConfigError(f"num_streams must be >= 1, got {num_streams}")
        self.model = model
        self.task = task
        self.batch_size = batch_size
        self._contexts: list[EpisodeContext | None] = [None] * num_streams
        self._tasks: list[Task | None] = [None] * num_streams  # an episode's own task, None: self.task

    @property
    def num_streams(self) -> int:
        return len(self._contexts)

    def begin(self, streams: Sequence[int] | None = None, context: EpisodeContext | None = None) -> None:
        """Start new episodes on ``streams`` (default: all): their next sample becomes their
        first set, unless ``context`` gives the new episodes' context explicitly."""
        for stream in range(self.num_streams) if streams is None else streams:
            self._contexts[int(stream)] = context
            self._tasks[int(stream)] = None

    def set_task(self, task: Task) -> None:
        """Score with ``task`` from now on; every stream starts a new episode."""
        self.task = task
        self.begin()

    def score(
        self,
        batch: FrameBatch,
        streams: Sequence[int] | np.ndarray | None = None,
        starts: Sequence[bool] | np.ndarray | None = None,
        tasks: Sequence[Task | None] | None = None,
    ) -> Scores:
        """Score every sample of ``batch``, in order → Scores of shape (B,).

        Args:
            batch: B samples.
            streams: (B,) the stream of each sample (default: all stream 0).
            starts: (B,) True where a sample is the first set of a new episode of its stream.
            tasks: (B,) for a sample that starts an episode, that episode's own task (e.g. its
                keypoints; None: the scorer's task); ignored elsewhere.
        """
        size = len(batch)
        if size == 0:
            raise ConfigError(f"{batch.source or 'batch'}: nothing to score")
        streams = np.zeros(size, dtype=np.int64) if streams is None else np.asarray(streams, dtype=np.int64)
        starts = np.zeros(size, dtype=bool) if starts is None else np.asarray(starts, dtype=bool)
        if streams.shape != (size,) or starts.shape != (size,) or (tasks is not None and len(tasks) != size):
            raise ConfigError(f"streams, starts and tasks need one entry per sample ({size})")
        if streams.min() < 0 or streams.max() >= self.num_streams:
            raise ConfigError(f"stream ids must be in [0, {self.num_streams}), got {sorted(set(streams.tolist()))}")
        contexts: list[EpisodeContext] = []
        sample_tasks: list[Task] = []
        for i, stream in enumerate(streams.tolist()):
            if starts[i] or self._contexts[stream] is None:
                self._contexts[stream] = EpisodeContext.starting_with(batch, i)
                self._tasks[stream] = None if tasks is None else tasks[i]
            contexts.append(self._contexts[stream])
            sample_tasks.append(self._tasks[stream] or self.task)
        parts = []
        for chunk in _chunks(sample_tasks, self.batch_size):
            part = batch if chunk == slice(0, size) else batch.select(chunk)
            chunk_contexts = contexts[chunk]
            context = chunk_contexts[0] if all(c is chunk_contexts[0] for c in chunk_contexts) else chunk_contexts
            parts.append(self.model.score(part, sample_tasks[chunk.start], context))
        return Scores.concat(parts)


def _chunks(tasks: Sequence[Task], batch_size: int) -> list[slice]:
    """Consecutive runs of at most ``batch_size`` samples scored with one task (one model call each)."""
    out, begin = [], 0
    for end in range(1, len(tasks) + 1):
        if end == len(tasks) or end - begin == batch_size or tasks[end] is not tasks[begin]:
            out.append(slice(begin, end))
            begin = end
    return out


def stack_views(
    samples: Sequence[Mapping[str, np.ndarray]],
    timestamps_ns: Sequence[int] | np.ndarray,
    source: str = "",
    states: Sequence[Any] | None = None,
    depths: Sequence[Mapping[str, np.ndarray]] | None = None,
) -> FrameBatch:
    """One batch from B samples' views (each ``{view: uint8 (H, W, 3)}``, e.g. one per env
    of a VecEnv), with their stamps (B,), and optionally their robot states (each flattened
    by :func:`state_vector` to (D,)) and depth images (each ``{view: float32 (H, W)}`` metres)."""
    if not samples:
        raise ConfigError(f"{source or 'batch'}: no samples to stack")
    names = list(samples[0])
    for sample in samples[1:]:
        if list(sample) != names:
            raise ConfigError(f"{source or 'batch'}: samples render different views: {names} and {list(sample)}")
    depth = None if depths is None else {n: np.stack([d[n] for d in depths]).astype(np.float32) for n in depths[0]}
    return FrameBatch(views={n: np.stack([s[n] for s in samples]) for n in names},
                      timestamps_ns=np.asarray(timestamps_ns, dtype=np.int64), source=source,
                      state=None if states is None else np.stack([state_vector(x) for x in states]),
                      depth=depth)


def check_views(model: RewardModel, rendered_views: Sequence[str]) -> None:
    """Refuse a model that expects a view the env does not render (a simulator must render
    every view the model was built or fitted for)."""
    missing = [v for v in model.expected_views if v not in rendered_views]
    if missing:
        raise ConfigError(
            f"the reward model needs view(s) {missing} but the env renders {list(rendered_views)}: "
            f"add them to the env's cameras"
        )


def state_vector(state: Any) -> np.ndarray:
    """A robot state as one float64 vector: an array flattened, a dict observation (panda-gym's
    ``achieved_goal``, ``desired_goal``, ``observation``) its values in sorted key order, as
    :func:`gymnasium.spaces.flatten` orders a Dict space."""
    if isinstance(state, Mapping):
        return np.concatenate([np.ravel(np.asarray(state[key], dtype=np.float64)) for key in sorted(state)])
    return np.ravel(np.asarray(state, dtype=np.float64))
