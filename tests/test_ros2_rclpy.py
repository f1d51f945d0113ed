"""The rclpy transport and the ROS 2 entry points against a stand-in rclpy (no ROS here).

The stand-in's message classes are generated from the real ROS 2 Humble definitions that
``rosbags`` ships (with ``__slots__``, so a misspelled field fails), its serialization is
rosbags' CDR; the Node / executor / QoS surface mimics rclpy's. It checks the transport's
conversions and wiring, not rclpy itself: a published Reward, serialized as ROS 2 would,
must decode with the DDS transport's struct to the same values.
"""

from __future__ import annotations

import array
import json
import math
import sys
import types
from collections import defaultdict

import numpy as np
import pytest

rosbags_typesys = pytest.importorskip("rosbags.typesys")
pytest.importorskip("cyclonedds")

from rosbags.interfaces import Nodetype

from robo_reward.interfaces.images import rgb_to_raw
from robo_reward.interfaces.messages import REWARD_MSG, REWARD_TYPE
from robo_reward.ros2 import dds_types
from robo_reward.ros2.entry_points import REWARD_PARAMETERS, _on_set_parameters, reward_node_main
from robo_reward.ros2.pattern import fit_pattern_model, pattern_image

TYPES = ["builtin_interfaces/msg/Time", "std_msgs/msg/Header", "std_msgs/msg/String", "std_msgs/msg/Empty",
         "std_msgs/msg/MultiArrayDimension", "std_msgs/msg/MultiArrayLayout", "std_msgs/msg/Float32MultiArray",
         "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/JointState", REWARD_TYPE]
ARRAYS = {"uint8": "B", "float32": "f", "float64": "d"}
DTYPES = {"bool": np.bool_, "uint8": np.uint8, "uint32": np.uint32, "int32": np.int32, "float32": np.float32,
          "float64": np.float64}


