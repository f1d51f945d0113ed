"""Progress Φ from a waypoint sequence: the index of the waypoint reached, and the distance
to the current one (KAGI's dense reward "with respect to the waypoint sequence"; the
paper's exact formula is not public, so this one is ours, ``docs/keypoints.md``).

With K waypoints, k of them reached and d the distance of the current waypoint's mover
to its target::

    Φ = (k + s / (s + d)) / K      while k < K,      Φ = 1 once k = K (success)

``s`` is the distance at which the current waypoint counts half done. Φ is monotone in
the waypoint order — any state with k waypoints reached scores in [k/K, (k+1)/K), above
every state with fewer — and within a waypoint it falls strictly with d (no plateau, so
ranks are never tied). The index is kept per episode (in its context) and moves by these
rules, in this order, on every frame:

* **undo**: the last waypoint stops counting as reached as soon as its distance exceeds
  its threshold ε (success is a property of the current frame, as the simulators' own);
  the others with hysteresis, ``release`` × ε: a waypoint that hands over to another
  mover (the gripper reaching the grasp point, after which the grasped object moves)
  when its mover and target are further apart than release·ε (the object let go — a
  drawer's hooked handle sits 6–8 cm from the fingertips while it is pulled, hence the
  default release of 3 at ε = 3 cm); a via point of the same mover when the mover is
  further from the next target than the via point itself is, plus release·ε (it went
  back past it);
* **reach**: while the current waypoint's distance is below its threshold, it is reached
  and the next one becomes current (several in one frame). On the episode's first frame
  the index starts after the last waypoint already within its threshold, if any: an
  episode that starts with its object at the goal (a reversed one) starts done.

A grasped point moves with what holds it: while a hand-over waypoint (mover m reaching
target g, after which g moves) counts as reached, a frame where g's position is unknown (the
gripper hides the handle it pulls) places g at m plus the offset g last had from m (a rigid
grasp, as ReKep attaches grasped keypoints to the gripper).

So Φ is a function of the frame and of the index, which the episode's history fixes: in
the product of the environment's state with the index (a reward machine; Toro Icarte et
al. 2018) it is a proper potential for Ng et al.'s shaping. A distance that is unknown
(a lost point, a view that does not see it) leaves the index as it is and makes Φ unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from robo_reward.keypoint_spec import Waypoint


@dataclass
class WaypointTracker:
    """The waypoint index of one episode in one space (a view's pixels, or metres in 3D).

    Args:
        waypoints: the spec's waypoints, in order.
        thresholds: (K,) reach distance of each waypoint, in the space's unit.
        scales: (K,) the distance at which each waypoint counts half done.
        release: hysteresis factor (>= 1).
    """

    waypoints: Sequence[Waypoint]
    thresholds: np.ndarray
    scales: np.ndarray
    release: float
    reached: int = 0
    grips: dict[int, np.ndarray] = field(default_factory=dict)
    started: bool = False

    def update(self, positions: Mapping[str, np.ndarray]) -> tuple[float, bool, dict[str, np.ndarray]]:
        """Advance the index with one frame's keypoint positions (name → point, NaN where
        unknown) → (Φ, success, the positions with grasped points filled in); Φ is NaN when
        the current waypoint's distance is unknown."""
        positions = self._carried(positions)
        distances = np.array([_distance(positions, w) for w in self.waypoints])
        count = len(self.waypoints)
        if not self.started:
            self.started = True
            done = np.flatnonzero(distances < self.thresholds)
            self.reached = int(done[-1]) if len(done) else 0
        while self.reached > 0 and self._undone(self.reached, distances, positions):
            self.reached -= 1
            self.grips.pop(self.reached, None)
        while self.reached < count and distances[self.reached] < self.thresholds[self.reached]:
            waypoint = self.waypoints[self.reached]
            if self._hands_over(self.reached + 1):
                self.grips[self.reached] = positions[waypoint.target] - positions[waypoint.mover]
            self.reached += 1
        if self.reached == count:
            return 1.0, True, positions
        distance, scale = distances[self.reached], self.scales[self.reached]
        return float((self.reached + scale / (scale + distance)) / count), False, positions

    def _hands_over(self, k: int) -> bool:
        """Whether waypoint k (1-based) hands over to another mover."""
        return k < len(self.waypoints) and self.waypoints[k].mover != self.waypoints[k - 1].mover

    def _carried(self, positions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(positions)
        for j, offset in self.grips.items():
            waypoint = self.waypoints[j]
            held, holder = out[waypoint.target], out[waypoint.mover]
            if np.isfinite(held).all() and np.isfinite(holder).all():
                self.grips[j] = held - holder
            elif np.isfinite(holder).all():
                out[waypoint.target] = holder + offset
        return out

    def _undone(self, k: int, distances: np.ndarray, positions: Mapping[str, np.ndarray]) -> bool:
        """Whether waypoint k (1-based, reached) is undone; False when it cannot be told."""
        if k == len(self.waypoints):
            return bool(distances[k - 1] > self.thresholds[k - 1])  # NaN compares False: kept
        slack = self.release * self.thresholds[k - 1]
        if self._hands_over(k):
            return bool(distances[k - 1] > slack)
        via = positions[self.waypoints[k - 1].target] - positions[self.waypoints[k].target]
        return bool(distances[k] > np.linalg.norm(via) + slack)


def _distance(positions: Mapping[str, np.ndarray], waypoint: Waypoint) -> float:
    return float(np.linalg.norm(positions[waypoint.mover] - positions[waypoint.target]))
