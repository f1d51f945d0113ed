"""The live path against real ROS 2 (rclpy from PyPI wheels: Kilted on Fast DDS 3.2, Jazzy on
Fast DDS 2.14; ``scripts/install_ros2.sh``), each counterpart a plain rclpy program in its
own process (``tests/ros_nodes/``), on loopback and a random domain:

* rclpy cameras (Fast DDS) → ``robo-reward serve --transport dds`` (Cyclone DDS) → rewards
  to an rclpy subscriber of the built ``robo_reward_msgs`` and to a Cyclone subscriber;
* Cyclone DDS image publishers (the transport ``sim-robot`` publishes with) → an rclpy
  subscriber: every image after the match delivered;
* the reward node on real rclpy (the ``reward_node`` entry point, the launch file's
  parameters YAML) fed by Cyclone DDS cameras;
* robo_reward's Reward CDR against ``rclpy.serialization.serialize_message``.

Localhost on both sides: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` for rclpy, and
``--localhost-only`` / ``DdsTransport(localhost_only=True)`` for Cyclone.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time

import numpy as np
import pytest
from ros_stack import (
    DISTROS,
    NODES,
    REWARD_NODE,
    TASK,
    VIEWS,
    cyclone_cameras_to_rclpy_node,
    finish,
    free_domain,
    last_json,
    rclpy_cameras_to_serve,
    rclpy_graph,
    require,
    set_stamp,
    start,
    wait_for_line,
    wait_until,
)
from scipy.stats import spearmanr

pytest.importorskip("cyclonedds")

from robo_reward.interfaces.messages import image_message
from robo_reward.ros2.dds import DdsTransport

pytestmark = pytest.mark.slow

SETS = 240  # 8 s at 30 Hz


@pytest.mark.parametrize("distro", DISTROS)
def test_rclpy_cameras_reach_serve_over_cyclone_and_both_stacks_get_the_rewards(distro, tmp_path):
    require(distro)
    result = rclpy_cameras_to_serve(distro, tmp_path, SETS)
    rclpy_sets, cyclone_sets = result["rclpy_sets"], result["cyclone_sets"]
    log = (tmp_path / "node.log").read_text()[-2000:]
    assert len(rclpy_sets) >= 0.95 * SETS, f"{len(rclpy_sets)}/{SETS} sets rewarded to rclpy; node log:\n{log}"
    assert len(cyclone_sets) >= 0.95 * SETS, f"{len(cyclone_sets)}/{SETS} sets rewarded to Cyclone"
    by_stamp = {r["stamp"]: r["progress"] for r in cyclone_sets}
    assert all(r["progress"] == pytest.approx(by_stamp[r["stamp"]]) for r in rclpy_sets if r["stamp"] in by_stamp)
    assert rclpy_sets[0]["view_names"] == list(VIEWS) and rclpy_sets[0]["task"] == TASK
    # the frames loop over a successful episode (99 frames): progress climbs within each loop
    first_loop = [r for r in rclpy_sets if r["stamp"] < set_stamp(99)]
    assert spearmanr([r["stamp"] for r in first_loop], [r["progress"] for r in first_loop])[0] > 0.5


@pytest.mark.parametrize("distro", DISTROS)
def test_every_image_cyclone_publishes_reaches_an_rclpy_subscriber(distro, tmp_path):
    require(distro)
    domain = free_domain()
    count = 150
    topics = {"front": "/sim/front/image_raw", "wrist": "/sim/wrist/image_raw/compressed"}
    listener = start(distro, domain, [str(NODES / "listen.py"), "--image", topics["front"], "--until", str(count),
                                      "--timeout", "90"], tmp_path / "listener.log")
    cyclone = DdsTransport(domain, localhost_only=True, node_name="sim_robot")
    try:
        publisher = cyclone.image_publisher(topics["front"])
        wait_for_line(tmp_path / "listener.log", "READY", listener, 60)
        wait_until(lambda: publisher.subscription_count() > 0, 60, "the rclpy subscriber to match")
        time.sleep(1.0)
        rng = np.random.default_rng(0)
        for k in range(count):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            publisher.publish(image_message(topics["front"], image, 2000 * 10**9 + k * 10**7, "front"))
            time.sleep(1 / 60)
        received = last_json(finish(listener, tmp_path / "listener.log", 90))
    finally:
        if listener.poll() is None:
            listener.kill()
        cyclone.close()
    images = received["images"][topics["front"]]
    assert sorted(m["stamp"] for m in images) == [2000 * 10**9 + k * 10**7 for k in range(count)]
    assert {(tuple(m["size"]), m["encoding"], m["bytes"], m["frame_id"]) for m in images} == {
        ((48, 64), "rgb8", 48 * 64 * 3, "front")}


@pytest.mark.parametrize("distro", DISTROS)
def test_the_reward_node_on_real_rclpy_fed_by_cyclone_cameras(distro, tmp_path):
    require(distro)
    sets = 150
    result = cyclone_cameras_to_rclpy_node(distro, tmp_path, sets, retask_at=sets // 2)
    log = (tmp_path / "node.log").read_text()
    assert result["exit_code"] == 0, log[-3000:]
    good = result["cyclone_sets"]
    assert len(good) >= 0.95 * sets, f"{len(good)}/{sets} sets rewarded; node log:\n{log[-3000:]}"
    assert {r["task"] for r in good} == {TASK, "open the drawer wide"}  # the topic override took
    assert result["diagnostics"][-1]["task"] == "open the drawer wide"
    assert all(math.isfinite(r["progress"]) and 0 <= r["progress"] <= 1 for r in good)


@pytest.mark.parametrize("distro", DISTROS)
def test_the_reward_node_on_rclpy_in_an_all_ros_graph_publishes_rewards_an_rclpy_subscriber_receives(distro, tmp_path):
    require(distro)
    sets = 150
    result = rclpy_graph(distro, tmp_path, sets)
    log = (tmp_path / "node.log").read_text()
    assert result["published"] == sets and result["exit_code"] == 0, log[-3000:]
    rewarded = result["rclpy_sets"]
    assert len(rewarded) >= 0.95 * sets, f"{len(rewarded)}/{sets} sets rewarded to rclpy; node log:\n{log[-3000:]}"
    assert rewarded[0]["view_names"] == list(VIEWS) and {r["task"] for r in rewarded} == {TASK}


@pytest.mark.parametrize("distro", DISTROS)
def test_a_task_on_the_topic_is_written_back_to_the_task_parameter(distro, tmp_path):
    require(distro)
    domain = free_domain()
    node = start(distro, domain, [
        *REWARD_NODE, "-p", "views:=[corner=/c, topview=/t]", "-p", "task:=slide"], tmp_path / "node.log")
    probe = start(distro, domain, [str(NODES / "task_parameter.py"), "--task", "open the drawer"], tmp_path / "probe.log")
    try:
        result = last_json(finish(probe, tmp_path / "probe.log", 90))
    finally:
        node.send_signal(signal.SIGINT)
        finish(node, tmp_path / "node.log", 30)
    assert result["before"] == "slide" and result["after"] == "open the drawer"
    assert result["refused"] == "'gamma' is read at start-up; only 'task' changes at run time"
    assert "empty task" in result["empty_task"] and result["still"] == "open the drawer"


@pytest.mark.parametrize(("parameters", "code", "message"), [
    (["-p", "views:=[front]", "-p", "task:=slide"], 2, "expected NAME=TOPIC"),
    (["-p", "views:=[corner=/c, topview=/t]", "-p", "task:=slide", "-p", "model:=no-such-model"], 1,
     "neither a registered model"),
    (["-p", "views:=corner=/c,topview=/t", "-p", "task:=slide", "-p", "model:=no-such-model"], 1,
     "parameter 'views' as one comma-separated string is deprecated"),
    (["-p", "cameras:=[corner=/c, topview=/t]", "-p", "task:=slide", "-p", "model:=no-such-model"], 1,
     "parameter 'cameras' is deprecated: use 'views'"),
    (["-p", "views:=[corner=/a]", "-p", "cameras:=[corner=/b]", "-p", "task:=slide"], 2, "disagree: set 'views' only"),
])
def test_reward_node_parameters_that_do_not_parse_exit_2_and_that_cannot_start_exit_1(parameters, code, message,
                                                                                         tmp_path):
    require("kilted")
    process = start("kilted", free_domain(), [
        *REWARD_NODE, *parameters], tmp_path / "node.log")
    log = finish(process, tmp_path / "node.log", 120)
    assert process.returncode == code, log[-2000:]
    assert message in log


@pytest.mark.parametrize("distro", DISTROS)
def test_the_reward_cdr_is_what_rclpy_serializes(distro, tmp_path):
    require(distro)
    from robo_reward.ros2 import dds_types
    from robo_reward.ros2.transport import reward_fields
    from robo_reward.stream.records import RewardRecord

    record = RewardRecord(
        stamp_ns=12 * 10**9 + 345, reward=0.125, progress=0.5, success_probability=0.25, uncertainty=0.0625,
        valid=True, status="view 'wrist' stale", task="open the drawer", model="progress_ml45.pt", episode=3, step=41,
        view_names=("corner", "wrist"), view_progress=(0.5, float("nan")), view_valid=(True, False),
        source_stamps_ns=(12 * 10**9 + 345, 11 * 10**9))
    ours = dds_types.Reward(
        header=dds_types.Header(dds_types.Time(12, 345), ""),
        source_stamps=[dds_types.Time(12, 345), dds_types.Time(11, 0)], **reward_fields(record)).serialize()
    fields = {**reward_fields(record), "stamp_ns": record.stamp_ns, "frame_id": "",
              "source_stamps_ns": list(record.source_stamps_ns)}
    fields["view_progress"] = [0.5, 0.0]  # NaN does not survive JSON; compared apart below
    (tmp_path / "fields.json").write_text(json.dumps(fields))
    process = start(distro, free_domain(), [str(NODES / "reward_cdr.py"), str(tmp_path / "fields.json"),
                                            "--decode", ours.hex()], tmp_path / "cdr.log")
    result = last_json(finish(process, tmp_path / "cdr.log", 60))
    theirs = bytes.fromhex(result["cdr"])
    decoded = result["decoded"]  # rclpy reading our bytes
    assert decoded["task"] == record.task and decoded["view_names"] == list(record.view_names)
    assert decoded["view_valid"] == [True, False] and decoded["step"] == 41 and decoded["reward"] == 0.125
    assert decoded["source_stamps_ns"] == list(record.source_stamps_ns) and decoded["stamp_ns"] == record.stamp_ns
    assert decoded["view_progress"][0] == 0.5 and math.isnan(decoded["view_progress"][1])
    back = dds_types.Reward.deserialize(theirs)  # ours reading rclpy's bytes
    assert back.view_progress == [0.5, 0.0] and back.task == record.task and back.episode == 3
    # the same bytes but for padding, which Fast CDR leaves uninitialised (cyclonedds writes zeros)
    ours_zero_nan = dds_types.Reward(
        header=dds_types.Header(dds_types.Time(12, 345), ""), source_stamps=back.source_stamps,
        **{**reward_fields(record), "view_progress": [0.5, 0.0]}).serialize()
    assert len(theirs) == len(ours_zero_nan)
    differing = [i for i, (a, b) in enumerate(zip(ours_zero_nan, theirs)) if a != b]
    assert all(ours_zero_nan[i] == 0 for i in differing), f"non-padding bytes differ at {differing[:10]}"


@pytest.mark.parametrize("distro", DISTROS)
def test_the_rclpy_transport_and_the_dds_transport_exchange_every_message_type(distro, tmp_path):
    """Both of robo_reward's transports across vendors: the rclpy one on real rclpy (Fast DDS),
    the DDS one on Cyclone, each publishing every message type the other reads."""
    require(distro)
    from robo_reward.interfaces.messages import CompressedImageMessage, ImageMessage, JointStateMessage

    domain = free_domain()
    peer = start(distro, domain, [str(NODES / "transport_peer.py"), "--domain", str(domain)], tmp_path / "peer.log",
                 localhost=False)  # the transport's localhost_only sets it
    cyclone = DdsTransport(domain, localhost_only=True, node_name="checker")
    got = {"image": [], "compressed": [], "joints": [], "action": [], "reward": [], "reset": []}
    cyclone.subscribe_image("/out/image_raw", got["image"].append)
    cyclone.subscribe_image("/out/image_raw/compressed", got["compressed"].append)
    cyclone.subscribe_joint_state("/out/joints", got["joints"].append)
    cyclone.subscribe_float_array("/out/action", got["action"].append)
    cyclone.subscribe_reward("/out/reward", got["reward"].append)
    cyclone.subscribe_empty("/out/reset", lambda: got["reset"].append(True))
    publishers = {
        "image": (cyclone.image_publisher("/in/image_raw"),
                  ImageMessage(4 * 10**9, "cam", 1, 2, "rgb8", 0, 6, bytes(range(6)))),
        "compressed": (cyclone.image_publisher("/in/image_raw/compressed"),
                       CompressedImageMessage(4 * 10**9 + 1, "cam", "png", b"\x89PNG")),
        "joints": (cyclone.joint_state_publisher("/in/joints"),
                   JointStateMessage(4 * 10**9 + 2, ("a",), (1.5,), (0.0,), ())),
        "action": (cyclone.float_array_publisher("/in/action"), np.array([0.25, -0.75], np.float32)),
        "reward": (cyclone.reward_publisher("/in/reward"), None),
        "reset": (cyclone.empty_publisher("/in/reset"), None),
    }
    from ros_nodes.transport_peer import REWARD

    publishers["reward"] = (publishers["reward"][0], REWARD)
    done = cyclone.string_publisher("/in/stop")
    stop = threading.Event()
    spinner = threading.Thread(target=cyclone.spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        wait_for_line(tmp_path / "peer.log", "READY", peer, 60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(got.values()):
            for publisher, message in publishers.values():
                if publisher.subscription_count():
                    publisher.publish(message)
            time.sleep(0.1)
        for _ in range(10):  # a second's more, for the peer to have received ours as well
            for publisher, message in publishers.values():
                publisher.publish(message)
            time.sleep(0.1)
        done.publish("stop")
        result = last_json(finish(peer, tmp_path / "peer.log", 30))
    finally:
        stop.set()
        if peer.poll() is None:
            peer.kill()
        spinner.join(timeout=5)
        cyclone.close()
    # what real rclpy sent, read by the DDS transport
    assert got["image"][0] == ImageMessage(9 * 10**9, "cam", 2, 2, "rgb8", 0, 6, bytes(range(12)))
    assert got["compressed"][0] == CompressedImageMessage(9 * 10**9 + 1, "cam", "jpeg", b"\xff\xd8jpeg")
    assert got["joints"][0].name == ("j1", "j2") and got["joints"][0].position == (0.5, -0.5)
    assert got["action"][0].tolist() == [1.0, -1.0, 0.5] and got["reset"]
    assert got["reward"][0] == REWARD
    # what the DDS transport sent, read by the rclpy transport
    received = result["received"]
    assert received["image"][0] == [4 * 10**9, "cam", 1, 2, "rgb8", 6, bytes(range(6)).hex()]
    assert received["compressed"][0] == [4 * 10**9 + 1, "png", b"\x89PNG".hex()]
    assert received["joints"][0] == [["a"], [1.5]] and received["action"][0] == [0.25, -0.75]
    assert received["reward"][0] == [REWARD.stamp_ns, REWARD.task, REWARD.progress] and received["reset"] > 0
    # --localhost-only reached rclpy's discovery without staying in the process environment
    assert result["environment"] == {"ROS_AUTOMATIC_DISCOVERY_RANGE": None, "ROS_LOCALHOST_ONLY": None}
