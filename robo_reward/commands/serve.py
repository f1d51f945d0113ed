"""``robo-reward serve``: the live reward node on ROS 2 camera topics (DDS or rclpy)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from robo_reward.commands._common import add_model_arguments, add_subcommand

EXAMPLES = """\
  # two cameras, no ROS install needed (plain Cyclone DDS speaking ROS 2), this host only:
  robo-reward serve --view front=/cam/front/image_raw --view wrist=/cam/wrist/image_raw \\
      --task "open the drawer" --model models/drawer.pt --localhost-only

  # a compressed camera topic (image_transport's …/compressed), ROS_DOMAIN_ID 7, 10 Hz of rewards:
  robo-reward serve --view front=/cam/front/image_raw/compressed --task "open the drawer" \\
      --domain 7 --max-rate 10

  # inside a sourced ROS 2 workspace (robo_reward_msgs built), through rclpy:
  robo-reward serve --transport rclpy --view front=/cam/front/image_raw --task "open the drawer"

  # the parameters file the launch file gives the node, with the task and views on top:
  robo-reward serve --params-file launch/reward_params.yaml --view front=/cam/front/image_raw --task "open the drawer"

  # watch the rewards and change the task while it runs:
  ros2 topic echo /robo_reward/reward
  ros2 topic pub --once /robo_reward/task std_msgs/msg/String "{data: 'close the drawer'}"
  ros2 topic pub --once /robo_reward/episode_reset std_msgs/msg/Empty
"""


def add_parser(subparsers) -> None:
    from robo_reward.assets import DEFAULT_MODEL
    from robo_reward.data.sources import DeprecatedAlias

    parser = add_subcommand(
        subparsers, "serve",
        "Serve rewards live: subscribe to ROS 2 camera topics, synchronise them, score every image set "
        "with a reward model and publish robo_reward_msgs/Reward (plus JSON diagnostics).",
        EXAMPLES, run,
    )
    parser.add_argument("--view", action="append", default=[], metavar="NAME=TOPIC",
                        help="a camera view and its sensor_msgs/Image topic, or CompressedImage for a topic ending "
                        "in /compressed (repeat per view, at least one; views are named as the model knows them)")
    parser.add_argument("--camera", dest="view", action=DeprecatedAlias, new="--view", metavar="NAME=TOPIC",
                        help="deprecated: use --view NAME=TOPIC")
    parser.add_argument("--task", help="the task instruction, e.g. 'open the drawer' (required, here or in "
                        "--params-file)")
    parser.add_argument("--params-file", action=ParamsFile, metavar="YAML",
                        help="a ROS 2 parameters file (launch/reward_params.yaml, the one the launch file passes the "
                        "node): its /** and robo_reward sections set the matching options; as with --ros-args, "
                        "what comes later on the command line wins")
    add_model_arguments(parser, default=str(DEFAULT_MODEL))

    ros = parser.add_argument_group("ROS 2")
    ros.add_argument("--transport", choices=("dds", "rclpy"), default="dds",
                     help="dds: Cyclone DDS from PyPI, no ROS install; rclpy: a sourced ROS 2 install")
    ros.add_argument("--domain", type=int, default=env_domain_id(), help="DDS domain, as ROS_DOMAIN_ID (0–232)")
    ros.add_argument("--localhost-only", action="store_true",
                     help="keep all traffic on 127.0.0.1 (as ROS_LOCALHOST_ONLY=1)")
    ros.add_argument("--dds-config", metavar="XML|URI",
                     help="dds: Cyclone DDS configuration (XML text or file://…); default: $CYCLONEDDS_URI")
    ros.add_argument("--node-name", default="robo_reward", help="node name; '~/' topics live under /NODE_NAME/")
    ros.add_argument("--reward-topic", default="~/reward", help="robo_reward_msgs/Reward output")
    ros.add_argument("--task-topic", default="~/task", help="std_msgs/String input that changes the task")
    ros.add_argument("--reset-topic", default="~/episode_reset", help="std_msgs/Empty input that starts an episode")
    ros.add_argument("--diagnostics-topic", default="~/diagnostics", help="std_msgs/String JSON diagnostics output")
    ros.add_argument("--diagnostics-period", type=float, default=2.0, metavar="SECONDS",
                     help="time between diagnostics")

    live = parser.add_argument_group("synchronisation, batching and shaping")
    live.add_argument("--gamma", type=float, default=0.99, help="shaping discount; must equal the learner's γ")
    live.add_argument("--slop", type=float, default=0.05, metavar="SECONDS",
                      help="largest stamp difference in an image set")
    live.add_argument("--queue-size", type=int, default=5, help="images kept per camera while matching")
    live.add_argument("--stale-timeout", type=float, default=0.5, metavar="SECONDS",
                      help="a view lagging the newest stamp by more than this is dropped from fusion")
    live.add_argument("--max-batch", type=int, default=8, help="most image sets per model call")
    live.add_argument("--max-wait", type=float, default=0.0, metavar="SECONDS",
                      help="extra wait for a batch to fill (0: batch the sets that queued while the model ran)")
    live.add_argument("--max-pending", type=int, default=16, help="image sets queued for the model; oldest dropped")
    live.add_argument("--max-rate", type=float, default=0.0, metavar="HZ",
                      help="most rewards per second (0: every image set)")
    live.add_argument("--max-future", type=float, default=10.0, metavar="SECONDS",
                      help="refuse images stamped more than this ahead of the node's clock (0: no limit); one such "
                      "image would stall every later set")
    live.add_argument("--torch-threads", type=int, default=1,
                      help="CPU threads of the model (torch.set_num_threads); 1 keeps small live batches from "
                      "stalling when cameras and drivers share the CPU, 0 leaves torch's default")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (none: run until Ctrl-C)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


#: Reward node parameter (ROS 2 name, as in ros2/entry_points.py) → serve's option (argparse dest).
PARAMETER_OPTIONS = {
    "views": "view", "cameras": "view", "task": "task", "model": "model", "model_options": "option",
    "gamma": "gamma", "slop": "slop", "queue_size": "queue_size", "stale_timeout": "stale_timeout",
    "max_batch": "max_batch", "max_wait": "max_wait", "max_pending": "max_pending", "max_rate": "max_rate",
    "max_future": "max_future",
    "diagnostics_period": "diagnostics_period", "torch_threads": "torch_threads", "reward_topic": "reward_topic",
    "task_topic": "task_topic", "reset_topic": "reset_topic", "diagnostics_topic": "diagnostics_topic",
}
NODE_SECTIONS = ("/**", "robo_reward", "/robo_reward")


def read_params_file(path: str) -> dict[str, object]:
    """The reward node's parameters in a ROS 2 parameters YAML, as serve's option values."""
    import yaml

    from robo_reward.errors import InputError, UsageError

    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"--params-file {path}: cannot read it ({exc})") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"--params-file {path}: not YAML ({exc})") from exc
    sections = [v.get("ros__parameters") for k, v in (document or {}).items()
                if k in NODE_SECTIONS and isinstance(v, dict)] if isinstance(document, dict) else []
    if not any(isinstance(section, dict) for section in sections):
        raise InputError(f"--params-file {path}: no ros__parameters under {' or '.join(NODE_SECTIONS)}")
    options: dict[str, object] = {}
    for section in sections:
        for name, value in (section or {}).items():
            if name not in PARAMETER_OPTIONS:
                raise UsageError(f"--params-file {path}: unknown reward node parameter '{name}' "
                                 f"(known: {', '.join(sorted(PARAMETER_OPTIONS))})")
            if name in ("views", "cameras", "model_options"):
                items = value if isinstance(value, list) else str(value).split(",")
                value = [str(item).strip() for item in items if str(item).strip()]
            options[PARAMETER_OPTIONS[name]] = value
    return options


class ParamsFile(argparse.Action):
    """Set the options a parameters file holds, in command-line order (later flags win)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from robo_reward.errors import RoboRewardError, exit_code

        try:
            options = read_params_file(values)
        except RoboRewardError as exc:  # while parsing: exit as the CLI does after it
            parser.exit(exit_code(exc), f"robo-reward serve: error: {exc}\n")
        for dest, value in options.items():
            setattr(namespace, dest, value)


