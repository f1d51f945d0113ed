"""Launch the robo_reward reward node (rclpy) on camera topics.

    ros2 launch robo_reward_ros reward.launch.py \
        views:="front=/cam/front/image_raw,wrist=/cam/wrist/image_raw/compressed" \
        task:="open the drawer" model:=/path/to/model.pt max_rate:=10.0 domain:=7

``views``, ``task``, ``model`` and ``max_rate`` come from the launch arguments and set the
node parameters of the same names (``views``, comma-separated here, becomes the node's
string-array parameter); every other parameter (synchronisation, batching,
shaping, topic names) from ``params_file`` (default: reward_params.yaml beside this file).
``domain`` sets ROS_DOMAIN_ID for the node. ``cameras`` and ``rate``, the former names of
``views`` and ``max_rate``, still work and log a deprecation warning.
"""

from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

DEFAULT_VIEWS = "front=/camera/front/image_raw"
#: Renamed launch arguments: old name → new name.
DEPRECATED = {"cameras": "views", "rate": "max_rate"}


def reward_node(context, *args, **kwargs) -> list:
    """The node, with each deprecated argument that was given standing in for its new name."""
    values = {name: LaunchConfiguration(name).perform(context) for name in ("views", "max_rate", *DEPRECATED)}
    actions = []
    for old, new in DEPRECATED.items():
        if values[old]:
            actions.append(LogInfo(msg=f"robo_reward launch: argument '{old}' is deprecated, use '{new}:=...'"))
            values[new] = values[old]
    actions.append(Node(
        package="robo_reward_ros",
        executable="reward_node",
        name="robo_reward",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "views": [view.strip() for view in (values["views"] or DEFAULT_VIEWS).split(",") if view.strip()],
                "task": ParameterValue(LaunchConfiguration("task"), value_type=str),
                "model": ParameterValue(LaunchConfiguration("model"), value_type=str),
                "max_rate": ParameterValue(values["max_rate"] or "0.0", value_type=float),
            },
        ],
    ))
    return actions


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(
            "views", default_value=DEFAULT_VIEWS,
            description="comma-separated NAME=TOPIC pairs, one per camera view; a topic ending in /compressed "
                        "carries CompressedImage"),
        DeclareLaunchArgument("task", default_value="open the drawer", description="the task instruction"),
        DeclareLaunchArgument(
            "model", default_value="",
            description="registered model name or checkpoint path (empty: the embedded default model)"),
        DeclareLaunchArgument("max_rate", default_value="0.0",
                              description="most rewards per second, Hz (0: every image set)"),
        DeclareLaunchArgument(
            "domain", default_value=EnvironmentVariable("ROS_DOMAIN_ID", default_value="0"),
            description="ROS_DOMAIN_ID of the node"),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("robo_reward_ros"), "launch", "reward_params.yaml"]),
            description="parameters of the reward node"),
        DeclareLaunchArgument("cameras", default_value="", description="deprecated: use views"),
        DeclareLaunchArgument("rate", default_value="", description="deprecated: use max_rate"),
    ]
    return LaunchDescription([*arguments, SetEnvironmentVariable("ROS_DOMAIN_ID", LaunchConfiguration("domain")),
                              OpaqueFunction(function=reward_node)])
