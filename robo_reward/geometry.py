"""Pinhole camera geometry: calibration, projection into an image and lifting back with depth.

The convention is OpenCV's, everywhere in robo_reward:

* pixel coordinates ``(u, v)``: ``u`` to the right, ``v`` down, the centre of the
  top-left pixel at ``(0, 0)`` (so the image centre is ``((W-1)/2, (H-1)/2)``);
* camera frame: ``x`` right, ``y`` down, ``z`` forward along the optical axis, metres;
* ``intrinsics`` ``K`` (3, 3) maps camera-frame points to pixels:
  ``[u, v, 1]ᵀ ∝ K [x, y, z]ᵀ``;
* ``extrinsics`` (4, 4) is the world-from-camera pose: ``p_world = E @ [p_cam, 1]``;
* depth is ``z`` in the camera frame (distance along the optical axis, not along the
  ray), metres; 0, NaN or inf where unknown.

The simulators' rigs (:mod:`robo_reward.envs.metaworld`, :mod:`robo_reward.envs.panda`)
produce :class:`CameraInfo`; the keypoint reward (:mod:`robo_reward.models.keypoints`)
reads it from a keypoint spec, which is why it lives below the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from robo_reward.errors import InputError


@dataclass(frozen=True)
class CameraInfo:
    """Calibration of one camera (OpenCV convention, see the module docstring).

    Attributes:
        intrinsics: (3, 3) float64 pinhole matrix ``K`` in pixels.
        extrinsics: (4, 4) float64 world-from-camera pose, metres.
        width: image width in pixels.
        height: image height in pixels.
    """

    intrinsics: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int

    @property
    def camera_from_world(self) -> np.ndarray:
        """(4, 4) float64 inverse of :attr:`extrinsics`."""
        rotation, position = self.extrinsics[:3, :3], self.extrinsics[:3, 3]
        inverse = np.eye(4)
        inverse[:3, :3] = rotation.T
        inverse[:3, 3] = -rotation.T @ position
        return inverse

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points into the image.

        Args:
            points_world: (N, 3) or (3,) positions in metres, world frame.

        Returns:
            ``(uv, depth)``: (N, 2) float64 pixel coordinates and (N,) float64 depth along
            the optical axis in metres (negative: behind the camera, ``uv`` meaningless).
        """
        points = np.atleast_2d(np.asarray(points_world, dtype=np.float64))
        camera = points @ self.camera_from_world[:3, :3].T + self.camera_from_world[:3, 3]
        depth = camera[:, 2]
        pixels = camera @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = pixels[:, :2] / depth[:, None]
        return uv, depth

    def unproject(self, uv: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """World points seen at pixels ``uv`` (N, 2) at optical-axis depths ``depth`` (N,) metres
        → (N, 3) float64; the inverse of :meth:`project`."""
        uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
        depth = np.broadcast_to(np.asarray(depth, dtype=np.float64), (len(uv),))
        rays = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(self.intrinsics).T
        camera = rays * depth[:, None]
        return camera @ self.extrinsics[:3, :3].T + self.extrinsics[:3, 3]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what :meth:`from_dict` reads)."""
        return {"intrinsics": self.intrinsics.tolist(), "extrinsics": self.extrinsics.tolist(),
                "width": int(self.width), "height": int(self.height)}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> CameraInfo:
        """Read ``{intrinsics: 3×3, extrinsics: 4×4, width, height}``; an InputError names
        ``where`` and the bad field."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: expected a mapping with intrinsics, extrinsics, width, height")
        unknown = sorted(set(data) - {"intrinsics", "extrinsics", "width", "height"})
        if unknown:
            raise InputError(f"{where}.{unknown[0]}: unknown field (fields: intrinsics, extrinsics, width, height)")
        matrices = {}
        for key, shape in (("intrinsics", (3, 3)), ("extrinsics", (4, 4))):
            try:
                matrix = np.asarray(data[key], dtype=np.float64)
            except KeyError:
                raise InputError(f"{where}.{key}: missing") from None
            except (TypeError, ValueError):
                raise InputError(f"{where}.{key}: expected a {shape[0]}×{shape[1]} matrix of numbers") from None
            if matrix.shape != shape or not np.isfinite(matrix).all():
                raise InputError(f"{where}.{key}: expected a finite {shape[0]}×{shape[1]} matrix, got shape "
                                 f"{matrix.shape}")
            matrices[key] = matrix
        sizes = {}
        for key in ("width", "height"):
            value = data.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{where}.{key}: expected a positive integer, got {value!r}")
            sizes[key] = value
        return cls(matrices["intrinsics"], matrices["extrinsics"], sizes["width"], sizes["height"])


def depth_at(depth: np.ndarray, uv: np.ndarray, radius: int = 1) -> np.ndarray:
    """Depth (metres) at pixels ``uv`` (N, 2) of a depth map (H, W): the smallest valid value in
    the (2·radius+1)² window around each rounded pixel (the nearest surface, so a point on a
    thin object's edge does not read the background behind it); NaN where the window holds
    none or lies outside the image."""
    uv = np.atleast_2d(np.asarray(uv, dtype=np.float64))
    height, width = depth.shape
    out = np.full(len(uv), np.nan)
    for i, (u, v) in enumerate(uv):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        col, row = round(u), round(v)
        if not (0 <= col < width and 0 <= row < height):
            continue
        window = depth[max(row - radius, 0):row + radius + 1, max(col - radius, 0):col + radius + 1]
        valid = window[np.isfinite(window) & (window > 0)]
        if valid.size:
            out[i] = float(valid.min())
    return out


def fuse_points(estimates: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of V views' estimates (V, N, 3) of N points with weights (V, N) → (N, 3);
    non-finite estimates and zero weights are left out; NaN for a point no view estimates."""
    estimates = np.asarray(estimates, dtype=np.float64)
    weights = np.where(np.isfinite(estimates).all(axis=-1), np.asarray(weights, dtype=np.float64), 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fused = (np.nan_to_num(estimates) * weights[..., None]).sum(axis=0) / total[:, None]
    return np.where((total > 0)[:, None], fused, np.nan)
