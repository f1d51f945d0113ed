"""Point tracking on the CPU: OpenCV pyramidal Lucas–Kanade (Bouguet 2001) with a
forward–backward check (Kalal, Mikolajczyk & Matas 2010, "Forward-Backward Error"), an
appearance check against each point's first-frame template, and template re-detection.

Per frame and point:

1. track the point from the previous frame with LK, then track the result back; the point
   is kept if both passes converge and it returns within ``fb_threshold`` pixels of where
   it started (OpenCV's ``lk_track.py`` sample uses 1 px);
2. the patch at the new position must still resemble the point's first-frame patch
   (zero-mean normalised cross-correlation ≥ ``min_similarity``, default 0: not
   uncorrelated): an occluder (the gripper closing over a handle) fails it;
3. a point that fails either check — or was lost before — is searched for by template
   matching within ``search`` pixels of its last position; found (score ≥
   ``redetect_similarity``): it is recovered there; else it is **lost**: it keeps its last
   position and confidence 0, and is searched for again on every later frame.

The defaults were chosen on scripted Meta-World episodes at 128×128 (``docs/keypoints.md``):
a 7-pixel window over 3 pyramid levels tracked objects of a few pixels best; a strict
appearance check (NCC ≥ 0.6) flagged most frames of a grasped object as lost, and a loose
re-detection threshold (0.6) jumped to look-alike texture.

Confidence: the similarity, times ``1 − fb_error / fb_threshold`` for a tracked point,
the matching score for a re-detected one, 0 for a lost one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robo_reward.errors import ConfigError, InputError, require


def opencv():
    """OpenCV, or a DependencyNotInstalled naming the extra that installs it."""
    return require("cv2", "keypoint", "keypoint tracking (OpenCV)")


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of :class:`PointTracker` (pixels of the tracked images).

    Attributes:
        window: side of the LK integration window.
        levels: pyramid levels above the full image (0: no pyramid).
        iterations, epsilon: LK's stopping criteria per level.
        fb_threshold: largest forward–backward error of a kept point.
        patch: side of the template compared and searched for (odd).
        min_similarity: least normalised cross-correlation of a tracked point's patch with
            its first-frame template (below: occluded or swapped for something else).
        redetect_similarity: least matching score of a re-detected point (stricter: a
            search finds look-alikes that tracking would not jump to).
        search: radius searched around a failed point's last position.
    """

    window: int = 7
    levels: int = 2
    iterations: int = 30
    epsilon: float = 0.01
    fb_threshold: float = 1.0
    patch: int = 9
    min_similarity: float = 0.0
    redetect_similarity: float = 0.8
    search: int = 12

    def __post_init__(self) -> None:
        if self.window < 3 or self.levels < 0 or self.iterations < 1 or self.epsilon <= 0:
            raise ConfigError("tracker: window must be >= 3, levels >= 0, iterations >= 1 and epsilon > 0")
        if self.patch < 3 or self.patch % 2 == 0 or self.search < 1 or self.fb_threshold <= 0:
            raise ConfigError("tracker: patch must be odd and >= 3, search >= 1 and fb_threshold > 0")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ConfigError(f"tracker: min_similarity must be in [-1, 1], got {self.min_similarity}")


@dataclass
class TrackedPoints:
    """Where the points are in one frame.

    Attributes:
        uv: (N, 2) float64 pixels (a lost point: its last known position).
        confidence: (N,) in [0, 1]; 0 for a lost point.
        lost: (N,) bool.
        recovered: (N,) bool, re-detected by template matching in this frame.
    """

    uv: np.ndarray
    confidence: np.ndarray
    lost: np.ndarray
    recovered: np.ndarray


