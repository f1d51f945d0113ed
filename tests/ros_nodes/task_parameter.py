"""A plain rclpy program (run by a ROS 2 venv's python) that reads and sets the reward node's
parameters over its parameter services and publishes on its task topic.

    python task_parameter.py --task "open the drawer"

Prints {"before": task parameter, "after": task parameter once --task was published on
/robo_reward/task, "refused": why a change of 'gamma' was refused, "empty_task": why a
blank task was refused, "still": the task parameter after that}.
"""

import argparse
import json
import sys
import time

import rclpy
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from std_msgs.msg import String


def call(node, future, timeout_s: float = 10.0):
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
    if not future.done():
        raise TimeoutError("no answer from the reward node's parameter service")
    return future.result()


def task_of(node, client) -> str:
    return call(node, client.get_parameters(["task"])).values[0].string_value


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", required=True)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node("task_probe")
    client = AsyncParameterClient(node, "/robo_reward")
    publisher = node.create_publisher(String, "/robo_reward/task", 10)
    deadline = time.monotonic() + 120
    # the node subscribes to its task topic once its model has loaded; it serves parameters from then on
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    if not client.wait_for_services(timeout_sec=30.0):
        print(json.dumps({"error": "the reward node's parameter services never came up"}))
        return 3
    before = task_of(node, client)
    deadline = time.monotonic() + 30
    after = before
    while after != args.task and time.monotonic() < deadline:
        publisher.publish(String(data=args.task))
        rclpy.spin_once(node, timeout_sec=0.2)
        after = task_of(node, client)
    refused = call(node, client.set_parameters([Parameter("gamma", Parameter.Type.DOUBLE, 0.5)])).results[0]
    empty = call(node, client.set_parameters([Parameter("task", Parameter.Type.STRING, " ")])).results[0]
    print(json.dumps({"before": before, "after": after, "refused": refused.reason, "empty_task": empty.reason,
                      "still": task_of(node, client)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
