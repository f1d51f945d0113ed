"""A bounded, thread-safe queue that drops its oldest item when full, and takes micro-batches.

Live data goes stale: when the consumer falls behind, the newest items matter and the
oldest are dropped (and counted) rather than making every later result later still.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

from robo_reward.errors import ConfigError

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """FIFO of at most ``capacity`` items; :meth:`put` on a full queue drops the oldest.

    Attributes:
        dropped: how many items were dropped so far.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"queue capacity must be >= 1, got {capacity}")
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0

    def __len__(self) -> int:
        with self._ready:
            return len(self._items)

    def put(self, item: T) -> None:
        """Append ``item``, dropping the oldest item if the queue is full."""
        with self._ready:
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._ready.notify()

    def close(self) -> None:
        """Wake every waiting consumer; later :meth:`get_batch` calls return at once."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def get_batch(self, max_items: int, max_wait_s: float, timeout_s: float) -> list[T]:
        """Take a micro-batch of 1 … ``max_items`` items, oldest first.

        Waits up to ``timeout_s`` seconds for a first item (returns [] if none comes or
        the queue is closed), then up to ``max_wait_s`` more seconds for the batch to fill:
        the latency spent buying a larger batch.
        """
        with self._ready:
            if not self._ready.wait_for(lambda: self._items or self._closed, timeout_s) or not self._items:
                return []
            deadline = time.monotonic() + max_wait_s
            while len(self._items) < max_items and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            return [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
