"""rclpy's CDR of robo_reward_msgs/Reward (run by a ROS 2 venv's python with the built package).

    python reward_cdr.py FIELDS.json        prints {"cdr": hex of serialize_message(Reward(**fields)),
                                                    "decoded": fields of deserialize_message(--decode HEX)}
"""

import argparse
import json
import sys

from rclpy.serialization import deserialize_message, serialize_message
from robo_reward_msgs.msg import Reward


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("fields")
    parser.add_argument("--decode", default="")
    args = parser.parse_args()
    with open(args.fields) as file:
        fields = json.load(file)
    message = Reward()
    stamp = fields.pop("stamp_ns")
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(stamp, 10**9)
    message.header.frame_id = fields.pop("frame_id")
    sources = fields.pop("source_stamps_ns")
    for name, value in fields.items():
        setattr(message, name, value)
    from builtin_interfaces.msg import Time

    message.source_stamps = [Time(sec=s // 10**9, nanosec=s % 10**9) for s in sources]
    out = {"cdr": serialize_message(message).hex()}
    if args.decode:
        decoded = deserialize_message(bytes.fromhex(args.decode), Reward)
        out["decoded"] = {name: getattr(decoded, name) for name in fields}
        out["decoded"]["stamp_ns"] = decoded.header.stamp.sec * 10**9 + decoded.header.stamp.nanosec
        out["decoded"]["source_stamps_ns"] = [t.sec * 10**9 + t.nanosec for t in decoded.source_stamps]
        out["decoded"] = {k: (list(v) if not isinstance(v, (str, int, float, bool)) else v)
                          for k, v in out["decoded"].items()}
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
