"""What goes into and comes out of the live path (:mod:`robo_reward.stream.runner`):
the options (:class:`StreamConfig`), the stamped frames it accepts (:class:`Frame`)
and the reward it publishes per synchronised set (:class:`RewardRecord`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.shaping import check_gamma


class Frame(Protocol):
    """A stamped camera frame, decoded by the stream when it arrives."""

    stamp_ns: int

    def decode(self) -> np.ndarray:
        """uint8 RGB (H, W, 3); raises MalformedMessage if the frame is unusable."""
        ...


@dataclass(frozen=True)
class DecodedFrame:
    """A frame's stamp and pixels, as the synchroniser holds it."""

    stamp_ns: int
    pixels: np.ndarray


@dataclass(frozen=True)
class StreamConfig:
    """Options of the live path (seconds and hertz).

    Attributes:
        views: view names, in the order of the records' per-view fields.
        gamma: discount of potential shaping; must equal the learner's γ.
        slop_s: largest stamp difference within a synchronised set.
        queue_size: frames kept per view while waiting for a match.
        stale_timeout_s: a view lagging the newest stamp by more than this is stale.
        max_batch: most sets per model call.
        max_wait_s: extra wait for a micro-batch to fill after its first set (0: none; a
            batch is then the sets that queued while the model ran — waiting only pays
            off for throughput, e.g. on a GPU, when sets arrive faster than this).
        max_pending: synchronised sets waiting for the model; the oldest is dropped beyond.
        max_rate_hz: most sets scored per second of stamps (0: every set).
        max_future_s: a frame stamped more than this ahead of the stream's clock is
            refused (0: no limit): one frame from a clock gone wrong would otherwise make
            every later set look older than it, and no reward would be published until
            the clock caught up with it.
    """

    views: tuple[str, ...]
    gamma: float = 0.99
    slop_s: float = 0.05
    queue_size: int = 5
    stale_timeout_s: float = 0.5
    max_batch: int = 8
    max_wait_s: float = 0.0
    max_pending: int = 16
    max_rate_hz: float = 0.0
    max_future_s: float = 10.0

    def __post_init__(self) -> None:
        check_gamma(self.gamma)
        if not self.views:
            raise ConfigError("no camera views: give at least one camera")
        checks = {
            "slop_s": self.slop_s >= 0,
            "queue_size": self.queue_size >= 1,
            "stale_timeout_s": self.stale_timeout_s > 0,
            "max_batch": self.max_batch >= 1,
            "max_wait_s": self.max_wait_s >= 0,
            "max_pending": self.max_pending >= 1,
            "max_rate_hz": self.max_rate_hz >= 0,
            "max_future_s": self.max_future_s >= 0,
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
