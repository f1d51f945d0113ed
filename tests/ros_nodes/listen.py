"""A plain rclpy listener (run by a ROS 2 venv's python): counts sensor_msgs/Image messages
and records robo_reward_msgs/Reward messages, then prints one JSON line.

    python listen.py --image /cam/corner/image_raw --reward /robo_reward/reward --until 300 --timeout 60

Prints ``READY`` once subscribed; stops when every image topic has ``--until`` messages and
``--until`` rewards came, or ``--idle`` seconds after the last message, or at ``--timeout``.
"""

import argparse
import json
import sys
import time

import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


def stamp_ns(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", action="append", default=[])
    parser.add_argument("--reward")
    parser.add_argument("--until", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("listener")
    images = {topic: [] for topic in args.image}
    rewards = []
    for topic in args.image:
        node.create_subscription(
            Image, topic,
            lambda m, topic=topic: images[topic].append(
                {"stamp": stamp_ns(m.header), "size": [m.height, m.width], "encoding": m.encoding,
                 "bytes": len(m.data), "frame_id": m.header.frame_id}),
            qos_profile_sensor_data)
    if args.reward:
        from robo_reward_msgs.msg import Reward

        node.create_subscription(Reward, args.reward, lambda m: rewards.append({
            "stamp": stamp_ns(m.header), "reward": m.reward, "progress": m.progress, "valid": m.valid,
            "status": m.status, "task": m.task, "view_names": list(m.view_names),
            "view_valid": [bool(v) for v in m.view_valid], "episode": m.episode, "step": m.step}), 100)
    print("READY", flush=True)
    deadline = time.monotonic() + args.timeout
    last_count, last_change = 0, time.monotonic()
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if all(len(v) >= args.until for v in images.values()) and (not args.reward or len(rewards) >= args.until):
            break
        count = len(rewards) + sum(len(v) for v in images.values())
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif count and time.monotonic() - last_change > args.idle:
            break
    print(json.dumps({"images": images, "rewards": rewards}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
