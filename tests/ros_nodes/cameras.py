"""A plain rclpy camera driver (run by a ROS 2 venv's python): publishes sensor_msgs/Image sets.

    python cameras.py --frames FRAMES.npz --view corner=/cam/corner/image_raw --view topview=/cam/topview/image_raw
        --sets 300 --rate 30

FRAMES.npz holds one uint8 (T, H, W, 3) array per view name. Waits until every publisher
is matched, then publishes ``--sets`` sets at ``--rate`` Hz, each image of a set with the same
stamp (1000 s + k / rate), frame k mod T, sensor-data QoS; prints one JSON line at the end.
"""

import argparse
import json
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", required=True)
    parser.add_argument("--view", action="append", required=True, help="NAME=TOPIC")
    parser.add_argument("--sets", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--match-timeout", type=float, default=60.0)
    args = parser.parse_args()
    frames = np.load(args.frames)
    views = dict(item.split("=", 1) for item in args.view)
    rclpy.init()
    node = rclpy.create_node("camera_driver")
    publishers = {view: node.create_publisher(Image, topic, qos_profile_sensor_data) for view, topic in views.items()}
    deadline = time.monotonic() + args.match_timeout
    while any(p.get_subscription_count() == 0 for p in publishers.values()):
        if time.monotonic() > deadline:
            print(json.dumps({"error": "no subscriber matched", "published": 0}), flush=True)
            return 3
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)  # the matched reader has matched this writer too
    start = time.monotonic()
    for k in range(args.sets):
        stamp_ns = 1000 * 10**9 + round(k * 1e9 / args.rate)
        for view, publisher in publishers.items():
            image = frames[view][k % len(frames[view])]
            message = Image()
            message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            message.header.frame_id = view
            message.height, message.width = int(image.shape[0]), int(image.shape[1])
            message.encoding, message.is_bigendian, message.step = "rgb8", 0, int(image.shape[1] * 3)
            message.data = image.tobytes()
            publisher.publish(message)
        time.sleep(max(0.0, start + (k + 1) / args.rate - time.monotonic()))
    seconds = time.monotonic() - start
    time.sleep(0.5)
    print(json.dumps({"published": args.sets, "seconds": seconds, "views": sorted(views)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
