"""Real ROS 2 from PyPI wheels for the tests (``scripts/install_ros2.sh``): where each
distribution's virtualenv is, and how to start plain rclpy programs in it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ROS = ROOT / ".ros"
NODES = Path(__file__).resolve().parent / "ros_nodes"
DISTROS = ("kilted", "jazzy")
SAMPLE = ROOT / "robo_reward" / "assets" / "metaworld_sample"
VIEWS = {"corner": "/cam/corner/image_raw", "topview": "/cam/topview/image_raw"}  # the default model's views
TASK = "open the drawer"
RATE = 30.0
#: Variables a ROS venv's python must not inherit: its bootstrapper sets them and then re-executes
#: itself, and a child that finds them set skips that and cannot load rclpy's C extension.
BOOTSTRAP_VARIABLES = ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH", "PYTHONPATH", "AMENT_PREFIX_PATH")
DISCOVERY_VARIABLES = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS")
#: python arguments that run the ``reward_node`` entry point (what ``ros2 run robo_reward_ros reward_node`` runs).
REWARD_NODE = ["-c", "import sys; from robo_reward.ros2.entry_points import reward_node_main; sys.exit(reward_node_main())",
               "--ros-args"]


def python_of(distro: str) -> Path:
    return ROS / distro / "bin" / "python"


def messages_of(distro: str) -> Path:
    return ROS / f"msgs-{distro}" / "install" / "robo_reward_msgs"


def require(distro: str) -> None:
    """Skip unless the distribution and its robo_reward_msgs are installed (CI installs both)."""
    if not python_of(distro).exists() or not messages_of(distro).exists():
        pytest.skip(f"ROS 2 {distro} is not installed here: bash scripts/install_ros2.sh")


def ros_environment(distro: str, domain: int, localhost: bool = True) -> dict[str, str]:
    """The environment of a rclpy process of ``distro`` on ``domain`` with robo_reward_msgs;
    ``localhost``: discovery confined to this host (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``)."""
    env = {k: v for k, v in os.environ.items() if k not in (*BOOTSTRAP_VARIABLES, *DISCOVERY_VARIABLES)}
    messages = messages_of(distro)
    if localhost:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.update(
        ROS_DOMAIN_ID=str(domain), RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        AMENT_PREFIX_PATH=f"{messages}:{ROS / distro}", LD_LIBRARY_PATH=str(messages / "lib"),
        PYTHONPATH=str(messages / "lib" / "python3.11" / "site-packages"), PYTHONUNBUFFERED="1",
    )
    return env


def start(distro: str, domain: int, args: list[str], log: Path, localhost: bool = True) -> subprocess.Popen:
    """A python process of ``distro`` running ``args`` (a script and its arguments), output to ``log``."""
    return subprocess.Popen([str(python_of(distro)), *args], env=ros_environment(distro, domain, localhost),
                            cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def free_domain() -> int:
    return random.SystemRandom().randint(100, 230)


def wait_for_line(log: Path, text: str, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        if process.poll() is not None:
            raise AssertionError(f"{log.name}: the process ended before '{text}':\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{log.name}: no '{text}' within {timeout_s} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def finish(process: subprocess.Popen, log: Path, timeout_s: float) -> str:
    """Wait for ``process`` (killed past ``timeout_s``) and return its log."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"{log.name} did not finish within {timeout_s} s:\n{log.read_text()[-3000:]}") from None
    return log.read_text()


def episode_frames(episode: str = "eval_success_00") -> dict[str, np.ndarray]:
    """Every frame of one episode of the shipped sample, per view (T, 128, 128, 3)."""
    from robo_reward.data.episodes import load_manifest
    from robo_reward.types import Sampling

    (chosen,) = [e for e in load_manifest(SAMPLE) if e.name == episode]
    batch = next(chosen.iter_batches(10_000, Sampling()))
    return {view: batch.views[view] for view in VIEWS}


