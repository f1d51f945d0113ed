"""``robo-reward sim-robot``: a simulated panda-gym robot behind ROS 2 topics."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from robo_reward.commands._common import add_subcommand
from robo_reward.commands.serve import env_domain_id, make_transport

EXAMPLES = """\
  # a Panda reaching task with two cameras at 10 Hz, on this host only:
  robo-reward sim-robot --task PandaReach-v3 --camera front --camera side --localhost-only

  # and the reward node scoring it (in another shell):
  robo-reward serve --view front=/sim/front/image_raw --view side=/sim/side/image_raw \\
      --task "reach the target" --model models/reach.pt --localhost-only

  # drive the arm (end-effector displacement x, y, z in [-1, 1]):
  ros2 topic pub -r 10 /sim/action std_msgs/msg/Float32MultiArray "{data: [0.5, 0.0, 0.0]}"
"""


def add_parser(subparsers) -> None:
    parser = add_subcommand(
        subparsers, "sim-robot",
        "Run a simulated Franka Panda (panda-gym, PyBullet TinyRenderer) in real time behind ROS 2 topics: "
        "camera images and joint states out, actions in.",
        EXAMPLES, run,
    )
    parser.add_argument("--task", default="PandaReach-v3", help="panda-gym task id")
    parser.add_argument("--camera", action="append", default=[], metavar="NAME",
                        help="preset camera: front, side, top or corner (repeatable; default: front and side)")
    parser.add_argument("--image-size", type=int, nargs=2, default=(96, 96), metavar=("HEIGHT", "WIDTH"),
                        help="camera image size, pixels")
    parser.add_argument("--rate", type=float, default=10.0, help="steps and camera frames per second")
    parser.add_argument("--prefix", default="/sim", help="topic prefix: PREFIX/CAMERA/image_raw, PREFIX/action, …")
    parser.add_argument("--compressed", action="store_true", help="publish JPEG CompressedImage on …/compressed")
    parser.add_argument("--reset-topic", default="/robo_reward/episode_reset",
                        help="std_msgs/Empty published when an episode ends (the reward node's reset topic)")
    parser.add_argument("--action-timeout", type=float, default=0.5, help="seconds an action is held before zeros")
    parser.add_argument("--max-episode-steps", type=int,
                        help="truncate episodes after this many steps (default: the task's limit, 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    ros = parser.add_argument_group("ROS 2")
    ros.add_argument("--transport", choices=("dds", "rclpy"), default="dds",
                     help="dds: Cyclone DDS from PyPI, no ROS install; rclpy: a sourced ROS 2 install")
    ros.add_argument("--domain", type=int, default=env_domain_id(), help="DDS domain, as ROS_DOMAIN_ID (0–232)")
    ros.add_argument("--localhost-only", action="store_true", help="keep all traffic on 127.0.0.1")
    ros.add_argument("--dds-config", metavar="XML|URI", help="dds: Cyclone DDS configuration")
    ros.add_argument("--node-name", default="sim_robot", help="node name")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (none: run until Ctrl-C)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    from robo_reward.ros2.sim_robot import SimRobot, SimRobotConfig

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SimRobotConfig(
        task=args.task, cameras=tuple(args.camera) or ("front", "side"), image_size=tuple(args.image_size),
        rate_hz=args.rate, prefix=args.prefix, compressed=args.compressed, reset_topic=args.reset_topic,
        action_timeout_s=args.action_timeout, max_episode_steps=args.max_episode_steps, seed=args.seed,
    )
    transport = make_transport(args)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        robot = SimRobot(transport, config)
        robot.run(stop, args.duration)
        logging.getLogger(__name__).info("%d steps, %d episodes", robot.steps, robot.episodes)
    finally:
        transport.close()
    return 0
