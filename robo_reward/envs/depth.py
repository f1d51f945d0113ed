"""Depth images of a camera env's views, for lifting tracked keypoints to 3D.

:class:`DepthViews` wraps a :class:`~robo_reward.envs.cameras.MultiCameraWrapper` env
(Meta-World on MuJoCo, panda-gym on PyBullet) and adds ``obs["depth"]``: view → float32
(H, W), metres along the optical axis (z in the OpenCV camera frame,
:mod:`robo_reward.geometry`), pixel for pixel aligned with ``obs["views"]``; ``inf``
where nothing is in view. The RGB path is untouched: depth is a second render per view,
paid only by envs wrapped in it.

* MuJoCo: a second offscreen ``mujoco.Renderer`` with depth rendering on, turned like the
  rig's image when the rig shows a camera turned by 180° (Meta-World's corner cameras);
  :class:`MujocoBuffers` renders segmentation (geom ids) the same way, for ground truth;
* PyBullet: ``getCameraImage``'s depth buffer, rendered with view and projection
  matrices rebuilt from the rig's calibration (near 0.01 m, far 10 m) and linearised,
  ``z = far·near / (far − (far − near)·d)``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robo_reward.envs.cameras import OPENGL_TO_OPENCV
from robo_reward.errors import ConfigError, require
from robo_reward.geometry import CameraInfo

#: PyBullet depth renders' clipping planes, metres.
PYBULLET_NEAR, PYBULLET_FAR = 0.01, 10.0


def opengl_matrices(info: CameraInfo, near: float = PYBULLET_NEAR, far: float = PYBULLET_FAR) -> tuple[list, list]:
    """PyBullet's (view, projection) matrices (16 floats each, column-major) of a camera
    calibrated as ``info`` — the inverse of :meth:`PyBulletCameraRig.info`'s maths."""
    pose = info.extrinsics.copy()
    pose[:3, :3] = pose[:3, :3] @ OPENGL_TO_OPENCV
    (fx, _, cx), (_, fy, cy) = info.intrinsics[:2]
    width, height = info.width, info.height
    projection = np.array([
        [2 * fx / width, 0.0, 1.0 - 2 * (cx + 0.5) / width, 0.0],
        [0.0, 2 * fy / height, 2 * (cy + 0.5) / height - 1.0, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ])
    return np.linalg.inv(pose).T.ravel().tolist(), projection.T.ravel().tolist()


class MujocoBuffers:
    """Depth or segmentation of a MuJoCo rig's cameras from a second renderer, turned like the
    rig's images.

    Args:
        env: the Meta-World env (its ``unwrapped`` holds ``model`` and ``data``).
        rig: the env's :class:`~robo_reward.envs.metaworld.MujocoCameraRig`.
        segmentation: render geom ids (int32 (H, W), -1 where no geom) instead of depth.
    """

    def __init__(self, env: gym.Env, rig: Any, segmentation: bool = False) -> None:
        mujoco = require("mujoco", "sim", "MuJoCo depth rendering")
        model, self._data = env.unwrapped.model, env.unwrapped.data
        self._ids = {name: model.camera(name).id for name in rig.names}
        self._renderer = mujoco.Renderer(model, rig.height, rig.width)
        self._segmentation = segmentation
        self._geom = int(mujoco.mjtObj.mjOBJ_GEOM)
        if segmentation:
            self._renderer.enable_segmentation_rendering()
        else:
            self._renderer.enable_depth_rendering()
        self._far = float(model.vis.map.zfar * model.stat.extent)
        # the rig turns a camera whose image comes out upside down by 180°; its calibration says which
        self._turned = {}
        for name, index in self._ids.items():
            raw = self._data.cam_xmat[index].reshape(3, 3) @ OPENGL_TO_OPENCV
            self._turned[name] = not np.allclose(rig.info(name).extrinsics[:3, :3], raw, atol=1e-6)

    def render(self, name: str) -> np.ndarray:
        """float32 (H, W) depth in metres (inf: nothing), or int32 (H, W) geom ids (-1: none)."""
        self._renderer.update_scene(self._data, camera=self._ids[name])
        image = self._renderer.render()
        if self._segmentation:
            image = np.where(image[..., 1] == self._geom, image[..., 0], -1).astype(np.int32)
        else:
            image = np.where(image >= 0.999 * self._far, np.inf, image).astype(np.float32)
        return np.ascontiguousarray(image[::-1, ::-1]) if self._turned[name] else image

    def close(self) -> None:
        self._renderer.close()


class _PyBulletDepth:
    """Depth of the rig's PyBullet cameras, from matrices rebuilt from its calibration."""

    def __init__(self, env: gym.Env, rig: Any) -> None:
        self._pybullet = require("pybullet", "sim", "PyBullet depth rendering")
        self._client = env.unwrapped.sim.physics_client
        self._rig = rig
        self._matrices = {name: opengl_matrices(rig.info(name)) for name in rig.names}

    def render(self, name: str) -> np.ndarray:
        view, projection = self._matrices[name]
        _, _, _, buffer, _ = self._client.getCameraImage(
            self._rig.width, self._rig.height, viewMatrix=view, projectionMatrix=projection, shadow=0,
            renderer=self._pybullet.ER_TINY_RENDERER, flags=self._pybullet.ER_NO_SEGMENTATION_MASK)
        d = np.asarray(buffer, dtype=np.float64).reshape(self._rig.height, self._rig.width)
        z = PYBULLET_FAR * PYBULLET_NEAR / (PYBULLET_FAR - (PYBULLET_FAR - PYBULLET_NEAR) * d)
        return np.where(d >= 1.0, np.inf, z).astype(np.float32)

    def close(self) -> None:
        """Nothing to release: the client belongs to the env."""


class DepthViews(gym.Wrapper):
    """Add ``obs["depth"]`` (view → float32 (H, W) metres) to a camera env's observations.

    Args:
        env: a Meta-World or panda-gym env made by :func:`make_metaworld_env` /
            :func:`make_panda_env` (a :class:`MultiCameraWrapper`, possibly wrapped).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        try:
            rig = env.get_wrapper_attr("rig")
        except AttributeError:
            raise ConfigError("DepthViews wraps a camera env (robo_reward/MetaWorld-v0 or robo_reward/Panda-v0)") from None
        base = env.unwrapped
        if hasattr(base, "model") and hasattr(base, "data"):
            self._depth: MujocoBuffers | _PyBulletDepth = MujocoBuffers(env, rig)
        elif hasattr(base, "sim") and hasattr(base.sim, "physics_client"):
            self._depth = _PyBulletDepth(env, rig)
        else:
            raise ConfigError(f"DepthViews: no depth renderer for {type(base).__name__} (MuJoCo and PyBullet only)")
        self._names = tuple(rig.names)
        depth_space = spaces.Box(0.0, np.inf, shape=(rig.height, rig.width), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {**env.observation_space.spaces, "depth": spaces.Dict({n: depth_space for n in self._names})})

    def _observe(self, obs: dict[str, Any]) -> dict[str, Any]:
        return {**obs, "depth": {name: self._depth.render(name) for name in self._names}}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._observe(obs), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def close(self) -> None:
        self._depth.close()
        super().close()
