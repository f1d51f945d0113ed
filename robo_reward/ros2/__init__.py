"""Live ROS 2: the reward node, its messages and two transports behind one interface.

* :mod:`~robo_reward.ros2.node` — the reward node (transport-agnostic), on top of
  :mod:`robo_reward.stream`;
* :mod:`~robo_reward.interfaces.messages`, :mod:`~robo_reward.interfaces.images` — neutral messages
  and image decoding;
* :mod:`~robo_reward.ros2.dds` — plain Cyclone DDS speaking ROS 2, no ROS install needed
  (its types in :mod:`~robo_reward.ros2.dds_types`);
* :mod:`~robo_reward.ros2.rclpy_transport` — rclpy, where ROS 2 is installed, and
  :mod:`~robo_reward.ros2.entry_points`, the nodes of the ``robo_reward_ros`` package;
* :mod:`~robo_reward.ros2.sim_robot` — a simulated panda-gym robot behind ROS 2 topics;
* :mod:`~robo_reward.ros2.pattern` — test-pattern cameras.

Nothing here is imported by ``import robo_reward``; ``cyclonedds`` and ``rclpy`` are
imported only when a transport is made.
"""
