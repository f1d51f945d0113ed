"""The live path: synchronise camera frames, micro-batch them, score, shape, publish.

:class:`LiveRewardStream` is transport-free: anything that delivers stamped frames
(a ROS 2 subscription, a simulator loop) calls :meth:`~LiveRewardStream.push`, and every
synchronised set comes back, in stamp order, as one :class:`RewardRecord` given to the
``publish`` callback — valid or not, so a consumer sees every set.

Threads: ``push``, ``reject``, ``set_task`` and ``reset_episode`` may be called from any
thread; one worker thread (:meth:`~LiveRewardStream.start`) decodes, scores and publishes.

Degradation instead of failure:

* a stale or missing view (see :mod:`robo_reward.sync`) or one whose frame does
  not decode is passed to the model with ``view_valid`` False: the model fuses the other
  views and reports a higher uncertainty, and the record flags the view;
* a model error yields records with ``valid`` False and the error in ``status``; a
  failing micro-batch is retried sample by sample, so one bad set spoils only itself.

Shaping: potential-based (:class:`~robo_reward.shaping.PotentialShaper`,
``r = γ·Φ(s') − Φ(s)``) along the stream of valid sets. An episode reset or a task change
starts a new episode from the next scored micro-batch on: its first valid set gets
reward 0 and becomes Φ(s₀). A live stream has no ``terminated`` signal, so episode ends
are handled as truncations (Φ(s') kept); a learner that knows an episode terminated
zeroes the last Φ itself.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.models.base import RewardModel
from robo_reward.scoring import Scorer
from robo_reward.shaping import PotentialShaper, check_gamma
from robo_reward.stream.queues import DropOldestQueue
from robo_reward.stream.stats import LatencyWindow, RateMeter
from robo_reward.sync import ApproximateTimeSync, SyncedSet
from robo_reward.types import FrameBatch, Scores, Task

log = logging.getLogger(__name__)

PLACEHOLDER_SHAPE = (16, 16, 3)  # pixels of a view never seen, passed with view_valid False


class Frame(Protocol):
    """A stamped camera frame whose pixels are decoded only when it is scored."""

    stamp_ns: int

    def decode(self) -> np.ndarray:
        """uint8 RGB (H, W, 3); raises InputError if the frame is unusable."""
        ...


@dataclass(frozen=True)
class StreamConfig:
    """Options of the live path (seconds and hertz).

    Attributes:
        views: view names, in the order of the records' per-view fields.
        gamma: discount of potential shaping; must equal the learner's γ.
        slop_s: largest stamp difference within a synchronised set.
        queue_size: frames kept per view while waiting for a match.
        stale_after_s: a view lagging the newest stamp by more than this is stale.
        max_batch: most sets per model call.
        max_wait_s: extra wait for a micro-batch to fill after its first set (0: none; a
            batch is then the sets that queued while the model ran — waiting only pays
            off for throughput, e.g. on a GPU, when sets arrive faster than this).
        max_pending: synchronised sets waiting for the model; the oldest is dropped beyond.
        max_rate_hz: most sets scored per second of stamps (0: every set).
    """

    views: tuple[str, ...]
    gamma: float = 0.99
    slop_s: float = 0.05
    queue_size: int = 5
    stale_after_s: float = 0.5
    max_batch: int = 8
    max_wait_s: float = 0.0
    max_pending: int = 16
    max_rate_hz: float = 0.0

    def __post_init__(self) -> None:
        check_gamma(self.gamma)
        if not self.views:
            raise ConfigError("no camera views: give at least one camera")
        checks = {
            "slop_s": self.slop_s >= 0,
            "queue_size": self.queue_size >= 1,
            "stale_after_s": self.stale_after_s > 0,
            "max_batch": self.max_batch >= 1,
            "max_wait_s": self.max_wait_s >= 0,
            "max_pending": self.max_pending >= 1,
            "max_rate_hz": self.max_rate_hz >= 0,
        }
        bad = [f"{name}={getattr(self, name)}" for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid stream option(s): {', '.join(bad)}")


@dataclass(frozen=True)
class RewardRecord:
    """One published reward; the fields of ``robo_reward_msgs/msg/Reward`` (see Reward.msg).

    Floats are NaN when ``valid`` is False; ``view_progress`` is NaN for a missing view.
    Stamps are ns; ``source_stamps_ns`` is 0 for a view never received.
    """

    stamp_ns: int
    reward: float
    progress: float
    success_probability: float
    uncertainty: float
    valid: bool
    status: str
    task: str
    model: str
    episode: int
    step: int
    view_names: tuple[str, ...]
    view_progress: tuple[float, ...]
    view_valid: tuple[bool, ...]
    source_stamps_ns: tuple[int, ...]


@dataclass
class _Pending:
    """A synchronised set waiting for the model, with its arrival time (monotonic s)."""

    synced: SyncedSet[Frame]
    ready_s: float


@dataclass
class _Decoded:
    """A set's pixels and notes, ready to batch."""

    pending: _Pending
    images: dict[str, np.ndarray | None]
    notes: list[str] = field(default_factory=list)


