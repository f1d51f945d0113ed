"""The keypoint spec of a task (KAGI: Lee, Xie, Fang, Pertsch, Finn 2024, "Affordance-Guided
Reinforcement Learning via Visual Prompting", arXiv 2407.10341): named keypoints, the
ordered waypoints between them, and the distance thresholds that say a waypoint is reached.

A person writes it as YAML or JSON (:func:`load_spec`); the simulators write one from
their ground truth (:mod:`robo_reward.envs.keypoints`); a VLM proposes one from marked
candidates (:mod:`robo_reward.models.keypoints.propose`). The ``keypoint`` reward model
(:mod:`robo_reward.models.keypoints.model`) reads it. Example (``docs/keypoints.md``
explains every field)::

    keypoints:
      gripper: {state: [0, 3], offset: [0, 0, -0.045], pixels: {corner: [64, 50]}}
      handle: {pixels: {corner: [54.8, 71.3], topview: [52.9, 38.3]}}
      goal: {world: [0.0, 0.55, 0.09], track: false}
    waypoints:
      - {mover: gripper, target: handle}
      - {mover: handle, target: goal, threshold_m: 0.05}
    cameras: {corner: {intrinsics: [[…]], extrinsics: [[…]], width: 128, height: 128}}

Pixels are positions in the episode's first set (OpenCV convention,
:mod:`robo_reward.geometry`); world positions are metres in the world frame at that set.
Every error names the file (or ``where``) and the field, e.g.
``spec.yaml: waypoints[1].mover: unknown keypoint 'hande' (keypoints: gripper, handle, goal)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from robo_reward.errors import InputError
from robo_reward.geometry import CameraInfo

SPEC_FIELDS = ("keypoints", "waypoints", "threshold_m", "threshold_px", "scale_m", "scale_px", "release",
               "cameras", "frame")
KEYPOINT_FIELDS = ("pixels", "world", "state", "offset", "track")
WAYPOINT_FIELDS = ("mover", "target", "threshold_m", "threshold_px")


@dataclass(frozen=True)
class Keypoint:
    """One named task keypoint (a grasp point, a target point, the end effector).

    Attributes:
        name: e.g. ``"gripper"``, ``"handle"``, ``"goal"``.
        pixels: view → (u, v) in the episode's first set.
        world: (x, y, z) metres in the first set, or None.
        state: ``(start, stop)``: columns of the frame batch's robot state holding its
            world position (proprioception, e.g. the end effector), read at every frame
            when the batch carries a state; None: not from the state.
        offset: (3,) metres added to the state position (e.g. hand body → fingertip centre).
        track: True: a point on something that moves, tracked through the frames;
            False: a fixed place (a target on the table, a point in free space).
    """

    name: str
    pixels: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    world: tuple[float, float, float] | None = None
    state: tuple[int, int] | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    track: bool = True

    @property
    def moves(self) -> bool:
        """Whether its position changes during the episode (tracked or read from the state)."""
        return self.track or self.state is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pixels:
            out["pixels"] = {view: list(uv) for view, uv in self.pixels.items()}
        if self.world is not None:
            out["world"] = list(self.world)
        if self.state is not None:
            out["state"] = list(self.state)
            if any(self.offset):
                out["offset"] = list(self.offset)
        if not self.track:
            out["track"] = False
        return out


@dataclass(frozen=True)
class Waypoint:
    """One step of the waypoint sequence: bring keypoint ``mover`` to keypoint ``target``.

    Attributes:
        mover: the keypoint that has to move (the gripper, then the grasped object's point).
        target: the keypoint it has to reach (a grasp point, a target place).
        threshold_m: reached within this distance in 3D, metres (None: the spec's).
        threshold_px: reached within this distance in an image, pixels (None: the spec's).
    """

    mover: str
    target: str
    threshold_m: float | None = None
    threshold_px: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mover": self.mover, "target": self.target}
        if self.threshold_m is not None:
            out["threshold_m"] = self.threshold_m
        if self.threshold_px is not None:
            out["threshold_px"] = self.threshold_px
        return out


@dataclass(frozen=True)
class KeypointSpec:
    """Keypoints, waypoints and thresholds of one task (see the module docstring).

    Attributes:
        keypoints: name → :class:`Keypoint`.
        waypoints: the ordered waypoints, at least one.
        threshold_m: default reach distance in 3D, metres.
        threshold_px: default reach distance in an image, pixels (None: 3 % of the
            image diagonal).
        scale_m: the distance, metres, at which a waypoint's closeness is ½.
        scale_px: the same in an image, pixels (None: 10 % of the image diagonal).
        release: a reached waypoint other than the last counts as undone only beyond
            ``release`` × its threshold (hysteresis; a grasp is let go), >= 1.
        cameras: view → calibration, to lift tracked pixels to 3D (with depth) and to
            draw world and state positions into the images.
        frame: the recording frame the pixels were marked on; when set, an episode that
            starts on another frame (a reversed pass) is refused rather than misread.
        source: where the spec came from (a file, ``ground truth``, ``vlm``), for messages.
    """

    keypoints: Mapping[str, Keypoint]
    waypoints: tuple[Waypoint, ...]
    threshold_m: float = 0.03
    threshold_px: float | None = None
    scale_m: float = 0.1
    scale_px: float | None = None
    release: float = 3.0
    cameras: Mapping[str, CameraInfo] = field(default_factory=dict)
    frame: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        where = self.source or "keypoint spec"
        if not self.keypoints:
            raise InputError(f"{where}: keypoints: give at least one keypoint")
        if not self.waypoints:
            raise InputError(f"{where}: waypoints: give at least one waypoint")
        names = ", ".join(self.keypoints)
        for i, waypoint in enumerate(self.waypoints):
            for role in ("mover", "target"):
                if getattr(waypoint, role) not in self.keypoints:
                    raise InputError(f"{where}: waypoints[{i}].{role}: unknown keypoint "
                                     f"'{getattr(waypoint, role)}' (keypoints: {names})")
            if waypoint.mover == waypoint.target:
                raise InputError(f"{where}: waypoints[{i}]: mover and target are both '{waypoint.mover}'")
            if not self.keypoints[waypoint.mover].moves:
                raise InputError(f"{where}: waypoints[{i}].mover: '{waypoint.mover}' is a fixed place (track: "
                                 "false); a mover must be tracked or read from the state")
        if self.release < 1:
            raise InputError(f"{where}: release: must be >= 1, got {self.release}")

    @property
    def views(self) -> list[str]:
        """The views any keypoint is marked in, in order of appearance."""
        return list(dict.fromkeys(view for kp in self.keypoints.values() for view in kp.pixels))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what :meth:`from_dict` reads)."""
        out: dict[str, Any] = {
            "keypoints": {name: kp.to_dict() for name, kp in self.keypoints.items()},
            "waypoints": [w.to_dict() for w in self.waypoints],
            "threshold_m": self.threshold_m, "scale_m": self.scale_m, "release": self.release,
        }
        if self.threshold_px is not None:
            out["threshold_px"] = self.threshold_px
        if self.scale_px is not None:
            out["scale_px"] = self.scale_px
        if self.cameras:
            out["cameras"] = {view: camera.to_dict() for view, camera in self.cameras.items()}
        if self.frame is not None:
            out["frame"] = self.frame
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "keypoint spec") -> KeypointSpec:
        """Read a spec from its dict form; an InputError names ``where`` and the bad field."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a keypoint spec is a mapping with keypoints and waypoints, "
                             f"got {type(data).__name__}")
        _known(data, SPEC_FIELDS, where, "")
        for required in ("keypoints", "waypoints"):
            if required not in data:
                raise InputError(f"{where}: {required}: missing")
        raw_keypoints = data["keypoints"]
        if not isinstance(raw_keypoints, Mapping) or not raw_keypoints:
            raise InputError(f"{where}: keypoints: expected a mapping name → keypoint, with at least one")
        keypoints = {str(name): _keypoint(str(name), value, where) for name, value in raw_keypoints.items()}
        raw_waypoints = data["waypoints"]
        if not isinstance(raw_waypoints, list) or not raw_waypoints:
            raise InputError(f"{where}: waypoints: expected a list of {{mover, target}}, with at least one")
        waypoints = tuple(_waypoint(value, where, f"waypoints[{i}]") for i, value in enumerate(raw_waypoints))
        cameras_raw = data.get("cameras") or {}
        if not isinstance(cameras_raw, Mapping):
            raise InputError(f"{where}: cameras: expected a mapping view → calibration")
        cameras = {str(view): CameraInfo.from_dict(value, f"{where}: cameras.{view}")
                   for view, value in cameras_raw.items()}
        frame = data.get("frame")
        if frame is not None and (not isinstance(frame, int) or isinstance(frame, bool) or frame < 0):
            raise InputError(f"{where}: frame: expected a frame index >= 0, got {frame!r}")
        return cls(
            keypoints=keypoints, waypoints=waypoints,
            threshold_m=_positive(data, "threshold_m", where, "", 0.03),
            threshold_px=_positive(data, "threshold_px", where, "", None),
            scale_m=_positive(data, "scale_m", where, "", 0.1),
            scale_px=_positive(data, "scale_px", where, "", None),
            release=_positive(data, "release", where, "", 3.0),
            cameras=cameras, frame=frame, source=where,
        )


def load_spec(path: str | Path) -> KeypointSpec:
    """Read a keypoint spec from a YAML or JSON file; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"keypoint spec not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not readable as YAML or JSON ({exc})") from exc
    return KeypointSpec.from_dict(data, str(path))


def _known(data: Mapping, fields: tuple[str, ...], where: str, prefix: str) -> None:
    for key in data:
        if key not in fields:
            raise InputError(f"{where}: {prefix}{key}: unknown field (fields: {', '.join(fields)})")


def _numbers(value: Any, count: int, where: str, name: str) -> tuple[float, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) != count
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise InputError(f"{where}: {name}: expected {count} finite numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _positive(data: Mapping, key: str, where: str, prefix: str, default: float | None) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: {prefix}{key}: expected a number > 0, got {value!r}")
    return float(value)


def _keypoint(name: str, data: Any, where: str) -> Keypoint:
    prefix = f"keypoints.{name}"
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: {prefix}: expected a mapping with pixels, world or state")
    _known(data, KEYPOINT_FIELDS, where, prefix + ".")
    pixels_raw = data.get("pixels") or {}
    if not isinstance(pixels_raw, Mapping):
        raise InputError(f"{where}: {prefix}.pixels: expected a mapping view → [u, v]")
    pixels = {str(view): _numbers(uv, 2, where, f"{prefix}.pixels.{view}") for view, uv in pixels_raw.items()}
    world = None if data.get("world") is None else _numbers(data["world"], 3, where, f"{prefix}.world")
    state = None
    if data.get("state") is not None:
        columns = data["state"]
        if (not isinstance(columns, (list, tuple)) or len(columns) != 2
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in columns)
                or not 0 <= columns[0] or columns[1] - columns[0] != 3):
            raise InputError(f"{where}: {prefix}.state: expected [start, stop], the 3 state columns of its "
                             f"world position (e.g. [0, 3]), got {columns!r}")
        state = (int(columns[0]), int(columns[1]))
    offset = (0.0, 0.0, 0.0)
    if data.get("offset") is not None:
        if state is None:
            raise InputError(f"{where}: {prefix}.offset: only applies to a keypoint read from the state")
        offset = _numbers(data["offset"], 3, where, f"{prefix}.offset")
    track = data.get("track", True)
    if not isinstance(track, bool):
        raise InputError(f"{where}: {prefix}.track: expected true or false, got {track!r}")
    if not track and state is not None:
        raise InputError(f"{where}: {prefix}.track: a keypoint read from the state moves; drop track: false")
    if not pixels and world is None and state is None:
        raise InputError(f"{where}: {prefix}: give its pixels, world position or state columns")
    return Keypoint(name, pixels, world, state, offset, track)


def _waypoint(data: Any, where: str, prefix: str) -> Waypoint:
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: {prefix}: expected a mapping {{mover, target}}")
    _known(data, WAYPOINT_FIELDS, where, prefix + ".")
    names = {}
    for role in ("mover", "target"):
        value = data.get(role)
        if not isinstance(value, str) or not value:
            raise InputError(f"{where}: {prefix}.{role}: expected a keypoint name, got {value!r}")
        names[role] = value
    return Waypoint(names["mover"], names["target"], _positive(data, "threshold_m", where, prefix + ".", None),
                    _positive(data, "threshold_px", where, prefix + ".", None))
