"""ROS 2 over plain Eclipse Cyclone DDS: no ROS install needed (``pip install cyclonedds``).

ROS 2 nodes using rmw_cyclonedds (or any RTPS implementation) see these endpoints as
ordinary ROS 2 topics: a ROS topic ``/cam/front/image_raw`` is the DDS topic
``rt/cam/front/image_raw``, its type ``sensor_msgs::msg::dds_::Image_`` (see
:mod:`robo_reward.ros2.dds_types`), encoded as XCDR1 (plain CDR) like ROS 2 does.

Discovery: ``domain_id`` is ROS 2's ``ROS_DOMAIN_ID``. ``localhost_only`` confines all
traffic to the loopback interface with unicast discovery (no multicast), like
``ROS_LOCALHOST_ONLY=1``; otherwise a ``config`` (Cyclone DDS XML, or a ``file://`` URI)
or else the ``CYCLONEDDS_URI`` environment variable configures the domain.

Fast DDS peers (rmw_fastrtps_cpp, ROS 2's default): every domain also carries
:data:`FAST_DDS_COMPATIBILITY`, so Cyclone matches endpoints of eProsima's vendor id (1.15)
by type name, as ROS 2 itself does, instead of by XTypes type information. Fast DDS 3
(ROS 2 Kilted) describes plain sequences (``sequence<uint8>``: an Image's ``data``) with
element flags of 0, which the XTypes spec does not allow: Cyclone refuses those type
objects, the type hashes can never agree, and no Image or Reward would cross, while
sequence-free types such as ``std_msgs/String`` do. Fast DDS 2 (Jazzy) is unaffected. It
comes first, so a user's configuration can override it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError, MalformedMessage, require
from robo_reward.interfaces.messages import (
    CompressedImageMessage,
    ImageMessage,
    JointStateMessage,
    is_compressed_topic,
    join_stamp,
    split_stamp,
)
from robo_reward.ros2.transport import (
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

#: Cyclone DDS configuration fragment matching Fast DDS endpoints by type name (see the module docs).
FAST_DDS_COMPATIBILITY = (
    '<CycloneDDS xmlns="https://cdds.io/config"><Domain Id="any"><Compatibility>'
    "<IgnoreTypeInformation>1.15</IgnoreTypeInformation></Compatibility></Domain></CycloneDDS>"
)

#: Cyclone DDS configuration confining a domain to 127.0.0.1 with unicast discovery.
LOCALHOST_CONFIG = """\
<CycloneDDS xmlns="https://cdds.io/config">
  <Domain Id="any">
    <General>
      <Interfaces><NetworkInterface address="127.0.0.1"/></Interfaces>
      <AllowMulticast>false</AllowMulticast>
    </General>
    <Discovery>
      <ParticipantIndex>auto</ParticipantIndex>
      <MaxAutoParticipantIndex>32</MaxAutoParticipantIndex>
      <Peers><Peer address="127.0.0.1"/></Peers>
    </Discovery>
  </Domain>
</CycloneDDS>
"""

_DOMAINS: dict[int, tuple[Any, str | None]] = {}  # domain id → (Domain, its config), one per process
_DOMAINS_LOCK = threading.Lock()


def domain_config(localhost_only: bool, config: str | None) -> str:
    """The domain's Cyclone configuration: the Fast DDS fragment, then the localhost one, or
    ``config``, or ``$CYCLONEDDS_URI`` (Cyclone merges comma-separated parts, later ones win)."""
    chosen = LOCALHOST_CONFIG if localhost_only else config or os.environ.get("CYCLONEDDS_URI")
    return ",".join(part for part in (FAST_DDS_COMPATIBILITY, chosen) if part)


def _domain(domain_id: int, config: str) -> None:
    """Create the process's Domain ``domain_id`` with ``config`` once (Cyclone allows one)."""
    from cyclonedds.domain import Domain

    with _DOMAINS_LOCK:
        if domain_id in _DOMAINS:
            if _DOMAINS[domain_id][1] != config:
                raise ConfigError(f"DDS domain {domain_id} already exists in this process with another configuration")
            return
        _DOMAINS[domain_id] = (Domain(domain_id, config), config)


@dataclass
class _Subscription:
    topic: str
    reader: Any
    handle: Callable[[Any], None]
    on_error: ErrorCallback | None


class _DdsPublisher(Publisher):
    def __init__(self, topic: str, writer: Any, convert: Callable[[Any], Any]) -> None:
        self.topic = topic
        self._writer = writer
        self._convert = convert

    def publish(self, message: Any) -> None:
        self._writer.write(self._convert(message))

    def subscription_count(self) -> int:
        return len(self._writer.get_matched_subscriptions())


