"""The one multi-view synchroniser: approximate time synchronisation of N streams by stamp.

It serves the live node (:class:`ApproximateTimeSync`, fed message by message) and
every recording (:func:`synchronise`, which feeds a recording's stamps to the same class
in stamp order, so a bag or a set of video files is cut into exactly the sets a live
node would have formed from the same messages).

Like ``message_filters.ApproximateTimeSynchronizer`` (its Python implementation): each
stream keeps a bounded queue of its newest messages; a set is emitted greedily as soon
as every live stream holds a message within ``slop`` of the others. Two additions for
cameras on a robot:

* a stream whose newest stamp lags the newest stamp of any stream by more than
  ``stale_after`` is *stale*: sets are then formed from the live streams alone and the
  stale one is reported missing, instead of blocking every other camera;
* set stamps only grow: a set older than the last emitted one is dropped.

Algorithm, run after every arrival: the pivot is the newest head (oldest queued
message) among live streams; heads older than ``pivot − slop`` can never be matched
again (per-stream arrival is in stamp order) and are dropped; once every head is within
``slop`` of the pivot, each live stream contributes its newest message not after the
pivot, and older ones are dropped. The set's stamp is the pivot, its newest member.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from robo_reward.errors import ConfigError, InputError

T = TypeVar("T")


@dataclass(frozen=True)
class SyncedSet(Generic[T]):
    """One synchronised set.

    Attributes:
        stamp_ns: the set's stamp, the newest member's stamp, ns.
        items: stream name → its message, or None for a stale (missing) stream.
        stamps_ns: stream name → stamp of its message; for a missing stream its latest
            stamp seen, or None if it never sent anything.
    """

    stamp_ns: int
    items: dict[str, T | None]
    stamps_ns: dict[str, int | None]

    @property
    def missing(self) -> list[str]:
        return [name for name, item in self.items.items() if item is None]


@dataclass
class SyncCounters:
    """Messages per stream: received, dropped by queue overflow, unmatched, stale, out of order."""

    received: dict[str, int] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    unmatched: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    sets: int = 0
    degraded_sets: int = 0


class ApproximateTimeSync(Generic[T]):
    """Match messages of named streams by stamp (not thread-safe: callers hold a lock).

    Args:
        streams: stream (view) names.
        queue_size: messages kept per stream; the oldest is dropped (and counted) beyond it.
        slop_ns: largest stamp difference within a set, ns.
        stale_after_ns: a stream lagging the newest stamp by more than this is stale, ns.
    """

    def __init__(self, streams: Sequence[str], queue_size: int, slop_ns: int, stale_after_ns: int) -> None:
        if not streams:
            raise ConfigError("synchronizer needs at least one stream")
        if len(set(streams)) != len(streams):
            raise ConfigError(f"stream names must be distinct, got {list(streams)}")
        if queue_size < 1 or slop_ns < 0 or stale_after_ns <= 0:
            raise ConfigError(
                f"need queue_size >= 1, slop >= 0 and stale_after > 0; got {queue_size}, {slop_ns}, {stale_after_ns}"
            )
        self.streams = tuple(streams)
        self.queue_size = queue_size
        self.slop_ns = slop_ns
        self.stale_after_ns = stale_after_ns
        self._stamps: dict[str, list[int]] = {s: [] for s in self.streams}
        self._items: dict[str, list[T]] = {s: [] for s in self.streams}
        self._latest: dict[str, int | None] = {s: None for s in self.streams}
        self._first_ns: int | None = None
        self._newest_ns: int | None = None
        self._last_set_ns: int | None = None
        zero = {s: 0 for s in self.streams}
        self.counters = SyncCounters(dict(zero), dict(zero), dict(zero), dict(zero))

    def add(self, stream: str, stamp_ns: int, item: T) -> list[SyncedSet[T]]:
        """Queue one message; returns the sets it completes (usually zero or one)."""
        if stream not in self._stamps:
            raise ConfigError(f"unknown stream '{stream}' (streams: {', '.join(self.streams)})")
        self.counters.received[stream] += 1
        stamps, items = self._stamps[stream], self._items[stream]
        at = bisect.bisect_left(stamps, stamp_ns)
        if at < len(stamps) and stamps[at] == stamp_ns:
            items[at] = item  # a repeated stamp replaces the queued message
        else:
            stamps.insert(at, stamp_ns)
            items.insert(at, item)
        if len(stamps) > self.queue_size:
            del stamps[0], items[0]
            self.counters.overflow[stream] += 1
        latest = self._latest[stream]
        self._latest[stream] = stamp_ns if latest is None else max(latest, stamp_ns)
        self._first_ns = stamp_ns if self._first_ns is None else min(self._first_ns, stamp_ns)
        self._newest_ns = stamp_ns if self._newest_ns is None else max(self._newest_ns, stamp_ns)
        return self._collect()

    def stale_streams(self) -> list[str]:
        """Streams whose newest stamp lags the newest stamp seen by more than ``stale_after``."""
        if self._newest_ns is None:
            return []
        return [s for s in self.streams if self._newest_ns - self._reference(s) > self.stale_after_ns]

    def _reference(self, stream: str) -> int:
        latest = self._latest[stream]
        return self._first_ns if latest is None else latest

    def _collect(self) -> list[SyncedSet[T]]:
        stale = set(self.stale_streams())
        for stream in stale:
            self.counters.stale[stream] += len(self._stamps[stream])
            self._stamps[stream].clear()
            self._items[stream].clear()
        live = [s for s in self.streams if s not in stale]
        sets: list[SyncedSet[T]] = []
        while live and all(self._stamps[s] for s in live):
            pivot = max(self._stamps[s][0] for s in live)
            pruned = False
            for s in live:
                while self._stamps[s][0] < pivot - self.slop_ns:
                    del self._stamps[s][0], self._items[s][0]
                    self.counters.unmatched[s] += 1
                    pruned = True
                    if not self._stamps[s]:
                        break
            if pruned:
                continue
            chosen: dict[str, T | None] = {}
            stamps: dict[str, int | None] = {}
            for s in self.streams:
                if s in stale:
                    chosen[s], stamps[s] = None, self._latest[s]
                    continue
                pick = bisect.bisect_right(self._stamps[s], pivot) - 1
                chosen[s], stamps[s] = self._items[s][pick], self._stamps[s][pick]
                self.counters.unmatched[s] += pick
                del self._stamps[s][: pick + 1], self._items[s][: pick + 1]
            if self._last_set_ns is not None and pivot <= self._last_set_ns:
                self.counters.out_of_order += 1
                continue
            self._last_set_ns = pivot
            self.counters.sets += 1
            self.counters.degraded_sets += bool(stale)
            sets.append(SyncedSet(pivot, chosen, stamps))
        return sets


@dataclass(frozen=True)
class RecordingSets:
    """The synchronised sets of a recording.

    Attributes:
        stamps_ns: (S,) int64 stamp of each set (its newest member's), increasing.
        indices: view → (S,) int64 position of each set's message in that view's stamps.
    """

    stamps_ns: np.ndarray
    indices: dict[str, np.ndarray]


NEVER_STALE_NS = 1 << 62


def synchronise(stamps_ns: Mapping[str, np.ndarray], slop_ns: int, where: str = "recording") -> RecordingSets:
    """Cut a recording's per-view message stamps into synchronised sets.

    The messages of all views are fed to :class:`ApproximateTimeSync` in stamp order (ties
    in view order), as a live node receives them; offline no view goes stale, so every
    set holds one message of every view within ``slop_ns`` of each other.

    Args:
        stamps_ns: view → (N_view,) int64 stamps, in the view's message order (need not be sorted).
        slop_ns: largest stamp difference within a set, ns.
        where: names the recording in errors.

    Raises InputError naming the recording and views when no set can be formed.
    """
    views = list(stamps_ns)
    arrays = {v: np.asarray(stamps_ns[v], dtype=np.int64) for v in views}
    empty = [v for v in views if len(arrays[v]) == 0]
    if empty:
        raise InputError(f"{where}: view(s) {empty} have no messages")
    longest = max(len(a) for a in arrays.values())
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(views, longest, slop_ns, NEVER_STALE_NS)
    streams = [_in_stamp_order(arrays[v], rank, v) for rank, v in enumerate(views)]
    set_stamps, picked = [], {v: [] for v in views}
    for stamp, _, index, view in heapq.merge(*streams):
        for found in sync.add(view, stamp, index):
            set_stamps.append(found.stamp_ns)
            for v in views:
                picked[v].append(found.items[v])
    if not set_stamps:
        spans = ", ".join(f"'{v}' {arrays[v].min() / 1e9:.3f}–{arrays[v].max() / 1e9:.3f} s" for v in views)
        raise InputError(f"{where}: no set of messages within {slop_ns / 1e9:g} s across views ({spans})")
    return RecordingSets(np.array(set_stamps, dtype=np.int64),
                         {v: np.array(picked[v], dtype=np.int64) for v in views})


def _in_stamp_order(stamps: np.ndarray, rank: int, view: str) -> list[tuple[int, int, int, str]]:
    """(stamp, view rank, message position, view) of one view's messages, sorted by stamp."""
    order = np.argsort(stamps, kind="stable")
    return [(int(stamp), rank, int(i), view) for stamp, i in zip(stamps[order].tolist(), order.tolist())]