def run(args: argparse.Namespace) -> int:
    """Run the node until SIGINT / SIGTERM (or ``--duration``): it then finishes the micro-batch in
    progress, publishes a last diagnostics message, closes the transport and exits 0. A signal
    while the model loads ends the run as soon as it has loaded, with nothing published."""
    from robo_reward.commands._common import model_from_args
    from robo_reward.ros2.node import NodeConfig, RewardNode

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.task:
        from robo_reward.errors import UsageError

        raise UsageError("give the task: --task TEXT, or task in --params-file")
    config = NodeConfig.build(
        args.view, args.task, args.model,
        gamma=args.gamma, slop_s=args.slop, queue_size=args.queue_size, stale_timeout_s=args.stale_timeout,
        max_batch=args.max_batch, max_wait_s=args.max_wait, max_pending=args.max_pending,
        max_rate_hz=args.max_rate, max_future_s=args.max_future, reward_topic=args.reward_topic,
        task_topic=args.task_topic, reset_topic=args.reset_topic, diagnostics_topic=args.diagnostics_topic,
        diagnostics_period_s=args.diagnostics_period,
    )
    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    model = model_from_args(args)
    if stop.is_set():
        logging.getLogger(__name__).info("stopped by a signal before the node started")
        return 0
    transport = make_transport(args)
    try:
        RewardNode(transport, model, config).run(stop, args.duration)
    finally:
        transport.close()
    return 0


def env_domain_id() -> int:
    """``$ROS_DOMAIN_ID`` if it is a number, else 0."""
    value = os.environ.get("ROS_DOMAIN_ID", "")
    return int(value) if value.isdigit() else 0


def make_transport(args: argparse.Namespace):
    """The transport that ``--transport``, ``--domain``, ``--localhost-only`` and ``--dds-config`` ask for."""
    if args.transport == "rclpy":
        from robo_reward.ros2.rclpy_transport import RclpyTransport

        return RclpyTransport.create(args.node_name, args.domain, args.localhost_only, handle_signals=False)
    from robo_reward.ros2.dds import DdsTransport

    return DdsTransport(args.domain, args.localhost_only, args.dds_config, args.node_name)