class DdsTransport(Transport):
    """A ROS 2 node's endpoints on Cyclone DDS (see the module docstring).

    Args:
        domain_id: DDS domain, as ``ROS_DOMAIN_ID`` (0–232).
        localhost_only: keep all traffic on 127.0.0.1 (unicast discovery).
        config: Cyclone DDS XML or URI; not with ``localhost_only``.
        node_name: resolves ``~/`` topic names.
    """

    def __init__(
        self,
        domain_id: int = 0,
        localhost_only: bool = False,
        config: str | None = None,
        node_name: str = "robo_reward",
    ) -> None:
        super().__init__(node_name)
        require("cyclonedds", "ros2", "the DDS transport")
        from cyclonedds.core import GuardCondition, WaitSet
        from cyclonedds.domain import DomainParticipant

        from robo_reward.ros2 import dds_types

        if not 0 <= domain_id <= 232:
            raise ConfigError(f"DDS domain id must be in 0–232, got {domain_id}")
        if localhost_only and config:
            raise ConfigError("give either localhost_only or a Cyclone DDS config, not both")
        _domain(domain_id, domain_config(localhost_only, config))
        self.types = dds_types
        self.domain_id = domain_id
        self.participant = DomainParticipant(domain_id)
        self._waitset = WaitSet(self.participant)
        self._guard = GuardCondition(self.participant)
        self._waitset.attach(self._guard)
        self._subscriptions: list[_Subscription] = []
        self._topics: dict[str, Any] = {}
        self._conditions: list[Any] = []
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- plumbing

    def _qos(self, sensor: bool) -> Any:
        from cyclonedds.qos import Policy, Qos
        from cyclonedds.util import duration

        from robo_reward.ros2.transport import DEFAULT_DEPTH, SENSOR_DEPTH

        if sensor:
            reliability, depth = Policy.Reliability.BestEffort, SENSOR_DEPTH
        else:
            reliability, depth = Policy.Reliability.Reliable(duration(milliseconds=100)), DEFAULT_DEPTH
        return Qos(
            reliability,
            Policy.History.KeepLast(depth),
            Policy.Durability.Volatile,
            Policy.DataRepresentation(use_cdrv0_representation=True),
        )

    def _topic(self, name: str, dds_type: type) -> Any:
        from cyclonedds.topic import Topic

        key = f"rt{self.resolve(name)}"
        with self._lock:
            if key not in self._topics:
                self._topics[key] = Topic(self.participant, key, dds_type)
            topic = self._topics[key]
        if topic.data_type is not dds_type:
            raise ConfigError(f"topic '{self.resolve(name)}' is already used with type {topic.data_type.__name__}")
        return topic

    def _subscribe(
        self, name: str, dds_type: type, sensor: bool, handle: Callable[[Any], None], on_error: ErrorCallback | None
    ) -> None:
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState
        from cyclonedds.sub import DataReader

        reader = DataReader(self.participant, self._topic(name, dds_type), qos=self._qos(sensor))
        condition = ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any)
        self._waitset.attach(condition)
        self._conditions.append(condition)
        self._subscriptions.append(_Subscription(self.resolve(name), reader, handle, on_error))
        self._guard.set(True)  # let a waiting spin() pick up the new reader

    def _publisher(self, name: str, dds_type: type, sensor: bool, convert: Callable[[Any], Any]) -> _DdsPublisher:
        from cyclonedds.pub import DataWriter

        writer = DataWriter(self.participant, self._topic(name, dds_type), qos=self._qos(sensor))
        return _DdsPublisher(self.resolve(name), writer, convert)

    def spin(self, stop: threading.Event) -> None:
        from cyclonedds.util import duration

        while not stop.is_set():
            self._waitset.wait(duration(milliseconds=50))
            self._guard.take()
            for subscription in list(self._subscriptions):
                self._drain(subscription)

    def _drain(self, subscription: _Subscription, limit: int = 256) -> None:
        """Take up to ``limit`` samples one by one, so that a bad one spoils only itself."""
        from cyclonedds.internal import InvalidSample

        for _ in range(limit):
            try:
                samples = subscription.reader.take(N=1)
            except Exception as exc:  # noqa: BLE001 - a payload that does not deserialize (e.g. a string not UTF-8)
                self.count_malformed(subscription.topic, undecodable(exc), subscription.on_error)
                continue
            if not samples:
                return
            if isinstance(samples[0], InvalidSample):  # a writer left or disposed: no data
                continue
            try:
                subscription.handle(samples[0])
            except MalformedMessage as exc:  # a header field out of range (the stamp's nanosec)
                self.count_malformed(subscription.topic, exc, subscription.on_error)
            except Exception:  # a failing callback must not stop the transport
                log.exception("callback of topic %s failed", subscription.topic)

    def close(self) -> None:
        """Delete the participant and all its entities now, so peers see them leave at once.

        (cyclonedds-python deletes entities only when they are garbage-collected; deleting
        the participant deletes its readers, writers and topics in one C call.)
        """
        self._subscriptions.clear()
        self._conditions.clear()
        self._topics.clear()
        self.participant._delete(self.participant._ref)

    # ---------------------------------------------------------------- subscriptions

    def subscribe_image(
        self,
        topic: str,
        callback: Callable[[ImageMessage | CompressedImageMessage], None],
        on_error: ErrorCallback | None = None,
    ) -> None:
        if is_compressed_topic(topic):
            self._subscribe(topic, self.types.CompressedImage, True, lambda m: callback(_compressed_in(m)), on_error)
        else:
            self._subscribe(topic, self.types.Image, True, lambda m: callback(_image_in(m)), on_error)

    def subscribe_string(self, topic: str, callback: Callable[[str], None]) -> None:
        self._subscribe(topic, self.types.String, False, lambda m: callback(m.data), None)

    def subscribe_empty(self, topic: str, callback: Callable[[], None]) -> None:
        self._subscribe(topic, self.types.Empty, False, lambda m: callback(), None)

    def subscribe_float_array(self, topic: str, callback: Callable[[np.ndarray], None]) -> None:
        self._subscribe(
            topic, self.types.Float32MultiArray, False, lambda m: callback(np.asarray(m.data, np.float32)), None
        )

    def subscribe_reward(self, topic: str, callback: Callable[[RewardRecord], None]) -> None:
        self._subscribe(topic, self.types.Reward, False, lambda m: callback(reward_from_ros(m)), None)

    def subscribe_joint_state(self, topic: str, callback: Callable[[JointStateMessage], None]) -> None:
        self._subscribe(topic, self.types.JointState, True, lambda m: callback(joint_state_from_ros(m)), None)

    # ---------------------------------------------------------------- publishers

    def image_publisher(self, topic: str) -> Publisher[ImageMessage | CompressedImageMessage]:
        types = self.types
        if is_compressed_topic(topic):
            return self._publisher(
                topic, types.CompressedImage, True,
                lambda m: types.CompressedImage(self._header(m.stamp_ns, m.frame_id), m.format, m.data),
            )
        return self._publisher(
            topic, types.Image, True,
            lambda m: types.Image(
                self._header(m.stamp_ns, m.frame_id), m.height, m.width, m.encoding, m.is_bigendian, m.step, m.data
            ),
        )

    def reward_publisher(self, topic: str) -> Publisher[RewardRecord]:
        return self._publisher(topic, self.types.Reward, False, self._reward_out)

    def string_publisher(self, topic: str) -> Publisher[str]:
        return self._publisher(topic, self.types.String, False, self.types.String)

    def empty_publisher(self, topic: str) -> Publisher[None]:
        return self._publisher(topic, self.types.Empty, False, lambda _: self.types.Empty())

    def float_array_publisher(self, topic: str) -> Publisher[np.ndarray]:
        types = self.types

        def convert(values: np.ndarray) -> Any:
            data = [float(v) for v in np.asarray(values, np.float32).ravel()]
            layout = types.MultiArrayLayout([types.MultiArrayDimension("", len(data), len(data))], 0)
            return types.Float32MultiArray(layout, data)

        return self._publisher(topic, types.Float32MultiArray, False, convert)

    def joint_state_publisher(self, topic: str) -> Publisher[JointStateMessage]:
        return self._publisher(
            topic, self.types.JointState, True,
            lambda m: self.types.JointState(
                self._header(m.stamp_ns, ""), list(m.name), list(m.position), list(m.velocity), list(m.effort)
            ),
        )

    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        return self.types.Header(self.types.Time(*split_stamp(stamp_ns)), frame_id)

    def _reward_out(self, r: RewardRecord) -> Any:
        types = self.types
        return types.Reward(
            header=self._header(r.stamp_ns, ""),
            source_stamps=[types.Time(*split_stamp(s)) for s in r.source_stamps_ns],
            **reward_fields(r),
        )


def _stamp(header: Any) -> int:
    return join_stamp(header.stamp.sec, header.stamp.nanosec)


def _image_in(m: Any) -> ImageMessage:
    return ImageMessage(_stamp(m.header), m.header.frame_id, m.height, m.width, m.encoding, m.is_bigendian, m.step,
                        m.data)


def _compressed_in(m: Any) -> CompressedImageMessage:
    return CompressedImageMessage(_stamp(m.header), m.header.frame_id, m.format, m.data)