def gray(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → uint8 grey (H, W)."""
    return opencv().cvtColor(np.ascontiguousarray(image), opencv().COLOR_RGB2GRAY)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 1e-6 else 0.0


class PointTracker:
    """Track N points through the frames of one view (see the module docstring).

    Args:
        image: the first frame, uint8 RGB (H, W, 3).
        uv: (N, 2) the points' pixels in it.
        config: tracker settings.
        where: the episode and view, for messages.
    """

    def __init__(self, image: np.ndarray, uv: np.ndarray, config: TrackerConfig | None = None,
                 where: str = "") -> None:
        cv2 = opencv()
        self.config = config or TrackerConfig()
        self.where = where
        self._gray = gray(image)
        height, width = self._gray.shape
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        outside = ~((uv >= 0) & (uv <= [width - 1, height - 1])).all(axis=1)
        if outside.any():
            raise InputError(f"{where}: keypoint pixel(s) {uv[outside].round(1).tolist()} lie outside the "
                             f"{width}×{height} image")
        self._uv = uv.astype(np.float32)
        size = (self.config.patch, self.config.patch)
        self._templates = [cv2.getRectSubPix(self._gray, size, (float(u), float(v))) for u, v in self._uv]
        self._lost = np.zeros(len(uv), dtype=bool)
        self._lk = {"winSize": (self.config.window, self.config.window), "maxLevel": self.config.levels,
                    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, self.config.iterations,
                                 self.config.epsilon)}

    def __len__(self) -> int:
        return len(self._uv)

    def update(self, image: np.ndarray) -> TrackedPoints:
        """Track every point into ``image`` (uint8 RGB, the first frame's size)."""
        cv2 = opencv()
        current = gray(image)
        if current.shape != self._gray.shape:
            raise InputError(f"{self.where}: frame of {current.shape[1]}×{current.shape[0]} pixels after a first "
                             f"frame of {self._gray.shape[1]}×{self._gray.shape[0]}")
        count = len(self._uv)
        uv = self._uv.copy()
        confidence = np.zeros(count)
        failed = self._lost.copy()
        active = np.flatnonzero(~self._lost)
        if len(active):
            start = self._uv[active].reshape(-1, 1, 2)
            forward, status, _ = cv2.calcOpticalFlowPyrLK(self._gray, current, start, None, **self._lk)
            back, status_back, _ = cv2.calcOpticalFlowPyrLK(current, self._gray, forward, None, **self._lk)
            error = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
            size = (self.config.patch, self.config.patch)
            for j, i in enumerate(active):
                point = forward[j, 0]
                ok = bool(status[j, 0] and status_back[j, 0]) and error[j] < self.config.fb_threshold
                ok = ok and self._inside(point, current.shape)
                if ok:
                    similarity = _ncc(cv2.getRectSubPix(current, size, (float(point[0]), float(point[1]))),
                                      self._templates[i])
                    ok = similarity >= self.config.min_similarity
                if ok:
                    uv[i] = point
                    confidence[i] = max(similarity, 0.0) * (1.0 - error[j] / self.config.fb_threshold)
                else:
                    failed[i] = True
        recovered = np.zeros(count, dtype=bool)
        lost = np.zeros(count, dtype=bool)
        for i in np.flatnonzero(failed):
            found = self._search(current, i)
            if found is None:
                lost[i] = True
            else:
                uv[i], confidence[i] = found
                recovered[i] = True
        self._gray, self._uv, self._lost = current, uv, lost
        return TrackedPoints(uv.astype(np.float64), confidence, lost, recovered)

    def _inside(self, point: np.ndarray, shape: tuple[int, int]) -> bool:
        return bool(np.isfinite(point).all() and 0 <= point[0] <= shape[1] - 1 and 0 <= point[1] <= shape[0] - 1)

    def _search(self, current: np.ndarray, i: int) -> tuple[np.ndarray, float] | None:
        """The best template match of point ``i`` near its last position, if good enough."""
        cv2 = opencv()
        half, radius = self.config.patch // 2, self.config.search
        height, width = current.shape
        u, v = (round(float(c)) for c in self._uv[i])
        left, top = max(u - radius - half, 0), max(v - radius - half, 0)
        right, bottom = min(u + radius + half + 1, width), min(v + radius + half + 1, height)
        region = current[top:bottom, left:right]
        if region.shape[0] < self.config.patch or region.shape[1] < self.config.patch:
            return None
        scores = cv2.matchTemplate(region, self._templates[i], cv2.TM_CCOEFF_NORMED)
        _, best, _, (col, row) = cv2.minMaxLoc(scores)
        if not np.isfinite(best) or best < self.config.redetect_similarity:
            return None
        du, dv = _subpixel(scores, row, col)
        return np.array([left + half + col + du, top + half + row + dv], dtype=np.float32), float(best)


def _subpixel(scores: np.ndarray, row: int, col: int) -> tuple[float, float]:
    """Offsets (du, dv) in [-½, ½] of a score peak, from a parabola through its neighbours."""

    def vertex(low: float, mid: float, high: float) -> float:
        curvature = low - 2 * mid + high
        return float(np.clip(0.5 * (low - high) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0

    du = vertex(scores[row, col - 1], scores[row, col], scores[row, col + 1]) if 0 < col < scores.shape[1] - 1 else 0.0
    dv = vertex(scores[row - 1, col], scores[row, col], scores[row + 1, col]) if 0 < row < scores.shape[0] - 1 else 0.0
    return du, dv