class LiveRewardStream:
    """Stamped frames in, one :class:`RewardRecord` per synchronised set out.

    Args:
        model: the reward model; called with micro-batches of up to ``max_batch`` sets.
        task: the initial task.
        config: stream options.
        publish: called from the worker thread with each record, in stamp order.
        model_label: the model's name in the records (default: ``model.name``).
        clock_ns: wall clock of the stamps, for the stamp-to-publish latency.
    """

    def __init__(
        self,
        model: RewardModel,
        task: Task,
        config: StreamConfig,
        publish: Callable[[RewardRecord], None],
        model_label: str | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.model = model
        self.config = config
        self.model_label = model_label or model.name
        self._publish = publish
        self._clock_ns = clock_ns
        self._lock = threading.Lock()
        self._sync: ApproximateTimeSync[Frame] = ApproximateTimeSync(
            config.views, config.queue_size, int(config.slop_s * 1e9), int(config.stale_after_s * 1e9)
        )
        self._pending: DropOldestQueue[_Pending] = DropOldestQueue(config.max_pending)
        self._task = task
        self._new_episode = False
        self._scorer = Scorer(model, task, batch_size=config.max_batch)
        self._shaper = PotentialShaper(config.gamma)
        self._episode = 0
        self._step = 0
        self._shaper_ready = False
        self._last_accepted_ns: int | None = None
        self._last_shapes: dict[str, tuple[int, ...]] = {}
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.rates = {view: RateMeter() for view in config.views}
        self.malformed = {view: 0 for view in config.views}
        self.reward_rate = RateMeter()
        self.stamp_latency = LatencyWindow()
        self.receive_latency = LatencyWindow()
        self.forward_time = LatencyWindow()
        self.throttled = 0
        self.model_errors = 0
        self.published = 0
        self.invalid = 0
        self.batches = 0
        self.scored_sets = 0

    # ---------------------------------------------------------------- inputs (any thread)

    def push(self, view: str, frame: Frame) -> None:
        """Queue a frame of ``view``; completed sets go to the model's queue."""
        now = time.monotonic()
        self.rates[view].tick(now)
        with self._lock:
            synced = self._sync.add(view, frame.stamp_ns, frame)
            for item in synced:
                if self._throttled(item.stamp_ns):
                    self.throttled += 1
                    continue
                self._pending.put(_Pending(item, now))

    def reject(self, view: str, reason: str) -> None:
        """Count a message of ``view`` that could not be read at all (and log it)."""
        with self._lock:
            self.malformed[view] += 1
            count = self.malformed[view]
        if count <= 3 or count % 100 == 0:
            log.warning("view '%s': unreadable message #%d: %s", view, count, reason)

    def set_task(self, task: Task) -> None:
        """Score with ``task`` from the next micro-batch on; starts a new episode."""
        with self._lock:
            self._task = task
            self._new_episode = True
        log.info("task set to %r", task.instruction)

    def reset_episode(self) -> None:
        """Start a new episode from the next micro-batch on (first valid set: reward 0)."""
        with self._lock:
            self._new_episode = True

    def _throttled(self, stamp_ns: int) -> bool:
        if self.config.max_rate_hz <= 0:
            return False
        if self._last_accepted_ns is not None and stamp_ns - self._last_accepted_ns < 1e9 / self.config.max_rate_hz:
            return True
        self._last_accepted_ns = stamp_ns
        return False

    # ---------------------------------------------------------------- worker

    def start(self) -> None:
        """Start the worker thread that scores and publishes."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="robo-reward-scorer", daemon=True)
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after the micro-batch in progress."""
        self._stop.set()
        self._pending.close()
        if self._worker is not None:
            self._worker.join(timeout_s)
            self._worker = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.process(timeout_s=0.1)
            except Exception:  # nothing may end the live stream; the sets of this batch are lost
                log.exception("scoring a micro-batch failed")

    def process(self, timeout_s: float) -> int:
        """Score one micro-batch of pending sets (waiting up to ``timeout_s`` for one).

        Returns the number of records published. The worker thread calls this in a loop;
        tests may call it directly instead of :meth:`start`.
        """
        pending = self._pending.get_batch(self.config.max_batch, self.config.max_wait_s, timeout_s)
        if not pending:
            return 0
        with self._lock:
            task = self._task
            if self._new_episode:
                self._new_episode = False
                self._episode += 1
                self._step = 0
                self._shaper_ready = False
                self._scorer.set_task(task)
        decoded = [self._decode(p) for p in pending]
        results = self._score(decoded)
        for item, (scores, error) in zip(decoded, results):
            self._emit(item, task, scores, error)
        self.batches += 1
        return len(decoded)

    def _decode(self, pending: _Pending) -> _Decoded:
        images: dict[str, np.ndarray | None] = {}
        notes = []
        for view, frame in pending.synced.items.items():
            if frame is None:
                images[view] = None
                notes.append(f"view '{view}' stale")
                continue
            try:
                images[view] = frame.decode()
                self._last_shapes[view] = images[view].shape
            except Exception as exc:  # noqa: BLE001 - any undecodable frame (InputError, a decoder bug) degrades its view
                images[view] = None
                notes.append(f"view '{view}' unreadable: {exc}")
                self.reject(view, str(exc))
        return _Decoded(pending, images, notes)

    def _score(self, decoded: Sequence[_Decoded]) -> list[tuple[Scores | None, str]]:
        """Per set: (scores of that one set, "") or (None, the error)."""
        results: list[tuple[Scores | None, str]] = [(None, "no usable view") for _ in decoded]
        usable = [i for i, d in enumerate(decoded) if any(img is not None for img in d.images.values())]
        for run in _shape_runs([decoded[i] for i in usable]):
            indices = [usable[i] for i in run]
            batch = self._batch([decoded[i] for i in indices])
            for offset, outcome in enumerate(self._score_batch(batch)):
                results[indices[offset]] = outcome
        return results

    def _score_batch(self, batch: FrameBatch) -> list[tuple[Scores | None, str]]:
        start = time.perf_counter()
        try:
            scores = self._scorer.score(batch)
        except Exception as exc:  # noqa: BLE001 - any model failure must not stop the stream
            if len(batch) > 1:
                return [o for i in range(len(batch)) for o in self._score_batch(batch.select(slice(i, i + 1)))]
            self.model_errors += 1
            if self.model_errors <= 3 or self.model_errors % 100 == 0:
                log.warning("model error #%d (set stamped %d): %s", self.model_errors, int(batch.timestamps_ns[0]), exc)
            return [(None, f"model error: {type(exc).__name__}: {exc}")]
        self.forward_time.add(time.perf_counter() - start)
        self.scored_sets += len(batch)
        return [(_select_scores(scores, i), "") for i in range(len(batch))]

    def _batch(self, items: Sequence[_Decoded]) -> FrameBatch:
        views: dict[str, np.ndarray] = {}
        valid: dict[str, np.ndarray] = {}
        for view in self.config.views:
            shape = next((d.images[view].shape for d in items if d.images[view] is not None), None)
            shape = shape or self._last_shapes.get(view, PLACEHOLDER_SHAPE)
            mask = np.array([d.images[view] is not None for d in items])
            stack = np.zeros((len(items), *shape), dtype=np.uint8)
            for i, d in enumerate(items):
                if mask[i]:
                    stack[i] = d.images[view]
            views[view], valid[view] = stack, mask
        stamps = np.array([d.pending.synced.stamp_ns for d in items], dtype=np.int64)
        return FrameBatch(views=views, timestamps_ns=stamps, view_valid=valid, source="live stream")

    def _emit(self, item: _Decoded, task: Task, scores: Scores | None, error: str) -> None:
        synced = item.pending.synced
        names = self.config.views
        stamps = tuple(int(synced.stamps_ns[v] or 0) for v in names)
        notes = list(item.notes)
        if scores is None:
            notes.append(error)
            nan = math.nan
            reward = progress = success = uncertainty = nan
            per_view = tuple(nan for _ in names)
            view_valid = tuple(False for _ in names)
        else:
            progress = float(scores.progress[0])
            success = float(scores.success[0])
            uncertainty = float(scores.uncertainty[0])
            per_view = tuple(float(scores.per_view[v][0]) if v in scores.per_view else math.nan for v in names)
            view_valid = tuple(item.images[v] is not None and math.isfinite(p) for v, p in zip(names, per_view))
            if self._shaper_ready:
                reward = float(self._shaper.step(progress, 0.0, False, False)[0])
            else:
                self._shaper.reset(progress)
                self._shaper_ready = True
                reward = 0.0
        record = RewardRecord(
            stamp_ns=synced.stamp_ns,
            reward=reward,
            progress=progress,
            success_probability=success,
            uncertainty=uncertainty,
            valid=scores is not None,
            status="; ".join(notes),
            task=task.instruction,
            model=self.model_label,
            episode=self._episode,
            step=self._step,
            view_names=names,
            view_progress=per_view,
            view_valid=view_valid,
            source_stamps_ns=stamps,
        )
        self._step += 1
        try:
            self._publish(record)
        except Exception:  # a failing sink must not stop the stream
            log.exception("publishing the reward stamped %d failed", synced.stamp_ns)
            return
        self.published += 1
        self.invalid += not record.valid
        self.reward_rate.tick()
        self.stamp_latency.add((self._clock_ns() - synced.stamp_ns) / 1e9)
        self.receive_latency.add(time.monotonic() - item.pending.ready_s)

    # ---------------------------------------------------------------- diagnostics

    def diagnostics(self) -> dict[str, Any]:
        """A JSON-ready snapshot: per-view rates and drops, sets, rewards, latencies (ms)."""
        with self._lock:
            counters = self._sync.counters
            stale = set(self._sync.stale_streams())
            views = {
                view: {
                    "rate_hz": round(self.rates[view].rate_hz(), 2),
                    "received": counters.received[view],
                    "malformed": self.malformed[view],
                    "dropped_overflow": counters.overflow[view],
                    "dropped_unmatched": counters.unmatched[view],
                    "dropped_stale": counters.stale[view],
                    "stale": view in stale,
                }
                for view in self.config.views
            }
            task = self._task.instruction
            synced = {
                "sets": counters.sets,
                "degraded_sets": counters.degraded_sets,
                "out_of_order": counters.out_of_order,
                "throttled": self.throttled,
                "dropped_pending": self._pending.dropped,
            }
        return {
            "task": task,
            "model": self.model_label,
            "episode": self._episode,
            "views": views,
            **synced,
            "pending": len(self._pending),
            "published": self.published,
            "invalid": self.invalid,
            "model_errors": self.model_errors,
            "reward_rate_hz": round(self.reward_rate.rate_hz(), 2),
            "batches": self.batches,
            "mean_batch": round(self.scored_sets / self.batches, 2) if self.batches else 0.0,
            "latency_ms": {
                "stamp_to_publish": self.stamp_latency.percentiles_ms(),
                "receive_to_publish": self.receive_latency.percentiles_ms(),
                "model_forward": self.forward_time.percentiles_ms(),
            },
        }


def _select_scores(scores: Scores, index: int) -> Scores:
    """The scores of sample ``index`` as a batch of one."""
    pick = slice(index, index + 1)
    return Scores(
        progress=scores.progress[pick],
        success=scores.success[pick],
        per_view={v: p[pick] for v, p in scores.per_view.items()},
        uncertainty=scores.uncertainty[pick],
    )


def _shape_runs(items: Sequence[_Decoded]) -> list[list[int]]:
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
