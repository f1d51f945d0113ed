"""Health of the live path: the counters and latency meters of a
:class:`~robo_reward.stream.runner.LiveRewardStream` and their JSON-ready snapshot."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from robo_reward.stream.queues import DropOldestQueue
from robo_reward.stream.records import StreamConfig
from robo_reward.stream.stats import LatencyWindow, RateMeter
from robo_reward.sync import ApproximateTimeSync
from robo_reward.types import Task


class StreamDiagnostics:
    """Counters, rates and latencies of a live stream, and :meth:`diagnostics`.

    A base of :class:`~robo_reward.stream.runner.LiveRewardStream`, which updates the
    counters and holds the state the snapshot reads (annotated below).
    """

    config: StreamConfig
    model_label: str
    _lock: threading.Lock
    _sync: ApproximateTimeSync[Any]
    _pending: DropOldestQueue[Any]
    _task: Task
    _episode: int

    def _init_counters(self, views: Sequence[str]) -> None:
        self.rates = {view: RateMeter() for view in views}
        self.malformed = {view: 0 for view in views}
        self.malformed_reasons: dict[str, dict[str, int]] = {view: {} for view in views}
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

    def diagnostics(self) -> dict[str, Any]:
        """A JSON-ready snapshot: per-view rates, refused messages (in all and per reason) and
        drops, sets, rewards, latencies (ms)."""
        with self._lock:
            counters = self._sync.counters
            stale = set(self._sync.stale_streams())
            views = {
                view: {
                    "rate_hz": round(self.rates[view].rate_hz(), 2),
                    "received": counters.received[view],
                    "malformed": self.malformed[view],
                    "malformed_reasons": dict(self.malformed_reasons[view]),
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
