"""Outside formats without their libraries: the ROS 2 ``robo_reward_msgs/msg/Reward``
definition and the ``sensor_msgs`` image encodings (shared by the bag reader/writer and both
live transports), in-memory mp4 clips (the VLM client), and LeRobot's feature-key names."""
