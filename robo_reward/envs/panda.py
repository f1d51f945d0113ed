"""panda-gym tasks (PyBullet, Franka Panda) rendered from N named cameras.

>>> env = make_panda_env("PandaPush-v3", cameras=("front", "side"), image_size=(96, 96))
>>> obs, info = env.reset(seed=0)
>>> obs["views"]["front"].shape         # (96, 96, 3) uint8
>>> obs["state"]["observation"]         # panda-gym's own dict observation

Cameras are fixed poses, either one of :data:`PRESET_CAMERAS` by name or a
``{name: PandaCamera(...)}`` mapping. Images come from PyBullet's TinyRenderer
(software, needs no OpenGL); calibration comes from the view and projection matrices.

Scripted solutions (:data:`EXPERTS`, :func:`expert_policy`) drive the end-effector tasks
from panda-gym's dict observation: :func:`reach_expert` and :func:`push_expert`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robo_reward.envs.action_repeat import ActionRepeat
from robo_reward.envs.cameras import (
    OPENGL_TO_OPENCV,
    CameraInfo,
    MultiCameraWrapper,
    check_names,
    parse_image_size,
)
from robo_reward.errors import ConfigError, require

pybullet = require("pybullet", "sim", "PyBullet rendering")
panda_gym = require("panda_gym", "sim", "panda-gym tasks")

#: Every panda-gym task id, e.g. ``"PandaReach-v3"``, ``"PandaPickAndPlaceDense-v3"``.
TASKS: tuple[str, ...] = tuple(panda_gym.ENV_IDS)


@dataclass(frozen=True)
class PandaCamera:
    """A fixed pinhole camera in a panda-gym scene (metres, degrees).

    The pose is an orbit around ``target`` in PyBullet's convention (``distance``,
    ``yaw``, ``pitch``, ``roll``, z up; what ``computeViewMatrixFromYawPitchRoll`` takes),
    unless ``eye`` is given: then the camera sits at ``eye``, looks at ``target`` and
    keeps ``up`` pointing up in the image.

    Attributes:
        target: (3,) point the camera looks at, world frame.
        distance: orbit radius.
        yaw: orbit azimuth (0: camera on the -y side, 90: on the +x side).
        pitch: orbit elevation, negative looks down.
        roll: rotation about the optical axis.
        eye: (3,) camera position for a look-at pose, or None for an orbit.
        up: (3,) world direction shown as image-up in a look-at pose.
        fovy: vertical field of view.
        near: near clipping distance.
        far: far clipping distance.
    """

    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 1.0
    yaw: float = 0.0
    pitch: float = -30.0
    roll: float = 0.0
    eye: tuple[float, float, float] | None = None
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fovy: float = 60.0
    near: float = 0.05
    far: float = 10.0

    def view_matrix(self) -> list[float]:
        """PyBullet's camera-from-world matrix (OpenGL convention, 16 floats, column-major)."""
        if self.eye is not None:
            return list(pybullet.computeViewMatrix(self.eye, self.target, self.up))
        return list(
            pybullet.computeViewMatrixFromYawPitchRoll(
                cameraTargetPosition=self.target,
                distance=self.distance,
                yaw=self.yaw,
                pitch=self.pitch,
                roll=self.roll,
                upAxisIndex=2,
            )
        )

    def projection_matrix(self, width: int, height: int) -> list[float]:
        """PyBullet's projection matrix (OpenGL convention, 16 floats, column-major)."""
        return list(pybullet.computeProjectionMatrixFOV(self.fovy, width / height, self.near, self.far))


#: Named camera poses around panda-gym's table (robot base at x = -0.6, workspace near the origin).
PRESET_CAMERAS: dict[str, PandaCamera] = {
    "front": PandaCamera(target=(-0.2, 0.0, 0.15), distance=1.2, yaw=90.0, pitch=-25.0),
    "side": PandaCamera(target=(-0.2, 0.0, 0.15), distance=1.2, yaw=0.0, pitch=-25.0),
    "top": PandaCamera(target=(-0.15, 0.0, 0.0), distance=1.0, yaw=-90.0, pitch=-89.0),
    "corner": PandaCamera(target=(-0.1, 0.0, 0.05), distance=1.2, yaw=45.0, pitch=-35.0),
}


