"""``ros2 run robo_reward_ros reward_node``: the reward node on rclpy (see robo_reward.ros2.entry_points)."""

import sys

from robo_reward.ros2.entry_points import reward_node_main


def main(args=None) -> None:
    sys.exit(reward_node_main(args))
