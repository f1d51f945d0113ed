"""Multi-camera observations for any gymnasium environment, with camera calibration.

:class:`MultiCameraWrapper` renders N named cameras after every ``reset`` and ``step``
and returns them next to the environment's own observation::

    {"state": <the wrapped env's observation>,
     "views": {camera_name: uint8 RGB array (H, W, 3)}}

The simulator-specific part is a :class:`CameraRig` (MuJoCo in
:mod:`robo_reward.envs.metaworld`, PyBullet in :mod:`robo_reward.envs.panda`).

Calibration (:class:`~robo_reward.geometry.CameraInfo`, re-exported here) follows the
OpenCV pinhole convention described in :mod:`robo_reward.geometry`.
"""

from __future__ import annotations

import ctypes.util
import difflib
import glob
import math
import os
from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from robo_reward.errors import ConfigError, InputError
from robo_reward.geometry import CameraInfo

#: Rotation from an OpenGL-style camera frame (x right, y up, looking along -z) to OpenCV's.
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def choose_mujoco_gl() -> str:
    """Pick MuJoCo's offscreen OpenGL backend unless the user already set ``MUJOCO_GL``.

    ``egl`` (GPU, headless) when libEGL is installed and a GPU device node exists
    (``/dev/nvidia*`` or ``/dev/dri/renderD*``); otherwise ``osmesa`` (software, slow,
    Debian package ``libosmesa6``) when libOSMesa is installed. MuJoCo reads the variable
    once, when ``mujoco`` is first imported, so this runs before that import (importing
    :mod:`robo_reward.envs` calls it). Returns the value in effect ("" if none).
    """
    if "MUJOCO_GL" not in os.environ:
        gpu = glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/dri/renderD*")
        if gpu and ctypes.util.find_library("EGL"):
            os.environ["MUJOCO_GL"] = "egl"
        elif ctypes.util.find_library("OSMesa"):
            os.environ["MUJOCO_GL"] = "osmesa"
    return os.environ.get("MUJOCO_GL", "")


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """(3, 3) pinhole ``K`` of a symmetric-frustum camera with vertical field of view
    ``fovy_deg`` (degrees) rendering ``width`` x ``height`` pixels with square pixels."""
    focal = 0.5 * height / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    )


def parse_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` in pixels from an int (square) or a (height, width) pair."""
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and 8 <= s <= 4096 for s in size):
        raise ConfigError(
            f"image_size must be an int or a (height, width) pair of ints in [8, 4096], got {image_size!r}"
        )
    return int(size[0]), int(size[1])


def check_names(kind: str, requested: Sequence[str], valid: Sequence[str], where: str) -> tuple[str, ...]:
    """Return ``requested`` as a tuple, or raise :class:`ConfigError` naming close matches.

    Args:
        kind: what the names are (``"camera"``, ``"task"``), for the message.
        requested: the names asked for.
        valid: every accepted name.
        where: the simulator or benchmark the names belong to, for the message.
    """
    names = (requested,) if isinstance(requested, str) else tuple(requested)
    if not names:
        raise ConfigError(f"no {kind}s given for {where}: give at least one of {', '.join(valid)}")
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(str(name), list(valid), n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown {kind} {name!r} for {where}.{hint} Valid {kind}s: {', '.join(valid)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{kind}s must be distinct, got {list(names)}")
    return names


class CameraRig(Protocol):
    """The simulator-specific renderer behind :class:`MultiCameraWrapper`.

    A rig renders the current simulator state; it never steps the simulation.
    """

    names: tuple[str, ...]
    height: int
    width: int

    def render(self, name: str) -> np.ndarray:
        """uint8 RGB (height, width, 3) image of camera ``name``, upright."""
        ...

    def info(self, name: str) -> CameraInfo:
        """Calibration of camera ``name`` at the current simulator state."""
        ...

    def close(self) -> None: ...


class MultiCameraWrapper(gym.Wrapper):
    """Add named camera views to every observation of ``env``.

    Observation: ``{"state": env's observation, "views": {name: uint8 (H, W, 3)}}``
    (a :class:`gymnasium.spaces.Dict`). ``terminated`` and ``truncated`` pass through
    unchanged. ``render()`` returns the last views side by side, (H, N·W, 3).

    Args:
        env: the simulator environment.
        rig: renders ``env``'s cameras (see :class:`CameraRig`); closed with the wrapper.
    """

    def __init__(self, env: gym.Env, rig: CameraRig) -> None:
        super().__init__(env)
        if not rig.names:
            raise ConfigError("no cameras: give at least one camera name")
        self.rig = rig
        self.metadata = {**env.metadata, "render_modes": ["rgb_array"]}
        image_space = spaces.Box(0, 255, shape=(rig.height, rig.width, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(
            {
                "state": env.observation_space,
                "views": spaces.Dict({name: image_space for name in rig.names}),
            }
        )
        self._last_views: dict[str, np.ndarray] = {}

    @property
    def render_mode(self) -> str:
        """Always ``"rgb_array"``: :meth:`render` returns the last views."""
        return "rgb_array"

    @property
    def camera_names(self) -> tuple[str, ...]:
        """The camera names, in the order of the ``views`` dict."""
        return self.rig.names

    def camera_info(self, name: str) -> CameraInfo:
        """Intrinsics and extrinsics of camera ``name`` at the current simulator state.

        Fixed cameras have constant extrinsics; cameras that ride on the robot move with it.
        """
        if name not in self.rig.names:
            raise InputError(f"unknown camera {name!r}: this env renders {', '.join(self.rig.names)}")
        return self.rig.info(name)

    def _observe(self, state: Any) -> dict[str, Any]:
        self._last_views = {name: self.rig.render(name) for name in self.rig.names}
        return {"state": state, "views": dict(self._last_views)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        state, info = self.env.reset(seed=seed, options=options)
        return self._observe(state), info

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        state, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(state), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        """The views of the last observation side by side: uint8 (H, N·W, 3)."""
        if not self._last_views:
            raise InputError("render() before reset(): there are no views yet")
        return np.concatenate([self._last_views[name] for name in self.rig.names], axis=1)

    def close(self) -> None:
        self.rig.close()
        super().close()
