"""Rolling statistics for diagnostics: event rates and latency percentiles (thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RateMeter:
    """Events per second over the last ``window_s`` seconds of the monotonic clock."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate_hz(self, now: float | None = None) -> float:
        """Events per second in the window (0 before two events)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class LatencyWindow:
    """The last ``size`` durations, in seconds, and their percentiles in milliseconds."""

    def __init__(self, size: int = 2000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def values(self) -> np.ndarray:
        """(N,) float64 seconds, oldest first."""
        with self._lock:
            return np.array(self._values, dtype=np.float64)

    def percentiles_ms(self, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float | None]:
        """``{"p50": ms, …}``; None before the first value."""
        values = self.values()
        if not len(values):
            return {f"p{q:g}": None for q in qs}
        return {f"p{q:g}": round(float(np.percentile(values, q)) * 1e3, 3) for q in qs}
