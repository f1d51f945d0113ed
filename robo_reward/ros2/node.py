"""The reward node: camera topics in, ``robo_reward_msgs/Reward`` out, on any transport.

Topics (``~`` is the node's name, ``robo_reward`` by default):

==========================  =======================  ==========================================
topic                       type                     role
==========================  =======================  ==========================================
each view's topic           sensor_msgs/Image, or    input, sensor-data QoS; a topic ending in
                            CompressedImage          ``/compressed`` carries CompressedImage
``~/task``                  std_msgs/String          set the task instruction at run time
``~/episode_reset``         std_msgs/Empty           start a new episode (shaping restarts)
``~/reward``                robo_reward_msgs/Reward  one per synchronised image set
``~/diagnostics``           std_msgs/String          JSON: rates, drops, latency percentiles
==========================  =======================  ==========================================

The logic lives in :class:`~robo_reward.stream.runner.LiveRewardStream`; this module wires
it to a :class:`~robo_reward.ros2.transport.Transport` and runs it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from robo_reward.errors import ConfigError, MalformedMessage, UsageError
from robo_reward.interfaces.messages import CompressedImageMessage, ImageMessage
from robo_reward.models.base import RewardModel
from robo_reward.ros2.transport import Transport, resolve_topic
from robo_reward.stream.runner import LiveRewardStream, StreamConfig
from robo_reward.types import Task

log = logging.getLogger(__name__)

_VIEW_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
#: Longest task instruction the node takes (every Reward message carries it).
MAX_TASK_CHARS = 4096


def live_task(instruction: str) -> Task:
    """The task of the live node: not empty, at most :data:`MAX_TASK_CHARS` characters.

    Raises MalformedMessage with reason ``empty`` or ``too_long``.
    """
    if len(instruction) > MAX_TASK_CHARS:
        raise MalformedMessage(f"task of {len(instruction)} characters: more than {MAX_TASK_CHARS}", "too_long")
    if not instruction.strip():
        raise MalformedMessage("empty task: give a task instruction, e.g. 'open the drawer'", "empty")
    return Task(instruction)


def parse_view_topics(items: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """``["front=/cam/front/image_raw", …]`` (``--view`` items, the ``views`` parameter; or a
    mapping) → ``{view: topic}``, checked.

    Raises UsageError for a missing ``=``, a bad view name or topic, or a repeated view.
    """
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            view, sep, topic = item.partition("=")
            if not sep or not view or not topic:
                raise UsageError(f"view '{item}': expected NAME=TOPIC, e.g. front=/cam/front/image_raw")
            pairs.append((view.strip(), topic.strip()))
    if not pairs:
        raise UsageError("no views: give at least one NAME=TOPIC, e.g. front=/cam/front/image_raw")
    views: dict[str, str] = {}
    for view, topic in pairs:
        if not _VIEW_NAME.match(view):
            raise UsageError(f"view name '{view}': use letters, digits, '_' or '-'")
        if view in views:
            raise UsageError(f"view '{view}' is given twice")
        try:
            resolve_topic(topic, "node")
        except ConfigError as exc:
            raise UsageError(f"view '{view}': {exc}") from exc
        views[view] = topic
    return views


@dataclass(frozen=True)
class NodeConfig:
    """What the reward node subscribes, publishes and how it scores.

    Attributes:
        views: view name → image topic (a ``…/compressed`` topic carries CompressedImage).
        task: the initial task instruction.
        model: the model's name in the Reward messages (its spec: a name or checkpoint path).
        stream: synchronisation, batching and shaping options (its views are those of ``views``).
        reward_topic, task_topic, reset_topic, diagnostics_topic: topic names.
        diagnostics_period_s: seconds between diagnostics messages (and log lines).
    """

    views: dict[str, str]
    task: str
    model: str
    stream: StreamConfig
    reward_topic: str = "~/reward"
    task_topic: str = "~/task"
    reset_topic: str = "~/episode_reset"
    diagnostics_topic: str = "~/diagnostics"
    diagnostics_period_s: float = 2.0

    def __post_init__(self) -> None:
        if tuple(self.views) != tuple(self.stream.views):
            raise ConfigError(f"stream views {self.stream.views} differ from the node's views {list(self.views)}")
        if self.diagnostics_period_s <= 0:
            raise ConfigError(f"diagnostics period must be > 0 s, got {self.diagnostics_period_s}")
        live_task(self.task)

    @classmethod
    def build(cls, views: Sequence[str] | Mapping[str, str], task: str, model: str, **options: Any) -> NodeConfig:
        """From ``NAME=TOPIC`` view items and flat options (NodeConfig and StreamConfig fields)."""
        parsed = parse_view_topics(views)
        node_fields = {f for f in cls.__dataclass_fields__ if f not in {"views", "task", "model", "stream"}}
        stream_fields = set(StreamConfig.__dataclass_fields__) - {"views"}
        unknown = sorted(set(options) - node_fields - stream_fields)
        if unknown:
            raise ConfigError(f"unknown reward node option(s) {unknown}")
        stream = StreamConfig(views=tuple(parsed), **{k: v for k, v in options.items() if k in stream_fields})
        return cls(parsed, task, model, stream, **{k: v for k, v in options.items() if k in node_fields})


@dataclass
class RewardNode:
    """The reward node on ``transport`` (see the module docstring); :meth:`run` blocks.

    ``on_task`` receives a task that arrives on the task topic (default: :meth:`set_task`);
    under rclpy it writes the task parameter, whose callback sets it, so the parameter stays
    the one place the task is held."""

    transport: Transport
    model: RewardModel
    config: NodeConfig
    on_task: Callable[[str], None] | None = None
    stream: LiveRewardStream = field(init=False)
    task_refused: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        config, transport = self.config, self.transport
        self._reward_pub = transport.reward_publisher(config.reward_topic)
        self._diagnostics_pub = transport.string_publisher(config.diagnostics_topic)
        self.stream = LiveRewardStream(
            self.model, Task(config.task), config.stream, self._reward_pub.publish,
            model_label=config.model, clock_ns=transport.now_ns,
        )
        for view, topic in config.views.items():
            transport.subscribe_image(
                topic,
                lambda message, view=view: self._on_image(view, message),
                on_error=lambda _topic, error, view=view: self.stream.reject(view, error),
            )
        transport.subscribe_string(config.task_topic, self.on_task or self.set_task)
        transport.subscribe_empty(config.reset_topic, self.stream.reset_episode)
        log.info(
            "reward node: views %s, task %r, model %s, rewards on %s",
            ", ".join(f"{v}={transport.resolve(t)}" for v, t in config.views.items()),
            config.task, config.model, transport.resolve(config.reward_topic),
        )

    def _on_image(self, view: str, message: ImageMessage | CompressedImageMessage) -> None:
        self.stream.push(view, message)

    def set_task(self, instruction: str) -> None:
        """Change the task (from the task topic or a parameter); one that :func:`live_task`
        refuses is counted per reason in the diagnostics' ``task_refused``."""
        try:
            task = live_task(instruction)
        except MalformedMessage as exc:
            self.task_refused[exc.reason] = self.task_refused.get(exc.reason, 0) + 1
            count = sum(self.task_refused.values())
            if count <= 3 or count % 100 == 0:
                log.warning("task change refused (#%d): %s", count, exc)
            return
        self.stream.set_task(task)

    def diagnostics(self) -> dict[str, Any]:
        """The stream's diagnostics plus the refused tasks per reason and the transport's
        undecodable messages per topic."""
        report = self.stream.diagnostics()
        report["task_refused"] = dict(self.task_refused)
        report["undecodable"] = dict(self.transport.malformed)
        return report

    def publish_diagnostics(self) -> dict[str, Any]:
        """Publish the diagnostics as JSON on the diagnostics topic and log a summary line."""
        report = self.diagnostics()
        self._diagnostics_pub.publish(json.dumps(report, allow_nan=False, default=str))
        latency = report["latency_ms"]["stamp_to_publish"]
        drops = sum(
            v["dropped_overflow"] + v["dropped_unmatched"] + v["dropped_stale"] for v in report["views"].values()
        ) + report["dropped_pending"]
        log.info(
            "rewards %.1f Hz (%d, %d invalid) | views %s | drops %d | latency p50 %s ms p99 %s ms",
            report["reward_rate_hz"], report["published"], report["invalid"],
            " ".join(f"{v}:{d['rate_hz']}Hz{'(stale)' if d['stale'] else ''}" for v, d in report["views"].items()),
            drops, latency["p50"], latency["p99"],
        )
        return report

    def run(self, stop: threading.Event, duration_s: float | None = None) -> dict[str, Any]:
        """Score and publish until ``stop`` is set (or ``duration_s`` passes); returns the last diagnostics."""
        timer = threading.Timer(duration_s or 0.0, stop.set)
        timer.daemon = True
        if duration_s is not None:
            timer.start()
        diagnostics = threading.Thread(target=self._diagnostics_loop, args=(stop,), daemon=True)
        self.stream.start()
        diagnostics.start()
        try:
            self.transport.spin(stop)
        finally:
            timer.cancel()
            stop.set()
            self.stream.stop()
            diagnostics.join(timeout=2.0)
        return self.publish_diagnostics()

    def _diagnostics_loop(self, stop: threading.Event) -> None:
        next_at = time.monotonic() + self.config.diagnostics_period_s
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.publish_diagnostics()
            except Exception:  # diagnostics must never take the node down
                log.exception("publishing diagnostics failed")
            next_at += self.config.diagnostics_period_s
