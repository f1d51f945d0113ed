"""Test-pattern cameras: check a reward node end to end without a robot.

Each camera publishes a square that slides across the image once every ``cycle_s``
seconds of its stamps — a task whose progress is the phase of the cycle — over a
background colour of its own. The image is a pure function of (view index, stamp), so
a subscriber can rebuild exactly what was scored from a Reward's source stamps.

Stamps sit on a common grid (multiples of the period since the epoch), so cameras in
different processes publish identical stamps for the same tick.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.interfaces.messages import image_message
from robo_reward.models.base import RewardModel
from robo_reward.ros2.transport import Publisher
from robo_reward.types import FrameBatch, Sampling, Task

BACKGROUNDS = ((90, 90, 90), (60, 80, 110), (110, 80, 60), (70, 110, 70))
PATTERN_TASK = "slide the red square across"


def pattern_phase(stamp_ns: int, cycle_s: float) -> float:
    """Progress of the pattern at ``stamp_ns``: the phase of the cycle, in [0, 1)."""
    cycle_ns = int(cycle_s * 1e9)
    return (stamp_ns % cycle_ns) / cycle_ns


def pattern_image(view_index: int, phase: float, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """uint8 RGB (H, W, 3): a red square at horizontal position ``phase`` ∈ [0, 1].

    Args:
        view_index: picks the background colour (and mirrors odd views), so views differ.
        phase: 0 → square at the left edge, 1 → at the right edge.
        size: (height, width) in pixels.
    """
    height, width = size
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[view_index % len(BACKGROUNDS)]
    image[height // 2 :] //= 2
    side = max(2, min(height, width) // 4)
    x = round(phase * (width - side))
    if view_index % 2:
        x = width - side - x
    top = (height - side) // 2
    image[top : top + side, x : x + side] = (220, 40, 40)
    return image


@dataclass
class PatternEpisode:
    """A demonstration of the pattern task: the square slides once, phase 0 → 1.

    Implements :class:`robo_reward.data.episodes.Episode`, so reward models can be fitted
    on it (see :func:`fit_pattern_model`).
    """

    name: str
    views: tuple[str, ...]
    length: int = 24
    size: tuple[int, int] = (48, 64)
    fps: float = 10.0
    task: Task = field(default_factory=lambda: Task(PATTERN_TASK))
    outcome: str | None = "success"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def view_names(self) -> list[str]:
        return list(self.views)

    def timestamps(self, sampling: Sampling) -> np.ndarray:
        return (np.arange(0, self.length, sampling.stride) * (1e9 / self.fps)).astype(np.int64)

    def iter_batches(self, batch_size: int, sampling: Sampling) -> Iterator[FrameBatch]:
        frames = np.arange(0, self.length, sampling.stride)
        stamps = self.timestamps(sampling)
        for start in range(0, len(frames), batch_size):
            index = frames[start : start + batch_size]
            phases = index / max(self.length - 1, 1)
            yield FrameBatch(
                views={v: np.stack([pattern_image(i, p, self.size) for p in phases]) for i, v in enumerate(self.views)},
                timestamps_ns=stamps[start : start + batch_size],
                frame_index=index,
                source=f"pattern episode '{self.name}'",
            )


def fit_pattern_model(views: tuple[str, ...], size: tuple[int, int] = (48, 64), demos: int = 3) -> RewardModel:
    """A ``perceptual`` reward model fitted on pattern demos of ``views`` (a second or so on a CPU)."""
    from robo_reward.models import load_model

    episodes = [PatternEpisode(f"pattern{i}", views, length=20 + 2 * i, size=size) for i in range(demos)]
    return load_model("perceptual", num_steps=4, features="pixels:12").fit(episodes)


def grid_stamps(rate_hz: float, start_ns: int, end_ns: int) -> list[int]:
    """The stamps of the common grid (multiples of the period, ns) in [start_ns, end_ns)."""
    period_ns = round(1e9 / rate_hz)
    first = -(-start_ns // period_ns) * period_ns
    return list(range(first, end_ns, period_ns))


def publish_pattern(
    publishers: Mapping[str, Publisher],
    rate_hz: float,
    start_ns: int,
    end_ns: int,
    stop: threading.Event | None = None,
    size: tuple[int, int] = (48, 64),
    cycle_s: float = 4.0,
    encoding: str = "rgb8",
    view_indices: Mapping[str, int] | None = None,
) -> dict[str, list[int]]:
    """Publish the pattern of every camera at the grid stamps in [start_ns, end_ns), in real time.

    Each frame goes out when the wall clock reaches its stamp; ticks already past when
    the publisher falls behind are skipped, never sent late.

    Args:
        publishers: view name → image publisher (of any transport).
        rate_hz: frames per second per camera.
        start_ns: first stamp (wall clock, ns since the epoch; rounded up to the grid).
        end_ns: no stamp at or after this.
        stop: ends publishing early when set.
        size: (height, width) of the images, pixels.
        cycle_s: seconds of stamps per slide of the square.
        encoding: raw encoding of non-compressed topics.
        view_indices: view → pattern index (default: the order of ``publishers``).

    Returns:
        view → the stamps it published, ns.
    """
    stop = stop or threading.Event()
    indices = dict(view_indices or {view: i for i, view in enumerate(publishers)})
    period_ns = round(1e9 / rate_hz)
    published: dict[str, list[int]] = {view: [] for view in publishers}
    for tick in grid_stamps(rate_hz, start_ns, end_ns):
        delay = (tick - time.time_ns()) / 1e9
        if delay < -period_ns / 1e9:
            continue  # fell behind: skip, never publish late
        if delay > 0 and stop.wait(delay):
            break
        if stop.is_set():
            break
        phase = pattern_phase(tick, cycle_s)
        for view, publisher in publishers.items():
            rgb = pattern_image(indices[view], phase, size)
            publisher.publish(image_message(publisher.topic, rgb, tick, view, encoding))
            published[view].append(tick)
    return published


def pattern_camera_process(
    domain_id: int,
    segments: Sequence[tuple[dict[str, str], float, float]],
    rate_hz: float,
    ready: Any,
    start: Any,
    record: str | None = None,
    view_indices: dict[str, int] | None = None,
    size: tuple[int, int] = (48, 64),
    cycle_s: float = 4.0,
) -> None:
    """Entry point of a separate process running pattern cameras on localhost-only DDS.

    Each segment ``(cameras, start_s, end_s)`` is one camera node (its own DDS
    participant) publishing ``cameras`` (view → topic) from ``t0 + start_s`` to
    ``t0 + end_s``; a view in two segments is a camera that stops and comes back.

    Protocol with the parent: once every publisher has matched a subscriber (or after
    60 s) the process sets ``ready`` (a multiprocessing Event) and reads t0 (wall-clock
    ns) from ``start`` (a multiprocessing Queue). On SIGTERM it stops. The stamps each
    view published go to ``record`` as JSON ``{view: [ns, …]}``.
    """
    import signal

    from robo_reward.ros2.dds import DdsTransport

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    nodes = []
    for i, (cameras, start_s, end_s) in enumerate(segments):
        transport = DdsTransport(domain_id, localhost_only=True, node_name=f"pattern_camera_{i}")
        publishers = {view: transport.image_publisher(topic) for view, topic in cameras.items()}
        nodes.append((transport, publishers, start_s, end_s))
    deadline = time.monotonic() + 60.0
    for _, publishers, _, _ in nodes:
        for publisher in publishers.values():
            publisher.wait_for_subscribers(1, max(0.0, deadline - time.monotonic()))
    ready.set()
    t0 = int(start.get(timeout=300))
    published: dict[str, list[int]] = {}

    def run(publishers: dict[str, Publisher], start_s: float, end_s: float) -> None:
        stamps = publish_pattern(publishers, rate_hz, t0 + int(start_s * 1e9), t0 + int(end_s * 1e9), stop,
                                 size, cycle_s, view_indices=view_indices)
        for view, values in stamps.items():
            published.setdefault(view, []).extend(values)

    threads = [threading.Thread(target=run, args=node[1:]) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for transport, *_ in nodes:
        transport.close()
    if record:
        Path(record).write_text(json.dumps({view: sorted(stamps) for view, stamps in published.items()}))