def check_task(task: str) -> str:
    """Return ``task`` if it is a panda-gym task id, else raise :class:`ConfigError`."""
    return check_names("task", (task,), TASKS, "panda-gym")[0]


def resolve_cameras(cameras: Sequence[str] | Mapping[str, PandaCamera]) -> dict[str, PandaCamera]:
    """Camera name → pose, from preset names or a ``{name: PandaCamera}`` mapping."""
    if isinstance(cameras, Mapping):
        for name, camera in cameras.items():
            if not isinstance(camera, PandaCamera):
                raise ConfigError(f"camera {name!r} must be a PandaCamera, got {type(camera).__name__}")
        return dict(cameras)
    names = check_names("camera", cameras, tuple(PRESET_CAMERAS), "panda-gym (or pass {name: PandaCamera})")
    return {name: PRESET_CAMERAS[name] for name in names}


class PyBulletCameraRig:
    """Renders fixed cameras of a PyBullet scene with TinyRenderer.

    Args:
        client: the scene's ``BulletClient`` (panda-gym: ``env.unwrapped.sim.physics_client``).
        cameras: camera name → pose.
        height: image height in pixels.
        width: image width in pixels.
        shadows: render shadows (about 2x slower).
    """

    def __init__(
        self, client: Any, cameras: Mapping[str, PandaCamera], height: int, width: int, shadows: bool = True
    ) -> None:
        self.names = tuple(cameras)
        self.height, self.width = height, width
        self._client = client
        self._shadows = shadows
        self._matrices = {
            name: (camera.view_matrix(), camera.projection_matrix(width, height))
            for name, camera in cameras.items()
        }

    def render(self, name: str) -> np.ndarray:
        """uint8 RGB (height, width, 3) view of camera ``name``."""
        view, projection = self._matrices[name]
        _, _, rgba, _, _ = self._client.getCameraImage(
            self.width,
            self.height,
            viewMatrix=view,
            projectionMatrix=projection,
            shadow=int(self._shadows),
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
        )
        return np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(self.height, self.width, 4)[..., :3])

    def info(self, name: str) -> CameraInfo:
        """Calibration of camera ``name`` from its view and projection matrices."""
        view, projection = (np.asarray(m, dtype=np.float64).reshape(4, 4).T for m in self._matrices[name])
        extrinsics = np.linalg.inv(view)
        extrinsics[:3, :3] = extrinsics[:3, :3] @ OPENGL_TO_OPENCV
        half_w, half_h = self.width / 2.0, self.height / 2.0
        intrinsics = np.array(
            [
                [projection[0, 0] * half_w, 0.0, (1.0 - projection[0, 2]) * half_w - 0.5],
                [0.0, projection[1, 1] * half_h, (1.0 + projection[1, 2]) * half_h - 0.5],
                [0.0, 0.0, 1.0],
            ]
        )
        return CameraInfo(intrinsics, extrinsics, self.width, self.height)

    def close(self) -> None:
        """Nothing to release: the client belongs to the env."""


def make_panda_env(
    task: str = "PandaReach-v3",
    cameras: Sequence[str] | Mapping[str, PandaCamera] = ("front", "side"),
    image_size: int | Sequence[int] = (96, 96),
    shadows: bool = True,
    action_repeat: int = 1,
) -> MultiCameraWrapper:
    """A panda-gym task whose observations carry camera views.

    Also made by ``gymnasium.make("robo_reward/Panda-v0", task=..., cameras=...,
    image_size=...)`` after ``import robo_reward.envs``.

    Args:
        task: a panda-gym id from :data:`TASKS`, e.g. ``"PandaPush-v3"`` (50 steps, or
            100 for Stack, then ``truncated=True``).
        cameras: preset names from :data:`PRESET_CAMERAS`, or ``{name: PandaCamera}``.
        image_size: (height, width) in pixels, or one int for square images.
        shadows: render shadows.
        action_repeat: simulator steps per agent step (:class:`ActionRepeat`, inside the
            camera wrapper: views are rendered once per agent step).

    Returns:
        a :class:`MultiCameraWrapper`; ``obs["state"]`` is panda-gym's dict observation
        (``observation``, ``achieved_goal``, ``desired_goal``), ``info["is_success"]``
        says whether the goal is reached.
    """
    check_task(task)
    height, width = parse_image_size(image_size)
    poses = resolve_cameras(cameras)
    env = gym.make(task, render_mode="rgb_array", renderer="Tiny")
    rig = PyBulletCameraRig(env.unwrapped.sim.physics_client, poses, height, width, shadows)
    return MultiCameraWrapper(ActionRepeat(env, action_repeat) if action_repeat != 1 else env, rig)


