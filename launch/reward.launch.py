"""Launch the robo_reward reward node (rclpy) on camera topics.

    ros2 launch robo_reward_ros reward.launch.py \
        cameras:="front=/cam/front/image_raw,wrist=/cam/wrist/image_raw/compressed" \
        task:="open the drawer" model:=/path/to/model.pt rate:=10.0 domain:=7

``cameras``, ``task``, ``model`` and ``rate`` come from the launch arguments; every other
parameter (synchronisation, batching, shaping, topic names) from ``params_file``
(default: reward_params.yaml beside this file). ``domain`` sets ROS_DOMAIN_ID for the node.
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(
            "cameras", default_value="front=/camera/front/image_raw",
            description="comma-separated VIEW=TOPIC pairs; a topic ending in /compressed carries CompressedImage"),
        DeclareLaunchArgument("task", default_value="open the drawer", description="the task instruction"),
        DeclareLaunchArgument(
            "model", default_value="",
            description="registered model name or checkpoint path (empty: the embedded default model)"),
        DeclareLaunchArgument("rate", default_value="0.0", description="most rewards per second (0: every image set)"),
        DeclareLaunchArgument(
            "domain", default_value=EnvironmentVariable("ROS_DOMAIN_ID", default_value="0"),
            description="ROS_DOMAIN_ID of the node"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("robo_reward_ros"), "launch", "reward_params.yaml"]),
            description="parameters of the reward node"),
    ]
    node = Node(
        package="robo_reward_ros",
        executable="reward_node",
        name="robo_reward",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "cameras": ParameterValue(LaunchConfiguration("cameras"), value_type=str),
                "task": ParameterValue(LaunchConfiguration("task"), value_type=str),
                "model": ParameterValue(LaunchConfiguration("model"), value_type=str),
                "max_rate": ParameterValue(LaunchConfiguration("rate"), value_type=float),
            },
        ],
    )
    return LaunchDescription([*arguments, SetEnvironmentVariable("ROS_DOMAIN_ID", LaunchConfiguration("domain")), node])
