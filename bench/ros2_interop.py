"""Cross-vendor delivery between real ROS 2 (rclpy from PyPI wheels on Fast DDS) and
robo_reward's Cyclone DDS side, over ``--seconds`` of camera sets at 30 Hz per direction and
distribution (two 128×128 rgb8 views of a sample episode, the default model):

* ``rclpy → serve``: plain rclpy cameras → ``robo-reward serve --transport dds`` → rewards to an
  rclpy ``robo_reward_msgs/Reward`` subscriber and to a Cyclone one;
* ``cyclone → rclpy node``: Cyclone cameras → the ``reward_node`` entry point on real rclpy →
  rewards to a Cyclone subscriber.

A set counts as rewarded when a valid reward with every view valid arrived for its stamp.
Needs ``bash scripts/install_ros2.sh``. Writes ``bench/results/ros2_interop.txt``.

    python bench/ros2_interop.py                 # 60 s per direction and distribution
    python bench/ros2_interop.py --seconds 10 --distro kilted
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from ros_stack import DISTROS, RATE, cyclone_cameras_to_rclpy_node, python_of, rclpy_cameras_to_serve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--distro", nargs="+", default=list(DISTROS), choices=DISTROS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ros2_interop.txt")
    args = parser.parse_args()
    sets = round(args.seconds * RATE)
    lines = [f"{sets} camera sets per run (2 views, {RATE:g} Hz, {sets / RATE:g} s), loopback, localhost-only",
             f"{'distribution':<14}{'direction':<26}{'published':>10}{'to rclpy':>16}{'to Cyclone':>16}{'seconds':>9}"]
    print(lines[0], flush=True)
    for distro in args.distro:
        if not python_of(distro).exists():
            lines.append(f"{distro:<14}not installed: bash scripts/install_ros2.sh")
            continue
        with tempfile.TemporaryDirectory() as folder:
            forward = rclpy_cameras_to_serve(distro, Path(folder), sets)
        lines.append(f"{distro:<14}{'rclpy cameras → serve':<26}{forward['published']:>10}"
                     f"{share(forward['rclpy_sets'], sets):>16}{share(forward['cyclone_sets'], sets):>16}"
                     f"{forward['seconds']:>9.1f}")
        print(lines[-1], flush=True)
        with tempfile.TemporaryDirectory() as folder:
            backward = cyclone_cameras_to_rclpy_node(distro, Path(folder), sets)
        lines.append(f"{distro:<14}{'Cyclone cameras → rclpy':<26}{backward['published']:>10}{'—':>16}"
                     f"{share(backward['cyclone_sets'], sets):>16}{backward['seconds']:>9.1f}")
        print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[1:]))
    return 0


def share(rewarded: list, sets: int) -> str:
    return f"{len(rewarded)} ({100 * len(rewarded) / sets:.1f}%)"


if __name__ == "__main__":
    sys.exit(main())
