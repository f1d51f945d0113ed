"""The simulated robot behind ROS 2 topics, closed through the reward node, over DDS on loopback:

``robo-reward sim-robot`` (a real panda-gym / PyBullet scene) → camera images and joint
states → ``robo-reward serve`` (the embedded default model, its views fed by two of the
robot's cameras) → rewards; this process drives the arm with actions and sees
the episode end propagate to the reward stream.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from ros_stack import wait_until

pytest.importorskip("cyclonedds")
pytest.importorskip("panda_gym")

from robo_reward.ros2.dds import DdsTransport
from robo_reward.ros2.sim_robot import PANDA_JOINTS

pytestmark = pytest.mark.slow


def test_sim_robot_cameras_joints_actions_and_rewards(tmp_path):
    domain = random.SystemRandom().randint(100, 230)
    common = ["--domain", str(domain), "--localhost-only", "--log-level", "WARNING"]
    with open(tmp_path / "processes.log", "w") as log:
        robot = subprocess.Popen(
            [sys.executable, "-m", "robo_reward.cli", "sim-robot", "--task", "PandaReach-v3", "--camera", "corner",
             "--camera", "top", "--image-size", "48", "48", "--rate", "20", "--compressed", "--max-episode-steps", "25",
             *common],
            stdout=log, stderr=subprocess.STDOUT,
        )
        node = subprocess.Popen(
            [sys.executable, "-m", "robo_reward.cli", "serve", "--view", "corner=/sim/corner/image_raw/compressed",
             "--view", "topview=/sim/top/image_raw/compressed", "--task", "reach the target",  # the default model
             "--stale-timeout", "2.0", *common],
            stdout=log, stderr=subprocess.STDOUT,
        )
        checker = DdsTransport(domain, localhost_only=True, node_name="checker")
        joints, rewards, resets = [], [], []
        checker.subscribe_joint_state("/sim/joint_states", joints.append)
        checker.subscribe_reward("/robo_reward/reward", rewards.append)
        checker.subscribe_empty("/robo_reward/episode_reset", lambda: resets.append(len(rewards)))
        action = checker.float_array_publisher("/sim/action")
        stop = threading.Event()
        spinner = threading.Thread(target=checker.spin, args=(stop,), daemon=True)
        spinner.start()
        try:
            wait_until(lambda: len(joints) >= 3 and rewards, 240, f"the robot and the node (log: {tmp_path})")
            state = joints[-1]
            assert state.name == tuple(PANDA_JOINTS.values()) and len(state.position) == 9
            idle = np.array(joints[-1].position) - np.array(joints[-3].position)

            wait_until(lambda: action.subscription_count() > 0, 60, "the robot subscribing to actions")
            action.publish(np.zeros(5, np.float32))  # wrong shape: refused, the robot goes on
            before = len(joints)
            for _ in range(10):  # drive the end effector along +x for half a second
                action.publish(np.array([1.0, 0.0, 0.0], np.float32))
                time.sleep(0.05)
            wait_until(lambda: len(joints) >= before + 8, 60, "joint states while moving")
            # The largest excursion, not the last state: a 25-step episode may reset the arm to its
            # start pose inside this window (a reset alone moves nothing: the arm is idle there).
            start = np.array(joints[before - 1].position[:7])
            moved = max(np.abs(np.array(j.position[:7]) - start).max() for j in joints[before:])
            assert moved > 0.05 > np.abs(idle[:7]).max()

            wait_until(lambda: resets, 240, "the end of the first episode (25 steps)")
            wait_until(lambda: rewards[-1].episode >= 1, 60, "rewards of the second episode")
            assert node.poll() is None and robot.poll() is None
        finally:
            stop.set()
            spinner.join(timeout=5)
            for process in (robot, node):
                process.terminate()
            codes = [process.wait(timeout=30) for process in (robot, node)]
            checker.close()
    assert codes == [0, 0]
    stamps = {j.stamp_ns for j in joints}
    assert all(r.stamp_ns in stamps for r in rewards), "a reward's stamp is the stamp of its camera images"
    assert all(r.valid and r.view_valid == (True, True) for r in rewards)
    first = next(r for r in rewards if r.episode == 1)
    assert first.step == 0 and first.reward == 0.0