class FakeRos:
    """rclpy, its message packages and a ROS graph of one process, made of plain Python."""

    def __init__(self, store) -> None:
        self.store = store
        self.classes = {name: self._message_class(name) for name in TYPES}
        self.queue: list[tuple] = []  # (callback, argument) waiting for spin_once
        self.subscriptions = defaultdict(list)  # topic → [(msg_type, callback, qos, raw)]
        self.published = defaultdict(list)  # topic → messages
        self.init_calls: list[dict] = []
        self.parameters: dict[str, object] = {}
        self.spins_left: int | None = None

    def _message_class(self, msgtype: str):
        fields = self.store.fielddefs[msgtype][1]
        names = [name for name, _ in fields]
        fake = self

        def __init__(self, **kwargs):
            unknown = set(kwargs) - set(names)
            if unknown:
                raise TypeError(f"{msgtype} has no field(s) {sorted(unknown)}")
            for name, (node, desc) in fields:
                if name in kwargs:
                    setattr(self, name, kwargs[name])
                elif node == Nodetype.NAME:
                    setattr(self, name, fake.classes[desc]())
                elif node == Nodetype.BASE:
                    setattr(self, name, {"string": "", "bool": False}.get(desc[0], 0))
                else:
                    setattr(self, name, [])

        return type(msgtype.rsplit("/", 1)[1], (), {"__slots__": names, "__init__": __init__, "_type": msgtype})

    def to_rosbags(self, value):
        msgtype = value._type
        kwargs = {}
        for name, (node, desc) in self.store.fielddefs[msgtype][1]:
            field = getattr(value, name)
            if node == Nodetype.NAME:
                kwargs[name] = self.to_rosbags(field)
            elif node == Nodetype.BASE:
                kwargs[name] = field
            else:
                (sub_node, sub_desc), _ = desc
                if sub_node == Nodetype.NAME:
                    kwargs[name] = [self.to_rosbags(v) for v in field]
                elif sub_desc[0] == "string":
                    kwargs[name] = list(field)
                else:
                    kwargs[name] = np.array(list(field), dtype=DTYPES[sub_desc[0]])
        return self.store.types[msgtype](**kwargs)

    def from_rosbags(self, value):
        msgtype = value.__msgtype__
        message = self.classes[msgtype]()
        for name, (node, desc) in self.store.fielddefs[msgtype][1]:
            field = getattr(value, name)
            if node == Nodetype.NAME:
                field = self.from_rosbags(field)
            elif node == Nodetype.SEQUENCE:
                (sub_node, sub_desc), _ = desc
                if sub_node == Nodetype.NAME:
                    field = [self.from_rosbags(v) for v in field]
                elif sub_desc[0] in ARRAYS:
                    field = array.array(ARRAYS[sub_desc[0]], np.asarray(field).tobytes())
                else:
                    field = list(field)
            setattr(message, name, field)
        return message

    def serialize(self, message) -> bytes:
        return bytes(self.store.serialize_cdr(self.to_rosbags(message), message._type))

    def deliver(self, topic: str, message=None, raw: bytes | None = None) -> None:
        for msg_type, callback, _qos, is_raw in self.subscriptions[topic]:
            payload = raw if raw is not None else self.serialize(message)
            self.queue.append((callback, payload if is_raw else self.from_rosbags(
                self.store.deserialize_cdr(payload, msg_type._type))))

    def modules(self) -> dict[str, types.ModuleType]:
        fake = self

        class Context:
            def __init__(self):
                self.ok = True

        class Publisher:
            def __init__(self, topic):
                self.topic_name = topic

            def publish(self, message):
                fake.serialize(message)  # must be a complete, well-typed message
                fake.published[self.topic_name].append(message)

            def get_subscription_count(self):
                return len(fake.subscriptions[self.topic_name])

        class Parameter:
            def __init__(self, name, value):
                self.name, self.value = name, value

        class Node:
            def __init__(self, name, *, context=None):
                self._name, self.context = name, context
                self.callbacks = []

            def get_name(self):
                return self._name

            def _resolve(self, topic):
                return f"/{self._name}{topic[1:]}" if topic.startswith("~") else topic

            def create_subscription(self, msg_type, topic, callback, qos_profile, *, raw=False):
                entry = (msg_type, callback, qos_profile, raw)
                fake.subscriptions[self._resolve(topic)].append(entry)
                return entry

            def create_publisher(self, msg_type, topic, qos_profile):
                return Publisher(self._resolve(topic))

            def destroy_subscription(self, subscription):
                return True

            def destroy_publisher(self, publisher):
                return True

            def destroy_node(self):
                return True

            def get_logger(self):
                return types.SimpleNamespace(fatal=lambda text: fake.published["/rosout"].append(text),
                                             warning=lambda text: fake.published["/rosout"].append(text))

            def get_clock(self):
                return types.SimpleNamespace(now=lambda: types.SimpleNamespace(nanoseconds=10**18))

            def declare_parameter(self, name, value):
                return Parameter(name, fake.parameters.get(name, value))

            def add_on_set_parameters_callback(self, callback):
                self.callbacks.append(callback)

        class SingleThreadedExecutor:
            def __init__(self, *, context=None):
                self.context = context

            def add_node(self, node):
                pass

            def remove_node(self, node):
                pass

            def spin_once(self, timeout_sec=None):
                while fake.queue:
                    callback, argument = fake.queue.pop(0)
                    callback(argument)
                if fake.spins_left is not None:
                    fake.spins_left -= 1
                    if fake.spins_left <= 0:
                        self.context.ok = False

        class Enum:
            KEEP_LAST, BEST_EFFORT, RELIABLE, VOLATILE = "keep_last", "best_effort", "reliable", "volatile"

        modules = {
            "rclpy": types.SimpleNamespace(
                init=lambda *, args=None, context=None, domain_id=None: fake.init_calls.append(
                    {"args": args, "domain_id": domain_id}),
                ok=lambda *, context=None: context.ok,
                try_shutdown=lambda *, context=None: setattr(context, "ok", False),
            ),
            "rclpy.context": types.SimpleNamespace(Context=Context),
            "rclpy.node": types.SimpleNamespace(Node=Node),
            "rclpy.executors": types.SimpleNamespace(SingleThreadedExecutor=SingleThreadedExecutor),
            "rclpy.qos": types.SimpleNamespace(QoSProfile=lambda **kw: kw, HistoryPolicy=Enum, ReliabilityPolicy=Enum,
                                               DurabilityPolicy=Enum),
            "rclpy.serialization": types.SimpleNamespace(
                deserialize_message=lambda data, msg_type: fake.from_rosbags(
                    fake.store.deserialize_cdr(data, msg_type._type))),
            "rcl_interfaces.msg": types.SimpleNamespace(
                SetParametersResult=lambda successful, reason="": types.SimpleNamespace(
                    successful=successful, reason=reason)),
        }
        for msgtype, cls in self.classes.items():
            package = msgtype.rsplit("/", 1)[0].replace("/", ".")
            modules.setdefault(package, types.SimpleNamespace())
            setattr(modules[package], cls.__name__, cls)
        return {name: module for name, module in modules.items()}


