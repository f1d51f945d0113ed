"""Entry points of the ``robo_reward_ros`` ROS 2 package (rclpy), configured by ROS parameters.

``ros2 run robo_reward_ros reward_node --ros-args -p "views:=[front=/cam/front/image_raw, wrist=/cam/wrist/image_raw]"
-p task:="open the drawer"`` or ``ros2 launch robo_reward_ros reward.launch.py`` (see
``launch/reward.launch.py``). ``views`` and ``model_options`` are string arrays, as ROS
users pass lists (one comma-separated string is still read, with a deprecation warning).
The ``task`` parameter is the task: ``ros2 param set /robo_reward task "…"`` changes it at
run time; the ``~/task`` topic is an override for programs that publish rather than set
parameters, and a task received there is written back to the parameter, so ``ros2 param
get`` always shows the task being rewarded. The other parameters are read at start-up. Parameters follow the ROS convention: seconds and hertz without a
suffix (``slop``, ``max_rate``); the Python fields they fill carry the unit (``slop_s``,
``max_rate_hz``); docs/ros2.md has the table. Exit codes as the CLI's: 2 when a
parameter cannot be parsed (:class:`~robo_reward.errors.UsageError`), 1 when the node
cannot start with them (a model that does not load, a value out of range).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from typing import Any

from robo_reward.errors import RoboRewardError, UsageError, exit_code

#: Reward node parameters and their defaults (the types ROS 2 declares them with).
REWARD_PARAMETERS: dict[str, Any] = {
    "views": [],  # NAME=TOPIC per view
    "task": "",
    "model": "",
    "model_options": [],  # KEY=VALUE per field of the model's config
    "gamma": 0.99,
    "slop": 0.05,
    "queue_size": 5,
    "stale_timeout": 0.5,
    "max_batch": 8,
    "max_wait": 0.0,
    "max_pending": 16,
    "max_rate": 0.0,
    "max_future": 10.0,
    "diagnostics_period": 2.0,
    "torch_threads": 1,
    "reward_topic": "~/reward",
    "task_topic": "~/task",
    "reset_topic": "~/episode_reset",
    "diagnostics_topic": "~/diagnostics",
    "cameras": [],  # deprecated alias of "views"
}

#: Renamed reward node parameters: old name → new name (the old one still works, with a warning).
DEPRECATED_REWARD_PARAMETERS: dict[str, str] = {"cameras": "views"}

#: Simulated robot parameters and their defaults (``max_episode_steps`` 0: the task's limit).
SIM_ROBOT_PARAMETERS: dict[str, Any] = {
    "task": "PandaReach-v3",
    "cameras": ["front", "side"],
    "image_height": 96,
    "image_width": 96,
    "rate": 10.0,
    "prefix": "/sim",
    "compressed": False,
    "reset_topic": "/robo_reward/episode_reset",
    "action_timeout": 0.5,
    "max_episode_steps": 0,
    "seed": 0,
}


def _items(value: str | Sequence[str], name: str, logger: Any) -> list[str]:
    """A string-array parameter's items; the former one-string form ``"a=1, b=2"`` is split at
    commas, with a deprecation warning."""
    if isinstance(value, str):
        if value.strip():
            logger.warning(f"parameter '{name}' as one comma-separated string is deprecated: give a string array, "
                           f"e.g. -p \"{name}:=[{value.split(',')[0].strip()}, …]\"")
        value = value.split(",")
    return [str(item).strip() for item in value if str(item).strip()]


def _declare(node: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """Declare ``parameters`` on ``node``; list-valued ones as string arrays that also take a
    string (dynamic typing: the former comma-separated form)."""
    from rcl_interfaces.msg import ParameterDescriptor

    values = {}
    for name, default in parameters.items():
        descriptor = ParameterDescriptor(dynamic_typing=isinstance(default, list))
        values[name] = node.declare_parameter(name, default, descriptor).value
    return values


def _run_until_shutdown(runnable: Any, transport: Any) -> int:
    """Run ``runnable.run(stop)`` until Ctrl-C or shutdown, then close the transport; exit code 0."""
    stop = threading.Event()
    try:
        runnable.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        transport.close()
    return 0


def _views_parameter(p: dict[str, Any], logger: Any) -> list[str]:
    """``views``, or the deprecated ``cameras`` (with a warning) where that one is set."""
    views, old = _items(p["views"], "views", logger), _items(p["cameras"], "cameras", logger)
    if not old:
        return views
    if views and views != old:
        raise UsageError(f"parameters 'views' ({views}) and its deprecated alias 'cameras' ({old}) "
                         "disagree: set 'views' only")
    logger.warning("parameter 'cameras' is deprecated: use 'views' (the same NAME=TOPIC list)")
    return old


def reward_node_main(args: Sequence[str] | None = None) -> int:
    """Run the reward node on rclpy until shutdown; returns the exit code (2: parameters that do
    not parse, 1: the node cannot start with them)."""
    from robo_reward.assets import DEFAULT_MODEL
    from robo_reward.models.options import load_model_from_text
    from robo_reward.ros2.node import NodeConfig, RewardNode
    from robo_reward.ros2.rclpy_transport import RclpyTransport

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    transport = RclpyTransport.create("robo_reward", args=sys.argv if args is None else args)
    node = transport.node
    try:
        p = _declare(node, REWARD_PARAMETERS)
        model_spec = p["model"] or str(DEFAULT_MODEL)
        logger = node.get_logger()
        config = NodeConfig.build(
            _views_parameter(p, logger), p["task"], model_spec,
            gamma=p["gamma"], slop_s=p["slop"], queue_size=p["queue_size"], stale_timeout_s=p["stale_timeout"],
            max_batch=p["max_batch"], max_wait_s=p["max_wait"], max_pending=p["max_pending"],
            max_rate_hz=p["max_rate"], max_future_s=p["max_future"], reward_topic=p["reward_topic"],
            task_topic=p["task_topic"],
            reset_topic=p["reset_topic"], diagnostics_topic=p["diagnostics_topic"],
            diagnostics_period_s=p["diagnostics_period"],
        )
        if p["torch_threads"] > 0:
            import torch

            torch.set_num_threads(p["torch_threads"])
        model = load_model_from_text(model_spec, _items(p["model_options"], "model_options", logger))
    except RoboRewardError as exc:
        node.get_logger().fatal(f"cannot start: {exc}")
        transport.close()
        return exit_code(exc)
    reward_node = RewardNode(transport, model, config, on_task=lambda task: _task_to_parameter(node, task))
    node.add_on_set_parameters_callback(lambda params: _on_set_parameters(reward_node, params))
    return _run_until_shutdown(reward_node, transport)


def _task_to_parameter(node: Any, task: str) -> None:
    """Write a task that came on the task topic back to the ``task`` parameter (whose callback
    then applies it), so the parameter always holds the task being rewarded."""
    from rclpy.parameter import Parameter

    result = node.set_parameters([Parameter("task", Parameter.Type.STRING, task)])[0]
    if not result.successful:
        node.get_logger().warning(f"task from the task topic refused: {result.reason}")


def _on_set_parameters(reward_node: Any, params: Sequence[Any]) -> Any:
    """Accept a new ``task`` the live node takes (not empty, not too long); refuse changing any
    other node parameter at run time."""
    from rcl_interfaces.msg import SetParametersResult

    from robo_reward.errors import MalformedMessage
    from robo_reward.ros2.node import live_task

    for param in params:
        if param.name == "task":
            try:
                live_task(str(param.value))
            except MalformedMessage as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        if param.name != "task" and param.name in REWARD_PARAMETERS:
            return SetParametersResult(
                successful=False, reason=f"'{param.name}' is read at start-up; only 'task' changes at run time")
    for param in params:
        if param.name == "task":
            reward_node.set_task(str(param.value))
    return SetParametersResult(successful=True)


def sim_robot_main(args: Sequence[str] | None = None) -> int:
    """Run the simulated robot on rclpy until shutdown; returns the exit code (as reward_node_main's)."""
    from robo_reward.ros2.rclpy_transport import RclpyTransport
    from robo_reward.ros2.sim_robot import SimRobot, SimRobotConfig

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    transport = RclpyTransport.create("sim_robot", args=sys.argv if args is None else args)
    try:
        p = _declare(transport.node, SIM_ROBOT_PARAMETERS)
        robot = SimRobot(transport, SimRobotConfig(
            task=p["task"], cameras=tuple(_items(p["cameras"], "cameras", transport.node.get_logger())), image_size=(p["image_height"], p["image_width"]),
            rate_hz=p["rate"], prefix=p["prefix"], compressed=p["compressed"], reset_topic=p["reset_topic"],
            action_timeout_s=p["action_timeout"], max_episode_steps=p["max_episode_steps"] or None, seed=p["seed"],
        ))
    except RoboRewardError as exc:
        transport.node.get_logger().fatal(f"cannot start: {exc}")
        transport.close()
        return exit_code(exc)
    return _run_until_shutdown(robot, transport)
