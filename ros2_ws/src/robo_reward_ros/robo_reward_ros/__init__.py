"""ROS 2 nodes of robo_reward; the logic lives in the ``robo_reward`` Python package."""
