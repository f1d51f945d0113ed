"""``ros2 run robo_reward_ros sim_robot``: the simulated panda-gym robot on rclpy."""

import sys

from robo_reward.ros2.entry_points import sim_robot_main


def main(args=None) -> None:
    sys.exit(sim_robot_main(args))