def reach_expert(state: Mapping[str, np.ndarray], gain: float = 10.0) -> np.ndarray:
    """PandaReach's scripted solution: a proportional controller to the goal.

    Args:
        state: panda-gym's dict observation (``achieved_goal``: (3,) end-effector position,
            ``desired_goal``: (3,) target position, metres).
        gain: action per metre of distance (an action of 1 moves the end effector 5 cm).

    Returns:
        (3,) float32 action in [-1, 1]: ``clip(gain · (desired_goal − achieved_goal), −1, 1)``.
    """
    return np.clip(gain * (state["desired_goal"] - state["achieved_goal"]), -1.0, 1.0).astype(np.float32)


def push_expert(state: Mapping[str, np.ndarray], gain: float = 10.0, push_speed: float = 0.4) -> np.ndarray:
    """PandaPush's scripted solution: go behind the cube (seen from the goal), lower, push.

    Stateless, from the observation alone (metres): 10 cm above the cube's centre the end
    effector flies to a point 5 cm behind the cube on the goal–cube line; there it lowers to
    the cube's centre height; low and behind the cube it pushes toward the goal, at most
    ``push_speed`` per axis (faster pushes kick the cube past the goal), correcting its
    offset from the line. Off the line while low it slides back behind the cube if it is
    behind, else rises first, so it never sweeps through the cube. Succeeds within the
    50-step limit on about 99 of 100 seeds (95 with an action repeat of 2).

    Args:
        state: panda-gym's dict observation (``observation``: end-effector position first;
            ``achieved_goal``: (3,) cube centre; ``desired_goal``: (3,) goal).
        gain: action per metre of distance to the current waypoint.
        push_speed: largest action per axis while pushing (0.4: 2 cm per step).

    Returns:
        (3,) float32 action in [-1, 1], end-effector displacement.
    """
    hand, cube, goal = state["observation"][:3], state["achieved_goal"], state["desired_goal"]
    way = goal[:2] - cube[:2]
    length = float(np.linalg.norm(way))
    direction = way / length if length > 1e-6 else np.zeros(2)
    relative = hand[:2] - cube[:2]
    along = float(relative @ direction)  # hand ahead of the cube centre, toward the goal
    offset = relative - along * direction  # hand's offset from the goal–cube line
    start = cube[:2] - 0.05 * direction  # where a push starts
    low = cube[2]
    if along < -0.025 and hand[2] < low + 0.03:  # low and behind the cube's back face
        if np.linalg.norm(offset) < 0.02:
            target = np.r_[goal[:2] - 0.03 * direction - offset, low]  # cube centre onto the goal
            return np.clip(gain * (target - hand), -push_speed, push_speed).astype(np.float32)
        target = np.r_[start, low]
    elif np.linalg.norm(hand[:2] - start) < 0.015:
        target = np.r_[start, low]  # lower behind the cube
    elif hand[2] < low + 0.04:
        target = np.r_[hand[:2], low + 0.1]  # rise first, clear of the cube
    else:
        target = np.r_[start, low + 0.1]  # fly above the push start
    return np.clip(gain * (target - hand), -1.0, 1.0).astype(np.float32)


#: panda-gym task → its scripted solution, ``expert(state) -> action``.
EXPERTS: dict[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = {
    "PandaReach-v3": reach_expert,
    "PandaReachDense-v3": reach_expert,
    "PandaPush-v3": push_expert,
    "PandaPushDense-v3": push_expert,
}


def expert_policy(task: str) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """The scripted solution of panda-gym ``task`` (see :data:`EXPERTS`); :class:`ConfigError`
    for a task that has none."""
    check_task(task)
    if task not in EXPERTS:
        raise ConfigError(
            f"panda-gym task {task!r} has no scripted solution; these have: {', '.join(EXPERTS)}"
        )
    return EXPERTS[task]
