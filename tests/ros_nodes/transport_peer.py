"""robo_reward's rclpy transport on real rclpy (run by a ROS 2 venv's python with the built
robo_reward_msgs): publishes one message of every type it has on /out/*, repeatedly until each
publisher is matched and the checker says stop, and records what arrives on /in/*.

    python transport_peer.py --domain 123 --seconds 40

Prints READY, then one JSON line: what came in, and the discovery variables after start-up.
"""

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

from robo_reward.interfaces.messages import CompressedImageMessage, ImageMessage, JointStateMessage
from robo_reward.ros2.rclpy_transport import RclpyTransport
from robo_reward.stream.records import RewardRecord

REWARD = RewardRecord(
    stamp_ns=7 * 10**9 + 5, reward=0.25, progress=0.5, success_probability=0.125, uncertainty=0.0, valid=True,
    status="", task="open the drawer", model="m", episode=2, step=9, view_names=("front",), view_progress=(0.5,),
    view_valid=(True,), source_stamps_ns=(7 * 10**9 + 5,))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domain", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    transport = RclpyTransport.create("peer", domain_id=args.domain, localhost_only=True)
    environment = {name: os.environ.get(name) for name in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")}
    received = {"image": [], "compressed": [], "joints": [], "action": [], "reward": [], "reset": 0, "text": []}
    transport.subscribe_image("/in/image_raw", lambda m: received["image"].append(
        [m.stamp_ns, m.frame_id, m.height, m.width, m.encoding, m.step, m.data.hex()[:16]]))
    transport.subscribe_image("/in/image_raw/compressed", lambda m: received["compressed"].append(
        [m.stamp_ns, m.format, m.data.hex()]))
    transport.subscribe_joint_state("/in/joints", lambda m: received["joints"].append([list(m.name), list(m.position)]))
    transport.subscribe_float_array("/in/action", lambda a: received["action"].append(a.tolist()))
    transport.subscribe_reward("/in/reward", lambda r: received["reward"].append([r.stamp_ns, r.task, r.progress]))
    transport.subscribe_empty("/in/reset", lambda: received.__setitem__("reset", received["reset"] + 1))
    transport.subscribe_string("/in/stop", received["text"].append)
    out = {
        "image": (transport.image_publisher("/out/image_raw"),
                  ImageMessage(9 * 10**9, "cam", 2, 2, "rgb8", 0, 6, bytes(range(12)))),
        "compressed": (transport.image_publisher("/out/image_raw/compressed"),
                       CompressedImageMessage(9 * 10**9 + 1, "cam", "jpeg", b"\xff\xd8jpeg")),
        "joints": (transport.joint_state_publisher("/out/joints"),
                   JointStateMessage(9 * 10**9 + 2, ("j1", "j2"), (0.5, -0.5), (0.0, 1.0), ())),
        "action": (transport.float_array_publisher("/out/action"), np.array([1.0, -1.0, 0.5], np.float32)),
        "reward": (transport.reward_publisher("/out/reward"), REWARD),
        "reset": (transport.empty_publisher("/out/reset"), None),
    }
    stop = threading.Event()
    spinner = threading.Thread(target=transport.spin, args=(stop,), daemon=True)
    spinner.start()
    print("READY", flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and not received["text"]:
        for publisher, message in out.values():
            if publisher.subscription_count():
                publisher.publish(message)
        time.sleep(0.1)
    stop.set()
    spinner.join(timeout=5)
    transport.close()
    print(json.dumps({"received": received, "environment": environment}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
