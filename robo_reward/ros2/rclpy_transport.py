"""ROS 2 through rclpy, for machines with a ROS 2 install (Humble, Jazzy).

Needs a sourced ROS 2 environment and the ``robo_reward_msgs`` package built from
``ros2_ws`` (``colcon build``; ``source install/setup.bash``). rclpy cannot be installed
from PyPI, so it is imported only here, on first use.

Camera subscriptions take serialized messages (``raw=True``) and deserialize them
themselves, so a message that does not deserialize is counted and skipped instead of
raising inside the executor. The ``robo_reward_ros`` package's nodes are built on this
transport by :mod:`robo_reward.ros2.entry_points`.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np

from robo_reward.errors import DependencyNotInstalled, MalformedMessage
from robo_reward.interfaces.messages import (
    CompressedImageMessage,
    ImageMessage,
    JointStateMessage,
    is_compressed_topic,
    join_stamp,
    split_stamp,
)
from robo_reward.ros2.transport import (
    DEFAULT_DEPTH,
    SENSOR_DEPTH,
    ErrorCallback,
    Publisher,
    Transport,
    joint_state_from_ros,
    reward_fields,
    reward_from_ros,
    undecodable,
)
from robo_reward.stream.runner import RewardRecord

log = logging.getLogger(__name__)

ROS_SETUP_HINT = (
    "source a ROS 2 install (e.g. `source /opt/ros/jazzy/setup.bash`) and the workspace that holds "
    "robo_reward_msgs (`cd ros2_ws && colcon build && source install/setup.bash`), or use the DDS "
    "transport (`--transport dds`), which needs no ROS install"
)


def _ros() -> SimpleNamespace:
    """The rclpy modules and message classes, imported on first use."""
    try:
        import rclpy
        from builtin_interfaces.msg import Time
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import CompressedImage, Image, JointState
        from std_msgs.msg import Empty, Float32MultiArray, MultiArrayDimension, String
    except ImportError as exc:
        raise DependencyNotInstalled(f"rclpy is needed for the rclpy transport ({exc}): {ROS_SETUP_HINT}") from exc
    try:
        from robo_reward_msgs.msg import Reward
    except ImportError as exc:
        raise DependencyNotInstalled(f"robo_reward_msgs is not built or not sourced ({exc}): {ROS_SETUP_HINT}") from exc

    return SimpleNamespace(
        rclpy=rclpy,
        Time=Time,
        SingleThreadedExecutor=SingleThreadedExecutor,
        deserialize_message=deserialize_message,
        Image=Image,
        CompressedImage=CompressedImage,
        JointState=JointState,
        String=String,
        Empty=Empty,
        Float32MultiArray=Float32MultiArray,
        MultiArrayDimension=MultiArrayDimension,
        Reward=Reward,
        sensor_qos=QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=SENSOR_DEPTH,
            reliability=ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        ),
        default_qos=QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=DEFAULT_DEPTH,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        ),
    )


class _RclpyPublisher(Publisher):
    def __init__(self, topic: str, publisher: Any, convert: Callable[[Any], Any]) -> None:
        self.topic = topic
        self._publisher = publisher
        self._convert = convert

    def publish(self, message: Any) -> None:
        self._publisher.publish(self._convert(message))

    def subscription_count(self) -> int:
        return self._publisher.get_subscription_count()


LOCALHOST_ENVIRONMENT = {"ROS_LOCALHOST_ONLY": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in ``os.environ`` for the block, then restore what was there."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class RclpyTransport(Transport):
    """The transport of one rclpy node.

    Args:
        node: an ``rclpy.node.Node``; the transport adds its subscriptions and publishers.
        context: the node's rclpy context (None: the node's own).
        owns_context: :meth:`close` destroys the node and shuts the context down (set by
            :meth:`create`, which made both).
    """

    def __init__(self, node: Any, context: Any = None, owns_context: bool = False) -> None:
        super().__init__(node.get_name())
        self.ros = _ros()
        self.node = node
        self._context = context or node.context
        self._owns_context = owns_context
        self._subscriptions: list[Any] = []
        self._publishers: list[Any] = []

    @classmethod
    def create(
        cls,
        node_name: str = "robo_reward",
        domain_id: int | None = None,
        localhost_only: bool = False,
        args: Sequence[str] | None = None,
        handle_signals: bool = True,
    ) -> RclpyTransport:
        """Initialise a private rclpy context and a node in it.

        ``localhost_only`` sets ``ROS_LOCALHOST_ONLY=1`` (Humble) and
        ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (Jazzy and later) while rclpy initialises
        (the middleware reads them there; rclpy has no argument for them), and puts the
        process environment back afterwards, so nothing else in the process inherits them.
        ``handle_signals`` False keeps rclpy from installing its SIGINT / SIGTERM handlers,
        which shut the context down at once, for a caller that stops on them itself and
        still publishes afterwards (``robo-reward serve``: its final diagnostics).
        """
        ros = _ros()
        from rclpy.context import Context
        from rclpy.node import Node

        context = Context()
        options: dict[str, Any] = {}
        if not handle_signals:
            from rclpy.signals import SignalHandlerOptions

            options["signal_handler_options"] = SignalHandlerOptions.NO
        with _environment(LOCALHOST_ENVIRONMENT if localhost_only else {}):
            ros.rclpy.init(args=list(args) if args is not None else None, context=context, domain_id=domain_id,
                           **options)
            node = Node(node_name, context=context)
        return cls(node, context, owns_context=True)

    def now_ns(self) -> int:
        """The node's clock (ROS time: simulated time when ``use_sim_time`` is set), ns."""
        return self.node.get_clock().now().nanoseconds

    def spin(self, stop: threading.Event) -> None:
        executor = self.ros.SingleThreadedExecutor(context=self._context)
        executor.add_node(self.node)
        try:
            while not stop.is_set() and self.ros.rclpy.ok(context=self._context):
                try:
                    executor.spin_once(timeout_sec=0.05)
                except Exception:  # a failing callback must not stop the node (rclpy re-raises it here)
                    if not self.ros.rclpy.ok(context=self._context):
                        break  # the context was shut down while waiting (ExternalShutdownException)
                    log.exception("a callback of node %s failed", self.node_name)
        finally:
            executor.remove_node(self.node)

    def close(self) -> None:
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
        for publisher in self._publishers:
            self.node.destroy_publisher(publisher)
        self._subscriptions.clear()
        self._publishers.clear()
        if self._owns_context:
            self.node.destroy_node()
            self.ros.rclpy.try_shutdown(context=self._context)

    # ---------------------------------------------------------------- plumbing

    def _subscribe(self, msg_type: Any, topic: str, sensor: bool, handle: Callable[[Any], None]) -> None:
        qos = self.ros.sensor_qos if sensor else self.ros.default_qos
        self._subscriptions.append(self.node.create_subscription(msg_type, topic, handle, qos))

    def _publisher(self, msg_type: Any, topic: str, sensor: bool, convert: Callable[[Any], Any]) -> _RclpyPublisher:
        qos = self.ros.sensor_qos if sensor else self.ros.default_qos
        publisher = self.node.create_publisher(msg_type, topic, qos)
        self._publishers.append(publisher)
        return _RclpyPublisher(publisher.topic_name, publisher, convert)

    def _header(self, header: Any, stamp_ns: int, frame_id: str) -> None:
        header.stamp.sec, header.stamp.nanosec = split_stamp(stamp_ns)
        header.frame_id = frame_id

    # ---------------------------------------------------------------- subscriptions

    def subscribe_image(
        self,
        topic: str,
        callback: Callable[[ImageMessage | CompressedImageMessage], None],
        on_error: ErrorCallback | None = None,
    ) -> None:
        ros = self.ros
        compressed = is_compressed_topic(topic)
        msg_type = ros.CompressedImage if compressed else ros.Image

        def handle(serialized: bytes) -> None:
            try:
                m = ros.deserialize_message(serialized, msg_type)
                stamp = join_stamp(m.header.stamp.sec, m.header.stamp.nanosec)
            except MalformedMessage as exc:  # the stamp's nanosec out of range
                self.count_malformed(topic, exc, on_error)
                return
            except Exception as exc:  # noqa: BLE001 - rclpy raises a plain error for a bad payload
                self.count_malformed(topic, undecodable(exc), on_error)
                return
            if compressed:
                callback(CompressedImageMessage(stamp, m.header.frame_id, m.format, bytes(m.data)))
            else:
                callback(ImageMessage(stamp, m.header.frame_id, m.height, m.width, m.encoding, m.is_bigendian,
                                      m.step, bytes(m.data)))

        self._subscriptions.append(self.node.create_subscription(msg_type, topic, handle, ros.sensor_qos, raw=True))

    def subscribe_string(self, topic: str, callback: Callable[[str], None]) -> None:
        self._subscribe(self.ros.String, topic, False, lambda m: callback(m.data))

    def subscribe_empty(self, topic: str, callback: Callable[[], None]) -> None:
        self._subscribe(self.ros.Empty, topic, False, lambda m: callback())

    def subscribe_float_array(self, topic: str, callback: Callable[[np.ndarray], None]) -> None:
        self._subscribe(self.ros.Float32MultiArray, topic, False,
                        lambda m: callback(np.asarray(m.data, dtype=np.float32)))

    def subscribe_reward(self, topic: str, callback: Callable[[RewardRecord], None]) -> None:
        self._subscribe(self.ros.Reward, topic, False, lambda m: callback(reward_from_ros(m)))

    def subscribe_joint_state(self, topic: str, callback: Callable[[JointStateMessage], None]) -> None:
        self._subscribe(self.ros.JointState, topic, True, lambda m: callback(joint_state_from_ros(m)))

    # ---------------------------------------------------------------- publishers

    def image_publisher(self, topic: str) -> Publisher[ImageMessage | CompressedImageMessage]:
        ros = self.ros

        def compressed(message: CompressedImageMessage) -> Any:
            m = ros.CompressedImage()
            self._header(m.header, message.stamp_ns, message.frame_id)
            m.format = message.format
            m.data = array.array("B", message.data)
            return m

        def raw(message: ImageMessage) -> Any:
            m = ros.Image()
            self._header(m.header, message.stamp_ns, message.frame_id)
            m.height, m.width, m.encoding = message.height, message.width, message.encoding
            m.is_bigendian, m.step = message.is_bigendian, message.step
            m.data = array.array("B", message.data)
            return m

        if is_compressed_topic(topic):
            return self._publisher(ros.CompressedImage, topic, True, compressed)
        return self._publisher(ros.Image, topic, True, raw)

    def reward_publisher(self, topic: str) -> Publisher[RewardRecord]:
        ros = self.ros

        def convert(r: RewardRecord) -> Any:
            m = ros.Reward()
            self._header(m.header, r.stamp_ns, "")
            for name, value in reward_fields(r).items():
                setattr(m, name, value)
            m.view_progress = array.array("d", r.view_progress)
            m.source_stamps = [ros.Time(sec=sec, nanosec=nsec) for sec, nsec in map(split_stamp, r.source_stamps_ns)]
            return m

        return self._publisher(ros.Reward, topic, False, convert)

    def string_publisher(self, topic: str) -> Publisher[str]:
        return self._publisher(self.ros.String, topic, False, lambda text: self.ros.String(data=text))

    def empty_publisher(self, topic: str) -> Publisher[None]:
        return self._publisher(self.ros.Empty, topic, False, lambda _: self.ros.Empty())

    def float_array_publisher(self, topic: str) -> Publisher[np.ndarray]:
        ros = self.ros

        def convert(values: np.ndarray) -> Any:
            data = np.asarray(values, dtype=np.float32).ravel()
            m = ros.Float32MultiArray()
            m.layout.dim = [ros.MultiArrayDimension(label="", size=len(data), stride=len(data))]
            m.data = array.array("f", data.tobytes())
            return m

        return self._publisher(ros.Float32MultiArray, topic, False, convert)

    def joint_state_publisher(self, topic: str) -> Publisher[JointStateMessage]:
        ros = self.ros

        def convert(message: JointStateMessage) -> Any:
            m = ros.JointState()
            self._header(m.header, message.stamp_ns, "")
            m.name = list(message.name)
            m.position, m.velocity, m.effort = (
                array.array("d", v) for v in (message.position, message.velocity, message.effort)
            )
            return m

        return self._publisher(ros.JointState, topic, True, convert)
