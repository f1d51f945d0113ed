"""From synchronised sets to model input and back (:mod:`robo_reward.stream.runner`).

A set waits for the model as a :class:`PendingSet` of frames decoded on arrival;
:func:`collect_set` takes their pixels (a stale view ``None``, with a note);
:func:`shape_runs` splits consecutive decoded sets into runs whose images stack, and
:func:`stack_batch` stacks one run into a :class:`~robo_reward.types.FrameBatch` whose
absent views are zeros with ``view_valid`` False. :func:`select_scores` takes one set's
scores back out of the batch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robo_reward.stream.records import DecodedFrame
from robo_reward.sync import SyncedSet
from robo_reward.types import FrameBatch, Scores

PLACEHOLDER_SHAPE = (16, 16, 3)  # pixels of a view never seen, passed with view_valid False


@dataclass
class PendingSet:
    """A synchronised set waiting for the model, with its arrival time (monotonic s)."""

    synced: SyncedSet[DecodedFrame]
    ready_s: float


@dataclass
class DecodedSet:
    """A set's pixels and notes, ready to batch."""

    pending: PendingSet
    images: dict[str, np.ndarray | None]
    notes: list[str] = field(default_factory=list)


def collect_set(pending: PendingSet, last_shapes: dict[str, tuple[int, ...]]) -> DecodedSet:
    """The pixels of a set: a stale view is ``None`` with a note; the shape of each image
    is recorded in ``last_shapes``."""
    images: dict[str, np.ndarray | None] = {}
    notes = []
    for view, frame in pending.synced.items.items():
        if frame is None:
            images[view] = None
            notes.append(f"view '{view}' stale")
            continue
        images[view] = frame.pixels
        last_shapes[view] = frame.pixels.shape
    return DecodedSet(pending, images, notes)


def shape_runs(items: Sequence[DecodedSet]) -> list[list[int]]:
    """Split consecutive items into runs whose images have equal shapes per view (for stacking)."""
    runs: list[list[int]] = []
    current: dict[str, tuple[int, ...]] = {}
    for i, item in enumerate(items):
        shapes = {v: img.shape for v, img in item.images.items() if img is not None}
        if runs and all(current.get(v, s) == s for v, s in shapes.items()):
            runs[-1].append(i)
            current.update(shapes)
        else:
            runs.append([i])
            current = dict(shapes)
    return runs


def stack_batch(items: Sequence[DecodedSet], views: Sequence[str],
                last_shapes: dict[str, tuple[int, ...]]) -> FrameBatch:
    """One run of equally shaped sets → a batch over ``views``; a view absent from a set is
    zeros marked invalid, shaped like the run's others, else like its last decoded image,
    else :data:`PLACEHOLDER_SHAPE`."""
    stacked: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    for view in views:
        shape = next((d.images[view].shape for d in items if d.images[view] is not None), None)
        shape = shape or last_shapes.get(view, PLACEHOLDER_SHAPE)
        mask = np.array([d.images[view] is not None for d in items])
        stack = np.zeros((len(items), *shape), dtype=np.uint8)
        for i, d in enumerate(items):
            if mask[i]:
                stack[i] = d.images[view]
        stacked[view], valid[view] = stack, mask
    stamps = np.array([d.pending.synced.stamp_ns for d in items], dtype=np.int64)
    return FrameBatch(views=stacked, timestamps_ns=stamps, view_valid=valid, source="live stream")


def select_scores(scores: Scores, index: int) -> Scores:
    """The scores of sample ``index`` as a batch of one."""
    pick = slice(index, index + 1)
    return Scores(
        progress=scores.progress[pick],
        success=scores.success[pick],
        per_view={v: p[pick] for v, p in scores.per_view.items()},
        uncertainty=scores.uncertainty[pick],
    )