def sample_frames(path: Path, episode: str = "eval_success_00") -> dict[str, np.ndarray]:
    """:func:`episode_frames`, also saved as ``path`` (npz) for the camera driver."""
    frames = episode_frames(episode)
    np.savez(path, **frames)
    return frames


def last_json(log_text: str) -> dict:
    return json.loads([line for line in log_text.splitlines() if line.startswith("{")][-1])


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def set_stamp(k: int, base_s: int = 1000) -> int:
    """The stamp of camera set k: ``base_s`` + k / RATE, in ns."""
    return base_s * 10**9 + round(k * 1e9 / RATE)


def rewarded_sets(rewards: list[dict], stamps: set[int]) -> list[dict]:
    """The valid rewards with every view valid, one per published set (by stamp), in stamp order."""
    seen: dict[int, dict] = {}
    for reward in rewards:
        if reward["stamp"] in stamps and reward["valid"] and all(reward["view_valid"]):
            seen.setdefault(reward["stamp"], reward)
    return [seen[s] for s in sorted(seen)]


def record_fields(record: Any) -> dict:
    return {"stamp": record.stamp_ns, "valid": record.valid, "view_valid": list(record.view_valid),
            "progress": record.progress, "task": record.task}


def stop_all(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def view_arguments(flag: str) -> list[str]:
    return [arg for view, topic in VIEWS.items() for arg in (flag, f"{view}={topic}")]


def drive_cameras(distro: str, domain: int, folder: Path, sets: int,
                  listener: subprocess.Popen) -> tuple[dict, dict]:
    """Once ``listener`` (listen.py) is ready, publish ``sets`` camera sets of the sample episode
    from plain rclpy cameras; returns (what the cameras published, what the listener received)."""
    wait_for_line(folder / "listener.log", "READY", listener, 60)
    cameras = start(distro, domain, [str(NODES / "cameras.py"), "--frames", str(folder / "frames.npz"),
                                     "--sets", str(sets), "--rate", str(RATE), *view_arguments("--view")],
                    folder / "cameras.log")
    try:
        published = last_json(finish(cameras, folder / "cameras.log", 150 + 2 * sets / RATE))
    finally:
        stop_all(cameras)
    return published, last_json(finish(listener, folder / "listener.log", 60))


def rclpy_cameras_to_serve(distro: str, folder: Path, sets: int) -> dict[str, Any]:
    """rclpy cameras of ``distro`` (Fast DDS) → ``robo-reward serve --transport dds`` (Cyclone) →
    an rclpy Reward subscriber and a Cyclone one; returns the rewarded sets each received."""
    from robo_reward.ros2.dds import DdsTransport

    domain = free_domain()
    sample_frames(folder / "frames.npz")
    listener = start(distro, domain, [str(NODES / "listen.py"), "--reward", "/robo_reward/reward",
                                      "--until", str(sets), "--timeout", str(60 + 2 * sets / RATE)],
                     folder / "listener.log")
    node = subprocess.Popen(
        [sys.executable, "-m", "robo_reward.cli", "serve", "--transport", "dds", "--domain", str(domain),
         "--localhost-only", "--task", TASK, "--log-level", "WARNING", "--duration", str(150 + 2 * sets / RATE),
         *view_arguments("--view")], stdout=open(folder / "node.log", "w"), stderr=subprocess.STDOUT)
    cyclone = DdsTransport(domain, localhost_only=True, node_name="checker")
    cyclone_rewards: list = []
    cyclone.subscribe_reward("/robo_reward/reward", cyclone_rewards.append)
    stop = threading.Event()
    spinner = threading.Thread(target=cyclone.spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        published, received = drive_cameras(distro, domain, folder, sets, listener)
    finally:
        stop.set()
        stop_all(node, listener)
        spinner.join(timeout=5)
        cyclone.close()
    stamps = {set_stamp(k) for k in range(sets)}
    return {"published": published["published"], "seconds": published["seconds"],
            "rclpy_sets": rewarded_sets(received["rewards"], stamps),
            "cyclone_sets": rewarded_sets([record_fields(r) for r in cyclone_rewards], stamps)}


def cyclone_cameras_to_rclpy_node(distro: str, folder: Path, sets: int, retask_at: int | None = None) -> dict[str, Any]:
    """Cyclone cameras → the ``reward_node`` entry point on real rclpy of ``distro`` (the launch
    file's parameters YAML) → a Cyclone Reward subscriber; with ``retask_at`` the task changes
    there through the task topic. Returns the rewarded sets, diagnostics and the node's exit code."""
    from robo_reward.interfaces.messages import image_message
    from robo_reward.ros2.dds import DdsTransport

    domain = free_domain()
    frames = sample_frames(folder / "frames.npz")
    views = "[" + ", ".join(f"{view}={topic}" for view, topic in VIEWS.items()) + "]"
    node = start(distro, domain, [
        *REWARD_NODE, "--params-file", str(ROOT / "launch" / "reward_params.yaml"),
        "-p", f"views:={views}", "-p", f"task:={TASK}", "-p", "diagnostics_period:=0.5"], folder / "node.log")
    cyclone = DdsTransport(domain, localhost_only=True, node_name="cameras")
    rewards: list = []
    diagnostics: list = []
    cyclone.subscribe_reward("/robo_reward/reward", rewards.append)
    cyclone.subscribe_string("/robo_reward/diagnostics", lambda text: diagnostics.append(json.loads(text)))
    publishers = {view: cyclone.image_publisher(topic) for view, topic in VIEWS.items()}
    task = cyclone.string_publisher("/robo_reward/task")
    stop = threading.Event()
    spinner = threading.Thread(target=cyclone.spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        wait_until(lambda: diagnostics and all(p.subscription_count() for p in publishers.values()), 120,
                   f"the rclpy reward node (log: {folder / 'node.log'})")
        time.sleep(1.0)
        started = time.monotonic()
        for k in range(sets):
            for view, publisher in publishers.items():
                publisher.publish(image_message(VIEWS[view], frames[view][k % len(frames[view])],
                                                set_stamp(k, 3000), view))
            if k == retask_at:
                task.publish("open the drawer wide")
            time.sleep(max(0.0, started + (k + 1) / RATE - time.monotonic()))
        seconds = time.monotonic() - started
        wait_until(lambda: len({r.stamp_ns for r in rewards}) >= 0.95 * sets, 30, "the rewards")
        time.sleep(1.0)
    finally:
        stop.set()
        node.send_signal(signal.SIGINT)
        finish(node, folder / "node.log", 30)
        spinner.join(timeout=5)
        cyclone.close()
    stamps = {set_stamp(k, 3000) for k in range(sets)}
    return {"published": sets, "seconds": seconds, "exit_code": node.returncode, "diagnostics": diagnostics,
            "cyclone_sets": rewarded_sets([record_fields(r) for r in rewards], stamps)}


def rclpy_graph(distro: str, folder: Path, sets: int) -> dict[str, Any]:
    """All ROS 2 (``distro``, Fast DDS): rclpy cameras → the ``reward_node`` entry point on
    rclpy → an rclpy Reward subscriber. Returns the sets it rewarded and the node's exit code."""
    domain = free_domain()
    sample_frames(folder / "frames.npz")
    views = "[" + ", ".join(f"{view}={topic}" for view, topic in VIEWS.items()) + "]"
    listener = start(distro, domain, [str(NODES / "listen.py"), "--reward", "/robo_reward/reward",
                                      "--until", str(sets), "--timeout", str(150 + 2 * sets / RATE)],
                     folder / "listener.log")
    node = start(distro, domain, [*REWARD_NODE, "-p", f"views:={views}", "-p", f"task:={TASK}"], folder / "node.log")
    try:
        published, received = drive_cameras(distro, domain, folder, sets, listener)
    finally:
        stop_all(listener, node)
    return {"published": published["published"], "exit_code": node.returncode,
            "rclpy_sets": rewarded_sets(received["rewards"], {set_stamp(k) for k in range(sets)})}
