"""The reward node's wiring on an in-process transport: topics, task and reset inputs,
diagnostics, unreadable messages; and its configuration checks."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict

import numpy as np
import pytest

from robo_reward.errors import ConfigError, UsageError
from robo_reward.interfaces.messages import image_message
from robo_reward.ros2.node import MAX_TASK_CHARS, NodeConfig, RewardNode, parse_view_topics
from robo_reward.ros2.pattern import fit_pattern_model, pattern_image
from robo_reward.ros2.transport import Publisher, Transport, resolve_topic, undecodable

VIEWS = ("front", "wrist")


class _Publisher(Publisher):
    def __init__(self, topic: str, sink: list) -> None:
        self.topic, self.sink = topic, sink

    def publish(self, message) -> None:
        self.sink.append(message)

    def subscription_count(self) -> int:
        return 1


class InProcessTransport(Transport):
    """Delivers synchronously: publishing to a topic calls its subscribers at once."""

    def __init__(self) -> None:
        super().__init__("robo_reward")
        self.handlers: dict[str, list] = defaultdict(list)
        self.errors: dict[str, list] = defaultdict(list)
        self.sent: dict[str, list] = defaultdict(list)

    def _sub(self, topic, callback, on_error=None):
        self.handlers[self.resolve(topic)].append(callback)
        if on_error:
            self.errors[self.resolve(topic)].append(on_error)

    def _pub(self, topic):
        return _Publisher(self.resolve(topic), self.sent[self.resolve(topic)])

    def deliver(self, topic, message=None):
        for handler in self.handlers[self.resolve(topic)]:
            handler(*(() if message is None else (message,)))

    def corrupt(self, topic):
        for on_error in self.errors[self.resolve(topic)]:
            self.count_malformed(self.resolve(topic), undecodable(ValueError("truncated")), on_error)

    subscribe_image = _sub
    subscribe_string = subscribe_empty = subscribe_float_array = subscribe_reward = subscribe_joint_state = _sub
    image_publisher = reward_publisher = string_publisher = empty_publisher = _pub
    float_array_publisher = joint_state_publisher = _pub

    def spin(self, stop):
        stop.wait()

    def close(self):
        pass


@pytest.fixture(scope="module")
def model():
    return fit_pattern_model(VIEWS)


def send_set(transport, k, cameras):
    for i, (view, topic) in enumerate(cameras.items()):
        transport.deliver(topic, image_message(topic, pattern_image(i, k / 9), 1_000 + k, view))


def test_node_scores_topics_and_obeys_task_and_reset(model):
    transport = InProcessTransport()
    cameras = {"front": "/cam/front/image_raw", "wrist": "/cam/wrist/image_raw/compressed"}
    node = RewardNode(transport, model, NodeConfig.build(cameras, "slide", "pattern"))

    def score_pending():
        while node.stream.process(timeout_s=0.0):
            pass

    send_set(transport, 0, cameras)
    send_set(transport, 1, cameras)
    score_pending()
    transport.deliver("/robo_reward/task", "slide faster")  # applies from the next micro-batch on
    transport.deliver("/robo_reward/task", "   ")  # refused: empty
    transport.deliver("/robo_reward/task", "x" * (MAX_TASK_CHARS + 1))  # refused: too long
    send_set(transport, 2, cameras)
    score_pending()
    transport.deliver("/robo_reward/episode_reset")
    transport.corrupt("/cam/wrist/image_raw/compressed")
    score_pending()
    rewards = transport.sent["/robo_reward/reward"]
    assert [r.stamp_ns for r in rewards] == [1_000, 1_001, 1_002]
    assert [r.task for r in rewards] == ["slide", "slide", "slide faster"]
    assert [r.episode for r in rewards] == [0, 0, 1] and rewards[2].reward == 0.0
    assert all(r.model == "pattern" and r.view_names == VIEWS for r in rewards)
    report = node.publish_diagnostics()
    assert report["undecodable"] == {"/cam/wrist/image_raw/compressed": 1}
    assert report["views"]["wrist"]["malformed"] == 1 and report["episode"] == 1  # reset applies to the next set
    assert report["views"]["wrist"]["malformed_reasons"] == {"undecodable": 1}
    assert report["task_refused"] == {"empty": 1, "too_long": 1} and report["task"] == "slide faster"
    assert json.loads(transport.sent["/robo_reward/diagnostics"][-1])["published"] == 3


def test_node_run_publishes_diagnostics_periodically_and_stops(model):
    transport = InProcessTransport()
    node = RewardNode(transport, model, NodeConfig.build(["front=/a", "wrist=/b"], "slide", "pattern",
                                                         diagnostics_period_s=0.05))
    started = time.monotonic()
    report = node.run(threading.Event(), duration_s=0.3)
    assert time.monotonic() - started < 30
    assert len(transport.sent["/robo_reward/diagnostics"]) >= 2
    assert report["published"] == 0


def test_topic_names_resolve_like_ros2():
    assert resolve_topic("~/reward", "robo_reward") == "/robo_reward/reward"
    assert resolve_topic("cam/image_raw", "n") == "/cam/image_raw"
    for bad in ("/cam//image", "/1cam", "/cam/", "/cam image", ""):
        with pytest.raises(ConfigError, match="invalid ROS 2 topic name"):
            resolve_topic(bad, "n")


def test_view_arguments_are_checked():
    assert parse_view_topics(["front=/cam/front/image_raw", "wrist = /w"]) == {
        "front": "/cam/front/image_raw", "wrist": "/w"}
    for items, message in ((["front"], "NAME=TOPIC"), ([], "no views"), (["a=/x", "a=/y"], "twice"),
                           (["9a=/x"], "view name"), (["a=/x y"], "view 'a': invalid ROS 2 topic name")):
        with pytest.raises(UsageError, match=message):  # exit code 2: the command line / parameters are wrong
            parse_view_topics(items)


def test_node_config_refuses_unknown_options_and_empty_task():
    with pytest.raises(ConfigError, match="unknown reward node option"):
        NodeConfig.build(["a=/x"], "t", "m", slop=1.0)
    with pytest.raises(Exception, match="empty task"):
        NodeConfig.build(["a=/x"], " ", "m")
    config = NodeConfig.build(["a=/x"], "t", "m", slop_s=0.02, diagnostics_period_s=1.0)
    assert config.stream.slop_s == 0.02 and config.stream.views == ("a",)


def test_image_message_picks_the_type_from_the_topic():
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert type(image_message("/c/image_raw/compressed", rgb, 1, "c")).__name__ == "CompressedImageMessage"
    raw = image_message("/c/image_raw", rgb, 1, "c", "bgra8")
    assert (raw.encoding, raw.step, len(raw.data)) == ("bgra8", 16, 64)
