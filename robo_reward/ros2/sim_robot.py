"""A simulated robot behind ROS 2 topics: a panda-gym scene stepped in real time.

Every ``1 / rate_hz`` seconds the robot applies the latest action, steps the PyBullet
scene (TinyRenderer: no OpenGL, no GPU) and publishes, all stamped alike:

=================================  ==========================  ================================
topic (``prefix`` = ``/sim``)      type                        content
=================================  ==========================  ================================
``/sim/<camera>/image_raw``        sensor_msgs/Image rgb8      each camera (sensor-data QoS);
                                   (``…/compressed``: JPEG)    with ``compressed``
``/sim/joint_states``              sensor_msgs/JointState      7 arm joints + 2 fingers
``/sim/action`` (input)            std_msgs/Float32MultiArray  panda-gym action, in [-1, 1]
``reset_topic``                    std_msgs/Empty              sent when an episode ends
=================================  ==========================  ================================

An action is held for ``action_timeout_s`` and then replaced by zeros (the arm stops),
so a crashed policy cannot drive the arm forever. When the task terminates (success) or
truncates (time limit) the scene resets and an Empty goes to ``reset_topic`` —
``/robo_reward/episode_reset``, the reward node's reset topic — so the reward stream
starts a new episode too.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.interfaces.messages import JointStateMessage, image_message
from robo_reward.ros2.transport import Transport

log = logging.getLogger(__name__)

#: panda-gym's Panda: joint indices in the URDF and their names.
PANDA_JOINTS: dict[int, str] = {
    **{i: f"panda_joint{i + 1}" for i in range(7)},
    9: "panda_finger_joint1",
    10: "panda_finger_joint2",
}


@dataclass(frozen=True)
class SimRobotConfig:
    """Options of the simulated robot.

    Attributes:
        task: panda-gym task id, e.g. ``PandaReach-v3``.
        cameras: preset camera names of :data:`robo_reward.envs.panda.PRESET_CAMERAS`.
        image_size: (height, width) of every camera, pixels.
        rate_hz: control and camera rate, steps per second.
        prefix: topic prefix of the cameras, joint states and actions.
        compressed: publish JPEG ``…/image_raw/compressed`` instead of raw rgb8.
        reset_topic: where an Empty goes when an episode ends.
        action_timeout_s: an action older than this is replaced by zeros, s.
        max_episode_steps: truncate episodes after this many steps (None: the task's own
            limit, 50 steps for most panda-gym tasks).
        seed: seed of the first episode.
    """

    task: str = "PandaReach-v3"
    cameras: tuple[str, ...] = ("front", "side")
    image_size: tuple[int, int] = (96, 96)
    rate_hz: float = 10.0
    prefix: str = "/sim"
    compressed: bool = False
    reset_topic: str = "/robo_reward/episode_reset"
    action_timeout_s: float = 0.5
    max_episode_steps: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.action_timeout_s <= 0:
            raise ConfigError(f"rate and action timeout must be > 0, got {self.rate_hz}, {self.action_timeout_s}")
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ConfigError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")

    def camera_topic(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/image_raw" + ("/compressed" if self.compressed else "")


class SimRobot:
    """A panda-gym robot publishing its cameras and joints on ``transport`` (see the module docstring)."""

    def __init__(self, transport: Transport, config: SimRobotConfig) -> None:
        from robo_reward.envs.panda import make_panda_env

        self.config = config
        self.transport = transport
        self.env = make_panda_env(config.task, cameras=config.cameras, image_size=config.image_size)
        self.action_shape = self.env.action_space.shape
        self._camera_pubs = {c: transport.image_publisher(config.camera_topic(c)) for c in config.cameras}
        self._joint_pub = transport.joint_state_publisher(f"{config.prefix}/joint_states")
        self._reset_pub = transport.empty_publisher(config.reset_topic)
        transport.subscribe_float_array(f"{config.prefix}/action", self._on_action)
        self._lock = threading.Lock()
        self._action = np.zeros(self.action_shape, dtype=np.float32)
        self._action_at = -np.inf
        self.rejected_actions = 0
        self.steps = 0
        self.episode_steps = 0
        self.episodes = 0
        self._observation, _ = self.env.reset(seed=config.seed)

    def _on_action(self, action: np.ndarray) -> None:
        if action.shape != self.action_shape or not np.isfinite(action).all():
            self.rejected_actions += 1
            log.warning("action of shape %s refused: expected %s finite values", action.shape, self.action_shape)
            return
        low, high = self.env.action_space.low, self.env.action_space.high
        with self._lock:
            self._action = np.clip(action, low, high).astype(np.float32)
            self._action_at = time.monotonic()

    def current_action(self) -> np.ndarray:
        """The latest action, or zeros once it is older than ``action_timeout_s``."""
        with self._lock:
            if time.monotonic() - self._action_at > self.config.action_timeout_s:
                return np.zeros(self.action_shape, dtype=np.float32)
            return self._action.copy()

    def publish_observation(self) -> int:
        """Publish the current camera images and joint states with one stamp; returns it (ns)."""
        stamp = self.transport.now_ns()
        for camera, publisher in self._camera_pubs.items():
            publisher.publish(image_message(publisher.topic, self._observation["views"][camera], stamp, camera))
        robot = self.env.unwrapped.robot
        joints = list(PANDA_JOINTS)
        self._joint_pub.publish(JointStateMessage(
            stamp,
            tuple(PANDA_JOINTS.values()),
            tuple(float(robot.get_joint_angle(j)) for j in joints),
            tuple(float(robot.get_joint_velocity(j)) for j in joints),
            (),
        ))
        return stamp

    def step(self) -> tuple[bool, bool]:
        """Apply the current action for one step; returns (terminated, truncated)."""
        self._observation, _, terminated, truncated, info = self.env.step(self.current_action())
        self.steps += 1
        self.episode_steps += 1
        limit = self.config.max_episode_steps
        truncated = bool(truncated or (limit is not None and self.episode_steps >= limit and not terminated))
        if terminated or truncated:
            self.episodes += 1
            self.episode_steps = 0
            log.info("episode %d ended (%s, success=%s)", self.episodes,
                     "terminated" if terminated else "truncated", bool(info.get("is_success", False)))
            self._observation, _ = self.env.reset()
            self._reset_pub.publish(None)
        return bool(terminated), bool(truncated)

    def run(self, stop: threading.Event, duration_s: float | None = None) -> None:
        """Publish, step and repeat at ``rate_hz`` until ``stop`` (or ``duration_s``) — actions
        are received on a second thread meanwhile."""
        receiver = threading.Thread(target=self.transport.spin, args=(stop,), daemon=True)
        receiver.start()
        period = 1.0 / self.config.rate_hz
        end = None if duration_s is None else time.monotonic() + duration_s
        next_at = time.monotonic()
        try:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                self.publish_observation()
                self.step()
                next_at += period
                lag = next_at - time.monotonic()
                if lag < -period:  # slower than real time: do not try to catch up
                    next_at = time.monotonic()
                stop.wait(max(0.0, lag))
        finally:
            stop.set()
            receiver.join(timeout=2.0)
            self.env.close()
