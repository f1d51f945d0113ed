"""``keypoint``: a dense reward from task keypoints tracked through the frames and the
waypoints between them (KAGI; Lee, Xie, Fang, Pertsch, Finn 2024, arXiv 2407.10341).

Per episode (its :class:`~robo_reward.types.EpisodeContext`, whose cache holds all the
state below), from its first set:

1. **the spec** — ``--option keypoints=FILE`` (:func:`robo_reward.keypoint_spec.load_spec`),
   else the task's own (:attr:`Task.keypoints`), else, with ``propose=true``, a VLM's
   choice among numbered candidates (:mod:`.propose`), asked once per episode;
2. **tracking** — each tracked keypoint, per view, from its pixels in the first set
   (:mod:`.track`); a keypoint with ``state`` columns is read from the batch's robot
   state instead when the batch carries one (proprioception);
3. **positions** — per view: in metres when the spec calibrates the view and the batch
   carries its depth (tracked pixels lifted with the depth, :meth:`CameraInfo.unproject`),
   else in pixels (state and world positions projected into the view); fused in 3D: state
   and world positions as they are, tracked points lifted in every calibrated view with
   depth and averaged by tracking confidence. A keypoint given in 3D keeps the offset from
   the surface its first pixel sees; a view's lift further than :data:`DEPTH_GATE_M` per
   unseen frame from the point's last 3D position is another surface's and is left out;
4. **progress** — a waypoint index per space (each view, and 3D) and Φ
   (:mod:`.progress`): ``per_view`` is each view's Φ, ``progress`` the 3D Φ where every
   waypoint's keypoints have a 3D position, else the views' Φ fused
   (:func:`robo_reward.fusion.fuse_views`); ``success`` is 1 when the last waypoint is
   reached (in 3D, else the share of views that say so); ``uncertainty`` the views'
   disagreement. A frame where no space can tell keeps the episode's last Φ, with the
   uncertainty of no view at all.

Pixel thresholds and scales, when the spec gives none: the metric ones drawn at the
target's depth in the first set (``f·ε / z``) where the view is calibrated, else 3 % and
10 % of the image diagonal.

The model is ``sequential`` (tracking and the waypoint index follow the frames): give an
episode's samples in playing order, each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError, InputError
from robo_reward.fusion import UNINFORMED_VARIANCE, fuse_views
from robo_reward.geometry import CameraInfo, depth_at, fuse_points
from robo_reward.keypoint_spec import KeypointSpec, load_spec
from robo_reward.models import register_model
from robo_reward.models.base import RewardModel
from robo_reward.models.keypoints.progress import WaypointTracker
from robo_reward.models.keypoints.track import PointTracker, TrackerConfig
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

#: Default pixel threshold and scale, as fractions of the image diagonal.
THRESHOLD_DIAGONAL, SCALE_DIAGONAL = 0.03, 0.10
SPACE_3D = "3d"
#: How far (metres) a tracked point's lifted position may lie from its last 3D position, per
#: frame since it was last seen; further, the depth read is another surface's.
DEPTH_GATE_M = 0.05


@dataclass
class KeypointConfig:
    """Options of the ``keypoint`` model.

    Attributes:
        keypoints: a keypoint spec file (YAML or JSON); None: the task's keypoints, else a
            VLM proposal (``propose``).
        propose: ask a VLM for each episode's keypoints when there is no spec.
        views: use only these views (default: every view the spec marks or calibrates).
        window, levels, fb_threshold, min_similarity, redetect_similarity, search, patch:
            the tracker's settings (:class:`~robo_reward.models.keypoints.track.TrackerConfig`).
        depth_radius: depth is read as the nearest surface within this many pixels of a
            tracked point.
        candidates, grid, mark_size: the proposal's numbered candidates per view, grid
            tiles per side, and the size of the marked image sent (pixels).
        vlm: the proposal's chat backend: options of the ``vlm`` model
            (:class:`~robo_reward.models.vlm.model.VlmConfig`: ``base_url``, ``model``,
            ``backend``, ``parse_retries``, ``cache_dir``…), e.g.
            ``--option 'vlm={base_url: "http://GPU-BOX:8000/v1", model: Qwen/Qwen2.5-VL-7B-Instruct}'``.
    """

    keypoints: str | None = None
    propose: bool = False
    views: tuple[str, ...] = ()
    window: int = 7
    levels: int = 2
    fb_threshold: float = 1.0
    min_similarity: float = 0.0
    redetect_similarity: float = 0.8
    search: int = 12
    patch: int = 9
    depth_radius: int = 1
    candidates: int = 8
    grid: int = 5
    mark_size: int = 512
    vlm: dict[str, Any] = field(default_factory=dict)

    def tracker(self) -> TrackerConfig:
        return TrackerConfig(window=self.window, levels=self.levels, fb_threshold=self.fb_threshold,
                             patch=self.patch, min_similarity=self.min_similarity,
                             redetect_similarity=self.redetect_similarity, search=self.search)


@register_model("keypoint")
class KeypointRewardModel(RewardModel):
    """Progress from tracked task keypoints and their waypoints; see the module docstring."""

    config_class = KeypointConfig
    uses_context = True
    sequential = True

    def __init__(self, config: KeypointConfig) -> None:
        if config.keypoints is not None and config.propose:
            raise ConfigError("keypoint: give keypoints=FILE or propose=true, not both")
        if config.depth_radius < 0:
            raise ConfigError(f"keypoint: depth_radius must be >= 0, got {config.depth_radius}")
        super().__init__(config)
        self.tracking = config.tracker()
        self.spec = None if config.keypoints is None else load_spec(config.keypoints)
        self.proposer = None
        if config.propose:
            from robo_reward.models.keypoints.propose import Proposer

            self.proposer = Proposer(config)

    def describe(self) -> str:
        if self.config.keypoints is not None:
            source = self.config.keypoints
        elif self.proposer is not None:
            source = f"the task's, else a VLM proposal via {self.proposer.describe()}"
        else:
            source = "the task's keypoints"
        return f"keypoint(spec: {source}; tracker {self.tracking})"

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        assert contexts is not None  # uses_context: RewardModel.score guarantees one
        where = batch.source or "batch"
        self._start_episodes(task, contexts, where)
        size = len(batch)
        episodes = [context.cache[self._slot] for context in contexts]
        views = list(dict.fromkeys(v for episode in episodes for v in episode.views))
        per_view = {view: np.full(size, np.nan) for view in views}
        progress, success, uncertainty = np.zeros(size), np.zeros(size), np.zeros(size)
        for i, episode in enumerate(episodes):
            result = episode.step(batch, i)
            for view, value in result.per_view.items():
                per_view[view][i] = value
            progress[i], success[i], uncertainty[i] = result.progress, result.success, result.uncertainty
        return Scores(progress=progress, success=success, per_view=per_view, uncertainty=uncertainty)

    @property
    def _slot(self) -> tuple[int, str]:
        return (id(self), "episode")

    def _start_episodes(self, task: Task, contexts: Sequence[EpisodeContext], where: str) -> None:
        """Give every context seen for the first time its episode state (one VLM round trip
        for all the episodes that need a proposal)."""
        new = list({id(c): c for c in contexts if self._slot not in c.cache}.values())
        if not new:
            return
        specs: list[KeypointSpec | None] = [self.spec or task.keypoints for _ in new]
        asking = [c for c, spec in zip(new, specs) if spec is None]
        if asking and self.proposer is None:
            raise ConfigError(
                f"{where}: the keypoint model has no keypoints for this task: give --option keypoints=FILE, a task "
                "with keypoints, or --option propose=true (a VLM picks them on each episode's first frame)")
        proposed = iter(self.proposer.propose(task, [c.first for c in asking], where) if asking else [])
        for context, spec in zip(new, specs):
            context.cache[self._slot] = _Episode(spec or next(proposed), context.first, self.config, self.tracking,
                                                 where)


@dataclass
class _Step:
    progress: float
    success: float
    uncertainty: float
    per_view: dict[str, float]


class _Episode:
    """One episode's trackers, waypoint indices and fixed positions (kept in its context)."""

    def __init__(self, spec: KeypointSpec, first: FrameBatch, config: KeypointConfig, tracking: TrackerConfig,
                 where: str) -> None:
        self.where = f"{where} ({spec.source})" if spec.source else where
        if spec.frame is not None and int(first.frame_index[0]) != spec.frame:
            raise ConfigError(
                f"{where}: the keypoint spec {spec.source} marks frame {spec.frame}, but this episode starts at "
                f"frame {int(first.frame_index[0])} (a reversed pass needs keypoints marked on its first set: "
                "a spec per pass, or propose=true)")
        self.spec, self.config = spec, config
        marked = list(dict.fromkeys([*spec.views, *spec.cameras]))
        wanted = [v for v in (config.views or marked) if v in marked]
        self.views = [v for v in wanted if v in first.views]
        if not self.views:
            raise InputError(f"{self.where}: the keypoint spec marks views {marked}, the frames have "
                             f"{first.view_names}" + (f" and views={list(config.views)}" if config.views else ""))
        names = list(spec.keypoints)
        state_width = 0 if first.state is None else first.state.shape[1]
        self.from_state = [n for n in names if spec.keypoints[n].state is not None
                           and spec.keypoints[n].state[1] <= state_width]
        first_3d = self._first_positions(first)
        self.fixed_3d = {n: first_3d[n] for n in names if not spec.keypoints[n].moves}
        self.fixed_px = {v: {n: self._pixel_at_start(n, v, first_3d) for n in self.fixed_3d} for v in self.views}
        # a keypoint given in 3D lies off the surface its pixel sees (a puck's centre under its top):
        # its lifted position keeps the first set's offset, as a point attached to the body would
        self.offsets = {v: {n: self._attachment(n, v, first) for n in names} for v in self.views}
        self.estimate = {n: first_3d[n] for n in names if spec.keypoints[n].track}
        self.unseen: dict[str, int] = {}
        self.trackers: dict[str, tuple[list[str], PointTracker]] = {}
        for view in self.views:
            tracked = [n for n in names if spec.keypoints[n].moves
                       and (n not in self.from_state or view not in spec.cameras)
                       and self._pixel_at_start(n, view, first_3d) is not None]
            if tracked:
                start = np.array([self._pixel_at_start(n, view, first_3d) for n in tracked])
                self.trackers[view] = (tracked, PointTracker(first.views[view][0], start, tracking,
                                                             where=f"{self.where} view '{view}'"))
        self.progress = {space: self._waypoints(space, first_3d, first) for space in [*self.views, SPACE_3D]}
        self.last = 0.0

    # -- positions -----------------------------------------------------------------------

    def _camera(self, view: str) -> CameraInfo | None:
        return self.spec.cameras.get(view)

    def _first_positions(self, first: FrameBatch) -> dict[str, np.ndarray]:
        """Every keypoint's 3D position in the first set where it can be told (else NaN):
        the state, the spec's world position, or its pixels lifted with the first depth."""
        out = {}
        for name, keypoint in self.spec.keypoints.items():
            if name in self.from_state:
                out[name] = self._state_point(name, first, 0)
            elif keypoint.world is not None:
                out[name] = np.array(keypoint.world)
            else:
                lifted = [self._lift(view, np.array(uv), first, 0) for view, uv in keypoint.pixels.items()
                          if view in first.views]
                out[name] = fuse_points(np.array(lifted)[:, None, :], np.ones((len(lifted), 1)))[0] \
                    if lifted else np.full(3, np.nan)
        return out

    def _attachment(self, name: str, view: str, first: FrameBatch) -> np.ndarray:
        """World position minus the lifted first-frame pixel of a tracked keypoint given in 3D; 0
        where it is not given, or where the view sees something else in front of it there
        (its depth more than ``DEPTH_GATE_M`` short of the point's: an occluder)."""
        keypoint = self.spec.keypoints[name]
        if not keypoint.track or keypoint.world is None or not self._metric(view, first):
            return np.zeros(3)
        world = np.array(keypoint.world)
        uv = self._pixel_at_start(name, view, {name: world})
        surface = np.full(3, np.nan) if uv is None else self._lift(view, uv, first, 0)
        if not np.isfinite(surface).all():
            return np.zeros(3)
        camera = self._camera(view)
        in_front = camera.project(world)[1][0] - camera.project(surface)[1][0]
        return world - surface if in_front <= DEPTH_GATE_M else np.zeros(3)

    def _pixel_at_start(self, name: str, view: str, first_3d: dict[str, np.ndarray]) -> np.ndarray | None:
        keypoint = self.spec.keypoints[name]
        if view in keypoint.pixels:
            return np.array(keypoint.pixels[view])
        camera = self._camera(view)
        if camera is None or not np.isfinite(first_3d[name]).all():
            return None
        (uv,), (z,) = camera.project(first_3d[name])
        return uv if z > 0 and 0 <= uv[0] <= camera.width - 1 and 0 <= uv[1] <= camera.height - 1 else None

    def _state_point(self, name: str, batch: FrameBatch, i: int) -> np.ndarray:
        keypoint = self.spec.keypoints[name]
        start, stop = keypoint.state
        return np.asarray(batch.state[i, start:stop], dtype=np.float64) + np.array(keypoint.offset)

    def _metric(self, view: str, batch: FrameBatch) -> bool:
        return self._camera(view) is not None and batch.depth is not None and view in batch.depth

    def _lift(self, view: str, uv: np.ndarray, batch: FrameBatch, i: int) -> np.ndarray:
        if not self._metric(view, batch) or not np.isfinite(uv).all():
            return np.full(3, np.nan)
        depth = depth_at(batch.depth[view][i], uv, self.config.depth_radius)
        if not np.isfinite(depth).all():
            return np.full(3, np.nan)
        return self._camera(view).unproject(uv, depth)[0]

    # -- thresholds ----------------------------------------------------------------------

    def _waypoints(self, space: str, first_3d: dict[str, np.ndarray], first: FrameBatch) -> WaypointTracker:
        spec = self.spec
        thresholds_m = np.array([w.threshold_m or spec.threshold_m for w in spec.waypoints])
        if space == SPACE_3D or self._metric(space, first):
            return WaypointTracker(spec.waypoints, thresholds_m, np.full(len(thresholds_m), spec.scale_m), spec.release)
        height, width = first.views[space].shape[1:3]
        diagonal = float(np.hypot(width, height))
        camera = self._camera(space)
        thresholds, scales = [], []
        for waypoint, metres in zip(spec.waypoints, thresholds_m):
            per_metre = None
            if camera is not None and np.isfinite(first_3d[waypoint.target]).all():
                (_,), (z,) = camera.project(first_3d[waypoint.target])
                per_metre = camera.intrinsics[1, 1] / z if z > 0 else None
            thresholds.append(waypoint.threshold_px or spec.threshold_px
                              or (metres * per_metre if per_metre else THRESHOLD_DIAGONAL * diagonal))
            scales.append(spec.scale_px or (spec.scale_m * per_metre if per_metre else SCALE_DIAGONAL * diagonal))
        return WaypointTracker(spec.waypoints, np.array(thresholds), np.array(scales), spec.release)

    # -- one frame -----------------------------------------------------------------------

    def step(self, batch: FrameBatch, i: int) -> _Step:
        """Track into sample ``i`` of ``batch`` and score it."""
        tracked = self._track(batch, i)
        state = {n: self._state_point(n, batch, i) for n in self.from_state if batch.state is not None}
        lifted = self._lifted(batch, i, tracked)
        per_view, success_view = {}, {}
        for view in self.views:
            if view not in batch.views or not batch.valid_mask(view)[i]:
                per_view[view] = np.nan
                continue
            positions = self._view_positions(view, batch, tracked[view], lifted[view], state)
            per_view[view], reached, _ = self.progress[view].update(positions)
            success_view[view] = float(reached)
        fused, reached_3d, carried = self.progress[SPACE_3D].update(self._fused_positions(tracked, lifted, state))
        for name in self.estimate:  # a carried point's position predicts where its depth will be read
            if self.unseen.get(name) and np.isfinite(carried[name]).all():
                self.estimate[name] = carried[name]
        valid = {view: np.isfinite([value]) for view, value in per_view.items()}
        finite = [v for v in per_view if valid[v][0]]
        if finite:
            values, spread = fuse_views({v: np.array([per_view[v]]) for v in per_view}, valid)
            uncertainty = float(spread[0])
        else:
            values, uncertainty = None, float(np.sqrt(UNINFORMED_VARIANCE))
        if np.isfinite(fused):
            progress, success = fused, float(reached_3d)
        elif values is not None:
            progress, success = float(values[0]), float(np.mean([success_view[v] for v in finite]))
        else:
            progress, success = self.last, 0.0
        self.last = progress
        return _Step(progress, success, uncertainty, per_view)

    def _track(self, batch: FrameBatch, i: int) -> dict[str, dict[str, tuple[np.ndarray, float]]]:
        """View → tracked keypoint → (pixel, confidence) in sample ``i``; a lost point's pixel is NaN."""
        out: dict[str, dict[str, tuple[np.ndarray, float]]] = {view: {} for view in self.views}
        for view, (names, tracker) in self.trackers.items():
            if view in batch.views and batch.valid_mask(view)[i]:
                points = tracker.update(batch.views[view][i])
                for k, name in enumerate(names):
                    uv = np.full(2, np.nan) if points.lost[k] else points.uv[k]
                    out[view][name] = (uv, float(points.confidence[k]))
        return out

    def _lifted(self, batch: FrameBatch, i: int, tracked: dict[str, dict[str, tuple[np.ndarray, float]]]
                ) -> dict[str, dict[str, np.ndarray]]:
        """View → tracked keypoint → 3D position lifted in that view (with its attachment offset),
        NaN where the view has no depth or its reading is not the point's: further than
        ``DEPTH_GATE_M`` per frame unseen from the point's last 3D position (an occluder in
        front, or the background behind a point that moved off its pixel)."""
        out: dict[str, dict[str, np.ndarray]] = {view: {} for view in self.views}
        for view in self.views:
            if not self._metric(view, batch):
                continue
            for name, (uv, _) in tracked[view].items():
                point = self._lift(view, uv, batch, i) + self.offsets[view][name]
                last = self.estimate.get(name)
                gate = DEPTH_GATE_M * (1 + self.unseen.get(name, 0))
                if last is not None and np.isfinite(last).all() and not np.linalg.norm(point - last) <= gate:
                    point = np.full(3, np.nan)
                out[view][name] = point
        return out

    def _view_positions(self, view: str, batch: FrameBatch, tracked: dict[str, tuple[np.ndarray, float]],
                        lifted: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Keypoint name → position in this view's space (metres if calibrated with depth, else pixels)."""
        metric, camera = self._metric(view, batch), self._camera(view)
        out = {}
        for name in self.spec.keypoints:
            if name in state and (metric or camera is not None):
                out[name] = state[name] if metric else camera.project(state[name])[0][0]
            elif name in tracked:
                out[name] = lifted[name] if metric else tracked[name][0]
            elif name in self.fixed_3d:
                pixel = self.fixed_px[view][name]
                out[name] = self.fixed_3d[name] if metric else (np.full(2, np.nan) if pixel is None else pixel)
            else:
                out[name] = np.full(3 if metric else 2, np.nan)
        return out

    def _fused_positions(self, tracked: dict[str, dict[str, tuple[np.ndarray, float]]],
                         lifted: dict[str, dict[str, np.ndarray]], state: dict[str, np.ndarray]
                         ) -> dict[str, np.ndarray]:
        """Keypoint name → 3D position: the state, the fixed position, or the views' lifts of a
        tracked point averaged by tracking confidence (which also becomes its last position);
        NaN where none."""
        out = {}
        for name in self.spec.keypoints:
            if name in state:
                out[name] = state[name]
            elif name in self.fixed_3d:
                out[name] = self.fixed_3d[name]
            else:
                views = [v for v in self.views if name in lifted[v]]
                lifts = np.array([lifted[v][name] for v in views]).reshape(-1, 1, 3)
                weights = np.array([max(tracked[v][name][1], 1e-6) for v in views]).reshape(-1, 1)
                out[name] = fuse_points(lifts, weights)[0] if views else np.full(3, np.nan)
                if np.isfinite(out[name]).all():
                    self.estimate[name], self.unseen[name] = out[name], 0
                else:
                    self.unseen[name] = self.unseen.get(name, 0) + 1
        return out
