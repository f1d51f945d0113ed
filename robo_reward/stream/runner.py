"""The live path: synchronise camera frames, micro-batch them, score, shape, publish.

:class:`LiveRewardStream` is transport-free: anything that delivers stamped frames
(a ROS 2 subscription, a simulator loop) calls :meth:`~LiveRewardStream.push`, and every
synchronised set comes back, in stamp order, as one :class:`RewardRecord` given to the
``publish`` callback — valid or not, so a consumer sees every set.

Threads: ``push`` (which decodes the frame, on the caller's thread), ``reject``, ``set_task``
and ``reset_episode`` may be called from any thread; one worker thread
(:meth:`~LiveRewardStream.start`) scores and publishes.

Degradation instead of failure:

* a frame is decoded when it arrives; one that does not decode (or is stamped more than
  ``max_future_s`` ahead of the clock) is refused, counted per view and reason, and never
  enters the synchroniser, so it cannot take the place of a good frame in a set;
* a stale or missing view (see :mod:`robo_reward.sync`) is passed to the model with
  ``view_valid`` False: the model fuses the other views and reports a higher
  uncertainty, and the record flags the view;
* a model error yields records with ``valid`` False and the error in ``status``; a
  failing micro-batch is retried sample by sample, so one bad set spoils only itself.

Shaping: potential-based (:class:`~robo_reward.shaping.PotentialShaper`,
``r = γ·Φ(s') − Φ(s)``) along the stream of valid sets. An episode reset or a task change
starts a new episode from the next scored micro-batch on: its first valid set gets
reward 0 and becomes Φ(s₀). A live stream has no ``terminated`` signal, so episode ends
are handled as truncations (Φ(s') kept); a learner that knows an episode terminated
zeroes the last Φ itself.

This module is the runner loop; its options and records are in
:mod:`~robo_reward.stream.records`, collecting and stacking sets in
:mod:`~robo_reward.stream.batching`, the counters and their snapshot in
:mod:`~robo_reward.stream.diagnostics`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from robo_reward.errors import MalformedMessage
from robo_reward.models.base import RewardModel
from robo_reward.scoring import Scorer
from robo_reward.shaping import PotentialShaper
from robo_reward.stream.batching import (
    DecodedSet,
    PendingSet,
    collect_set,
    select_scores,
    shape_runs,
    stack_batch,
)
from robo_reward.stream.diagnostics import StreamDiagnostics
from robo_reward.stream.queues import DropOldestQueue
from robo_reward.stream.records import DecodedFrame, Frame, RewardRecord, StreamConfig
from robo_reward.sync import ApproximateTimeSync
from robo_reward.types import FrameBatch, Scores, Task

__all__ = ["Frame", "LiveRewardStream", "RewardRecord", "StreamConfig"]

log = logging.getLogger(__name__)


class LiveRewardStream(StreamDiagnostics):
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
        self._sync: ApproximateTimeSync[DecodedFrame] = ApproximateTimeSync(
            config.views, config.queue_size, int(config.slop_s * 1e9), int(config.stale_timeout_s * 1e9)
        )
        self._pending: DropOldestQueue[PendingSet] = DropOldestQueue(config.max_pending)
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
        self._init_counters(config.views)

    # ---------------------------------------------------------------- inputs (any thread)

    def push(self, view: str, frame: Frame) -> None:
        """Decode a frame of ``view`` and queue it; completed sets go to the model's queue.

        A frame that does not decode, or is stamped too far ahead of the clock, is refused
        (see :meth:`reject`) and never matched into a set.
        """
        now = time.monotonic()
        self.rates[view].tick(now)
        try:
            decoded = DecodedFrame(frame.stamp_ns, self._decode(frame))
        except MalformedMessage as exc:
            self.reject(view, exc, frame.stamp_ns)
            return
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not reach the transport
            self.reject(view, MalformedMessage(f"decoder failed: {type(exc).__name__}: {exc}", "decoder_error"),
                        frame.stamp_ns)
            return
        with self._lock:
            synced = self._sync.add(view, frame.stamp_ns, decoded)
            for item in synced:
                if self._throttled(item.stamp_ns):
                    self.throttled += 1
                    continue
                self._pending.put(PendingSet(item, now))

    def _decode(self, frame: Frame) -> np.ndarray:
        ahead_s = (frame.stamp_ns - self._clock_ns()) / 1e9
        if self.config.max_future_s and ahead_s > self.config.max_future_s:
            raise MalformedMessage(
                f"stamped {ahead_s:.3f} s ahead of this node's clock (more than max_future = "
                f"{self.config.max_future_s:g} s): synchronise the clocks (chrony, NTP) or raise max_future",
                "future_stamp",
            )
        return frame.decode()

    def reject(self, view: str, error: MalformedMessage, stamp_ns: int | None = None) -> None:
        """Count a message of ``view`` that cannot be used, under ``error.reason`` (and log
        the first ones and every hundredth)."""
        with self._lock:
            self.malformed[view] += 1
            reasons = self.malformed_reasons[view]
            reasons[error.reason] = reasons.get(error.reason, 0) + 1
            count = self.malformed[view]
        if count <= 3 or count % 100 == 0:
            stamp = "" if stamp_ns is None else f" stamped {stamp_ns / 1e9:.9f}"
            log.warning("view '%s': unusable message%s (#%d, %s): %s", view, stamp, count, error.reason, error)

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
        decoded = [collect_set(p, self._last_shapes) for p in pending]
        results = self._score(decoded)
        for item, (scores, error) in zip(decoded, results):
            self._emit(item, task, scores, error)
        self.batches += 1
        return len(decoded)

    def _score(self, decoded: Sequence[DecodedSet]) -> list[tuple[Scores | None, str]]:
        """Per set: (scores of that one set, "") or (None, the error)."""
        results: list[tuple[Scores | None, str]] = [(None, "no usable view") for _ in decoded]
        usable = [i for i, d in enumerate(decoded) if any(img is not None for img in d.images.values())]
        for run in shape_runs([decoded[i] for i in usable]):
            indices = [usable[i] for i in run]
            batch = stack_batch([decoded[i] for i in indices], self.config.views, self._last_shapes)
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
        return [(select_scores(scores, i), "") for i in range(len(batch))]

    def _emit(self, item: DecodedSet, task: Task, scores: Scores | None, error: str) -> None:
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

