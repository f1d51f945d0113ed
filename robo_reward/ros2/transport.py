"""The one interface behind which ROS 2 traffic flows: rclpy or plain Cyclone DDS.

A :class:`Transport` subscribes and publishes the few message types the reward node and
the simulated robot use, converting between its native messages and the neutral ones of
:mod:`robo_reward.interfaces.messages`. Camera topics use the sensor-data QoS (best effort,
keep last 5, volatile); every other topic the ROS 2 default (reliable, keep last 10,
volatile), so that either side matches ordinary ROS 2 publishers and subscribers.

Callbacks run on the transport's thread, inside :meth:`Transport.spin`. A message that
cannot be deserialized, or whose header is invalid, is counted in :attr:`Transport.malformed`
and reported to the subscription's ``on_error``; it never stops the transport.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np

from robo_reward.errors import ConfigError, MalformedMessage
from robo_reward.interfaces.messages import (
    CompressedImageMessage,
    ImageMessage,
    JointStateMessage,
    join_stamp,
)
from robo_reward.stream.runner import RewardRecord

M = TypeVar("M")
ErrorCallback = Callable[[str, MalformedMessage], None]
"""``on_error(topic, error)`` for a message that could not be read."""

SENSOR_DEPTH = 5
DEFAULT_DEPTH = 10
_NAME = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*)(/[A-Za-z_][A-Za-z0-9_]*)*$")


def resolve_topic(name: str, node_name: str) -> str:
    """A ROS 2 topic name made absolute: ``~/x`` → ``/<node>/x``, ``x`` → ``/x``.

    Raises ConfigError for names ROS 2 would refuse (empty tokens, bad characters).
    """
    if name == "~" or name.startswith("~/"):
        resolved = f"/{node_name}{name[1:]}"
    elif name.startswith("/"):
        resolved = name
    else:
        resolved = f"/{name}"
    if not _NAME.match(resolved):
        raise ConfigError(
            f"invalid ROS 2 topic name '{name}': use tokens of letters, digits and '_' separated by '/', "
            "not starting with a digit, e.g. /camera/front/image_raw"
        )
    return resolved


class Publisher(ABC, Generic[M]):
    """Publishes neutral messages of one type on one topic."""

    topic: str

    @abstractmethod
    def publish(self, message: M) -> None:
        """Convert ``message`` to the native type and send it."""

    @abstractmethod
    def subscription_count(self) -> int:
        """How many subscriptions are matched now (discovery is asynchronous)."""

    def wait_for_subscribers(self, count: int = 1, timeout_s: float = 10.0) -> bool:
        """Wait until at least ``count`` subscriptions match; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.subscription_count() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


class Transport(ABC):
    """Subscriptions and publishers of one node (see the module docstring).

    Attributes:
        node_name: resolves ``~/`` topic names.
        malformed: topic → messages that could not be deserialized.
    """

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.malformed: dict[str, int] = {}

    def resolve(self, topic: str) -> str:
        return resolve_topic(topic, self.node_name)

    @abstractmethod
    def subscribe_image(
        self,
        topic: str,
        callback: Callable[[ImageMessage | CompressedImageMessage], None],
        on_error: ErrorCallback | None = None,
    ) -> None:
        """Camera images with the sensor-data QoS; ``…/compressed`` topics carry CompressedImage."""

    @abstractmethod
    def subscribe_string(self, topic: str, callback: Callable[[str], None]) -> None:
        """``std_msgs/String``."""

    @abstractmethod
    def subscribe_empty(self, topic: str, callback: Callable[[], None]) -> None:
        """``std_msgs/Empty``."""

    @abstractmethod
    def subscribe_float_array(self, topic: str, callback: Callable[[np.ndarray], None]) -> None:
        """``std_msgs/Float32MultiArray``; the callback gets its data, float32 (N,)."""

    @abstractmethod
    def subscribe_reward(self, topic: str, callback: Callable[[RewardRecord], None]) -> None:
        """``robo_reward_msgs/Reward``."""

    @abstractmethod
    def subscribe_joint_state(self, topic: str, callback: Callable[[JointStateMessage], None]) -> None:
        """``sensor_msgs/JointState`` with the sensor-data QoS."""

    @abstractmethod
    def image_publisher(self, topic: str) -> Publisher[ImageMessage | CompressedImageMessage]:
        """Camera images with the sensor-data QoS; ``…/compressed`` topics carry CompressedImage."""

    @abstractmethod
    def reward_publisher(self, topic: str) -> Publisher[RewardRecord]:
        """``robo_reward_msgs/Reward``."""

    @abstractmethod
    def string_publisher(self, topic: str) -> Publisher[str]:
        """``std_msgs/String``."""

    @abstractmethod
    def empty_publisher(self, topic: str) -> Publisher[None]:
        """``std_msgs/Empty`` (publish ``None``)."""

    @abstractmethod
    def float_array_publisher(self, topic: str) -> Publisher[np.ndarray]:
        """``std_msgs/Float32MultiArray`` of a 1-D array."""

    @abstractmethod
    def joint_state_publisher(self, topic: str) -> Publisher[JointStateMessage]:
        """``sensor_msgs/JointState`` with the sensor-data QoS."""

    @abstractmethod
    def spin(self, stop: threading.Event) -> None:
        """Deliver callbacks on the calling thread until ``stop`` is set."""

    @abstractmethod
    def close(self) -> None:
        """Release every subscription, publisher and the participant / node."""

    def now_ns(self) -> int:
        """The node's clock (wall time), ns since the epoch."""
        return time.time_ns()

    def count_malformed(self, topic: str, error: MalformedMessage, on_error: ErrorCallback | None) -> None:
        """Record an unreadable message of ``topic`` and tell ``on_error``."""
        self.malformed[topic] = self.malformed.get(topic, 0) + 1
        if on_error is not None:
            on_error(topic, error)


def undecodable(exc: Exception) -> MalformedMessage:
    """The error of a payload that does not deserialize as its topic's type (reason ``undecodable``)."""
    return MalformedMessage(f"undecodable payload ({type(exc).__name__}: {exc})", "undecodable")


def joint_state_from_ros(m: Any) -> JointStateMessage:
    """sensor_msgs/JointState (a DDS struct or an rclpy message: same field names) → JointStateMessage."""
    return JointStateMessage(join_stamp(m.header.stamp.sec, m.header.stamp.nanosec), tuple(m.name),
                             tuple(m.position), tuple(m.velocity), tuple(m.effort))


REWARD_SCALARS = ("reward", "progress", "success_probability", "uncertainty", "valid", "status", "task", "model",
                  "episode", "step")
REWARD_ARRAYS = ("view_names", "view_progress", "view_valid")
"""Fields of robo_reward_msgs/Reward that RewardRecord carries under the same names (header and
source_stamps aside)."""


def reward_fields(r: RewardRecord) -> dict[str, Any]:
    """The same-named fields of a RewardRecord, arrays as lists, for either transport's message."""
    return {**{f: getattr(r, f) for f in REWARD_SCALARS}, **{f: list(getattr(r, f)) for f in REWARD_ARRAYS}}


def reward_from_ros(m: Any) -> RewardRecord:
    """robo_reward_msgs/Reward (a DDS struct or an rclpy message) → RewardRecord."""
    return RewardRecord(
        stamp_ns=join_stamp(m.header.stamp.sec, m.header.stamp.nanosec),
        **{f: getattr(m, f) for f in REWARD_SCALARS},
        **{f: tuple(getattr(m, f)) for f in REWARD_ARRAYS},
        source_stamps_ns=tuple(join_stamp(s.sec, s.nanosec) for s in m.source_stamps),
    )
