"""Approximate time synchronisation and the drop-oldest queue (no timing, no threads needed)."""

from __future__ import annotations

import threading

import pytest

from robo_reward.errors import ConfigError
from robo_reward.stream.queues import DropOldestQueue
from robo_reward.sync import ApproximateTimeSync

MS = 1_000_000


def make(queue_size: int = 5, slop_ms: int = 10, stale_ms: int = 500) -> ApproximateTimeSync[str]:
    return ApproximateTimeSync(("front", "wrist"), queue_size, slop_ms * MS, stale_ms * MS)


def test_equal_stamps_make_one_set_each():
    sync = make()
    sets = []
    for k in range(5):
        stamp = 1000 * MS + k * 33 * MS
        assert sync.add("front", stamp, f"f{k}") == []
        sets += sync.add("wrist", stamp, f"w{k}")
    assert [s.items for s in sets] == [{"front": f"f{k}", "wrist": f"w{k}"} for k in range(5)]
    assert all(s.missing == [] for s in sets)
    assert sync.counters.sets == 5 and sync.counters.unmatched == {"front": 0, "wrist": 0}


def test_jitter_within_slop_matches_and_set_stamp_is_the_newest():
    sync = make()
    sync.add("front", 100 * MS, "f")
    (synced,) = sync.add("wrist", 107 * MS, "w")
    assert synced.stamp_ns == 107 * MS
    assert synced.stamps_ns == {"front": 100 * MS, "wrist": 107 * MS}


def test_unmatchable_messages_are_dropped_and_closest_is_chosen():
    sync = make()
    for stamp in (0, 33, 66, 96):
        sync.add("front", stamp * MS, f"f{stamp}")
    (synced,) = sync.add("wrist", 100 * MS, "w")
    assert synced.items["front"] == "f96"  # the newest within slop, not the oldest
    assert sync.counters.unmatched["front"] == 3


def test_queue_overflow_drops_the_oldest():
    sync = make(queue_size=3)
    for k in range(5):
        sync.add("front", k * 33 * MS, k)
    assert sync.counters.overflow["front"] == 2
    (synced,) = sync.add("wrist", 132 * MS, "w")
    assert synced.items["front"] == 4


def test_stale_view_degrades_then_recovers():
    sync = make(stale_ms=100)
    full = [s for k in range(3) for s in (sync.add("front", k * 33 * MS, k), sync.add("wrist", k * 33 * MS, k))]
    assert sum(len(s) for s in full) == 3
    # wrist stops: front waits for it until its newest stamp is 100 ms behind, then goes on alone
    degraded = []
    for k in range(3, 12):
        degraded += sync.add("front", k * 33 * MS, k)
    assert degraded, "front must not block on a stopped camera"
    assert all(s.missing == ["wrist"] for s in degraded)
    assert all(s.stamps_ns["wrist"] == 66 * MS for s in degraded)  # its last stamp, for the record
    assert sync.stale_streams() == ["wrist"]
    assert sync.counters.degraded_sets == len(degraded)
    # wrist is back: full sets again
    sync.add("wrist", 12 * 33 * MS, 12)
    back = sync.add("front", 12 * 33 * MS, 12)
    assert [s.missing for s in back] == [[]]
    assert sync.stale_streams() == []


def test_a_view_never_seen_goes_stale_after_the_timeout():
    sync = make(stale_ms=100)
    sets = [s for k in range(6) for s in sync.add("front", k * 33 * MS, k)]
    assert sets and sets[0].stamps_ns["wrist"] is None and sets[0].missing == ["wrist"]


def test_set_stamps_only_grow():
    sync = make()
    sync.add("front", 100 * MS, "a")
    assert len(sync.add("wrist", 100 * MS, "a")) == 1
    sync.add("front", 90 * MS, "late")
    assert sync.add("wrist", 95 * MS, "late") == []
    assert sync.counters.out_of_order == 1


def test_sync_refuses_bad_configuration():
    with pytest.raises(ConfigError):
        ApproximateTimeSync((), 5, 0, 1)
    with pytest.raises(ConfigError):
        ApproximateTimeSync(("a", "a"), 5, 0, 1)
    with pytest.raises(ConfigError):
        ApproximateTimeSync(("a",), 0, 0, 1)
    with pytest.raises(ConfigError, match="unknown stream"):
        make().add("side", 0, "x")


def test_drop_oldest_queue_counts_drops_and_batches():
    queue: DropOldestQueue[int] = DropOldestQueue(3)
    for item in range(5):
        queue.put(item)
    assert queue.dropped == 2 and len(queue) == 3
    assert queue.get_batch(2, max_wait_s=0.0, timeout_s=0.0) == [2, 3]
    assert queue.get_batch(8, max_wait_s=0.0, timeout_s=0.0) == [4]
    assert queue.get_batch(8, max_wait_s=0.0, timeout_s=0.01) == []


def test_get_batch_waits_for_a_fuller_batch_and_close_wakes_it():
    queue: DropOldestQueue[int] = DropOldestQueue(8)
    queue.put(0)
    threading.Timer(0.05, lambda: [queue.put(i) for i in (1, 2)]).start()
    assert queue.get_batch(3, max_wait_s=5.0, timeout_s=1.0) == [0, 1, 2]
    threading.Timer(0.05, queue.close).start()
    assert queue.get_batch(3, max_wait_s=5.0, timeout_s=5.0) == []