@pytest.fixture
def ros(monkeypatch):
    store = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_HUMBLE)
    store.register(rosbags_typesys.get_types_from_msg(REWARD_MSG, REWARD_TYPE))
    fake = FakeRos(store)
    for name, module in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    for package in ("builtin_interfaces", "sensor_msgs", "std_msgs", "robo_reward_msgs", "rcl_interfaces"):
        monkeypatch.setitem(sys.modules, package, types.ModuleType(package))
    for variable in ("ROS_LOCALHOST_ONLY", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.delenv(variable, raising=False)  # restored after the test
    return fake


def image_message(fake: FakeRos, nanosec: int, view_index: int, phase: float):
    height, width, step, data = rgb_to_raw(pattern_image(view_index, phase))
    image = fake.classes["sensor_msgs/msg/Image"](height=height, width=width, encoding="rgb8", step=step,
                                                   data=array.array("B", data))
    image.header.stamp.sec, image.header.stamp.nanosec = 100, nanosec
    return image


def test_reward_node_on_rclpy_publishes_ros2_rewards(ros, monkeypatch, tmp_path):
    checkpoint = fit_pattern_model(("front", "wrist")).save(tmp_path / "model.pt")
    ros.parameters.update(views="front=/cam/front/image_raw, wrist=/cam/wrist/image_raw", task="slide",
                          model=str(checkpoint))
    ros.spins_left = 1_000_000  # ended below

    import robo_reward.ros2.node as node_module

    captured = {}
    original_run = node_module.RewardNode.run

    def run(self, stop, duration_s=None):
        captured["node"] = self
        for k in range(3):
            for i, view in enumerate(("front", "wrist")):
                ros.deliver(f"/cam/{view}/image_raw", image_message(ros, k * 100_000_000, i, k / 2))
        ros.deliver("/cam/wrist/image_raw", raw=b"\x00\x01\x00\x00\x07")  # truncated CDR
        ros.deliver("/robo_reward/task", ros.classes["std_msgs/msg/String"](data="slide back"))
        ros.spins_left = 3
        return original_run(self, stop, duration_s)

    monkeypatch.setattr(node_module.RewardNode, "run", run)
    assert reward_node_main(["reward_node", "--ros-args"]) == 0
    assert ros.init_calls == [{"args": ["reward_node", "--ros-args"], "domain_id": None}]
    node = captured["node"]
    assert node.transport.malformed == {"/cam/wrist/image_raw": 1}
    while node.stream.process(timeout_s=0.0):
        pass
    rewards = ros.published["/robo_reward/reward"]
    assert [(m.header.stamp.sec, m.header.stamp.nanosec) for m in rewards] == [(100, k * 10**8) for k in range(3)]
    for message in rewards:  # what ROS 2 puts on the wire decodes with the DDS transport's struct
        decoded = dds_types.Reward.deserialize(ros.serialize(message))
        assert decoded.view_names == ["front", "wrist"] and decoded.valid and decoded.view_valid == [True, True]
        assert decoded.progress == pytest.approx(message.progress) and decoded.task in {"slide", "slide back"}
        assert [t.nanosec for t in decoded.source_stamps] == [message.header.stamp.nanosec] * 2
    assert not math.isnan(rewards[-1].view_progress[1])
    assert json.loads(ros.published["/robo_reward/diagnostics"][-1].data)["task"] == "slide back"

    # only the task may change at run time
    ok = _on_set_parameters(node, [types.SimpleNamespace(name="task", value="reach")])
    refused = _on_set_parameters(node, [types.SimpleNamespace(name="gamma", value=0.5)])
    empty = _on_set_parameters(node, [types.SimpleNamespace(name="task", value=" ")])
    assert ok.successful and not refused.successful and not empty.successful
    assert "only 'task'" in refused.reason


def test_parameters_that_do_not_parse_exit_2(ros):
    ros.parameters.update(views="front", task="slide")
    assert reward_node_main(["reward_node"]) == 2
    assert "expected NAME=TOPIC" in ros.published["/rosout"][0]


def test_parameters_the_node_cannot_start_with_exit_1(ros):
    ros.parameters.update(views="front=/cam/front/image_raw", task="slide", model="no-such-model")
    assert reward_node_main(["reward_node"]) == 1
    assert "neither a registered model" in ros.published["/rosout"][0]


def test_deprecated_cameras_parameter_still_works_and_warns(ros):
    ros.parameters.update(cameras="front", task="slide")  # the old name reaches the same checks
    assert reward_node_main(["reward_node"]) == 2
    warning, fatal = ros.published["/rosout"]
    assert "'cameras' is deprecated: use 'views'" in warning and "expected NAME=TOPIC" in fatal
    ros.published.clear()
    ros.parameters.update(views="front=/a", cameras="front=/b")
    assert reward_node_main(["reward_node"]) == 2
    assert "disagree: set 'views' only" in ros.published["/rosout"][0]


def test_transport_publishers_and_subscribers_round_trip(ros):
    from robo_reward.interfaces.messages import CompressedImageMessage, JointStateMessage
    from robo_reward.ros2.rclpy_transport import RclpyTransport

    transport = RclpyTransport.create("sim_robot", domain_id=7, localhost_only=True)
    assert ros.init_calls[-1]["domain_id"] == 7
    import os

    assert os.environ["ROS_LOCALHOST_ONLY"] == "1"
    received = defaultdict(list)
    transport.subscribe_image("/cam/image_raw/compressed", received["image"].append)
    transport.subscribe_joint_state("/joints", received["joints"].append)
    transport.subscribe_float_array("/action", received["action"].append)
    transport.subscribe_empty("/reset", lambda: received["reset"].append(True))
    transport.subscribe_reward("/reward", received["reward"].append)
    image = transport.image_publisher("/cam/image_raw/compressed")
    image.publish(CompressedImageMessage(5 * 10**9 + 7, "cam", "jpeg", b"\xff\xd8data"))
    transport.joint_state_publisher("/joints").publish(
        JointStateMessage(3, ("j1", "j2"), (0.5, -0.5), (0.0, 1.0), ()))
    transport.float_array_publisher("/action").publish(np.array([1.0, -1.0, 0.5], np.float32))
    transport.empty_publisher("/reset").publish(None)
    for topic, messages in list(ros.published.items()):
        for message in messages:
            ros.deliver(topic, message)
    transport.spin(types.SimpleNamespace(is_set=lambda: bool(received["reset"])))
    assert received["image"] == [CompressedImageMessage(5 * 10**9 + 7, "cam", "jpeg", b"\xff\xd8data")]
    assert received["joints"][0].position == (0.5, -0.5) and received["joints"][0].name == ("j1", "j2")
    assert received["action"][0].tolist() == [1.0, -1.0, 0.5]
    assert image.subscription_count() == 1
    assert {q["reliability"] for _, _, q, _ in ros.subscriptions["/cam/image_raw/compressed"]} == {"best_effort"}
    assert {q["depth"] for _, _, q, _ in ros.subscriptions["/reward"]} == {10}
    transport.close()
    assert set(REWARD_PARAMETERS) >= {"views", "task", "model", "max_rate"}
