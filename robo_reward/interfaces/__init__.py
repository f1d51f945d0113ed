"""ROS 2 interfaces without ROS: the ``robo_reward_msgs/msg/Reward`` definition and the
``sensor_msgs`` image encodings, shared by the bag reader/writer and both live transports."""
