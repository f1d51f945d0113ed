"""Ground-truth task keypoints from the simulators, projected into each camera (for
evaluating the ``keypoint`` reward and its tracking, never for training).

* Meta-World v3: the end effector is ``tcp_center`` (the centre of the two fingertip
  sites), the object ``_get_pos_objects()[:3]`` (the task's first object: the puck, the
  drawer handle, the button), the goal ``_target_pos``. The state's first three columns
  hold the hand body's position (``get_endeff_pos``), a nearly constant offset above the
  fingertips, which :func:`ground_truth_spec` records as the keypoint's ``offset``.
* panda-gym: the end effector ``robot.get_ee_position()``, the object the body named
  ``object`` (none in Reach), the goal ``task.goal``.

A point tracker follows what a pixel shows, and an object's centre is inside it: on MuJoCo
the object keypoint's pixels are therefore drawn on the object's visible surface — the
pixel nearest its projection (within :data:`SNAP_RADIUS_PX`, inside the body's mask where
possible) that the segmentation shows as the object's body, as ReKep proposes keypoints on
ground-truth masks in simulation — and left out of a view that does not show it. The point
tracked there is attached to the body (:class:`SurfaceAnchor`), which gives the tracking
error its ground truth. The end effector's centre lies between its two finger pads: its
pixel is drawn on whichever pad the view shows nearest the centre's projection (the pads
are equally far from the centre in 3D, so picking one there flips with the noise).

>>> env = make_metaworld_env("drawer-open-v3", cameras=("corner", "topview"), image_size=128)
>>> obs, _ = env.reset(seed=0)
>>> spec = ground_truth_spec(env, "drawer-open-v3")     # pixels at this state, world, cameras
>>> Task(INSTRUCTIONS["drawer-open-v3"], keypoints=spec)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.geometry import CameraInfo, depth_at
from robo_reward.keypoint_spec import Keypoint, KeypointSpec, Waypoint
from robo_reward.types import EPISODE_TASK, Task

#: Meta-World's own success distances (each task's ``evaluate_state``), metres, for the
#: object → goal waypoint; tasks not listed use :data:`DEFAULT_GOAL_THRESHOLD_M`.
METAWORLD_SUCCESS_M: dict[str, float] = {
    "pick-place-v3": 0.07, "push-v3": 0.05, "drawer-open-v3": 0.03, "button-press-topdown-v3": 0.024,
    "plate-slide-v3": 0.07, "coffee-push-v3": 0.07, "reach-v3": 0.05,
}
DEFAULT_GOAL_THRESHOLD_M = 0.05
#: Meta-World tasks with no object to move: the waypoints are gripper → goal.
REACH_TASKS = ("reach-v3", "reach-wall-v3")
#: An object keypoint is drawn on the object's visible surface at most this far from its projection, pixels.
SNAP_RADIUS_PX = 6.0


def world_keypoints(env: gym.Env) -> dict[str, np.ndarray]:
    """Name → (3,) world position, metres, of the env's end effector (``gripper``), object
    (``object``, where the task has one) and goal (``goal``) at the current state."""
    base = env.unwrapped
    if hasattr(base, "tcp_center"):
        return {"gripper": np.array(base.tcp_center, dtype=np.float64),
                "object": np.array(base._get_pos_objects()[:3], dtype=np.float64),
                "goal": np.array(base._target_pos, dtype=np.float64)}
    if hasattr(base, "robot") and hasattr(base, "task"):
        points = {"gripper": np.array(base.robot.get_ee_position(), dtype=np.float64)}
        if "object" in base.sim._bodies_idx:
            points["object"] = np.array(base.sim.get_base_position("object"), dtype=np.float64)
        points["goal"] = np.array(base.task.goal, dtype=np.float64)
        return points
    raise ConfigError(f"no ground-truth keypoints for {type(base).__name__} (Meta-World and panda-gym only)")


def camera_infos(env: gym.Env, views: Sequence[str] | None = None) -> dict[str, CameraInfo]:
    """View → calibration at the current state, of ``views`` (default: every camera)."""
    names = env.get_wrapper_attr("camera_names") if views is None else tuple(views)
    info = env.get_wrapper_attr("camera_info")
    return {name: info(name) for name in names}


def project_keypoints(points: Mapping[str, np.ndarray], cameras: Mapping[str, CameraInfo]
                      ) -> dict[str, dict[str, tuple[float, float]]]:
    """Name → view → (u, v) of every point in front of a camera and inside its image."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, point in points.items():
        out[name] = {}
        for view, camera in cameras.items():
            (uv,), (depth,) = camera.project(point)
            if depth > 0 and 0 <= uv[0] <= camera.width - 1 and 0 <= uv[1] <= camera.height - 1:
                out[name][view] = (float(uv[0]), float(uv[1]))
    return out


def state_columns(env: gym.Env) -> tuple[tuple[int, int], np.ndarray] | None:
    """The state columns of the end effector's position and the offset from them to the
    ``gripper`` keypoint (metres), at the current state; None when the env has no such state.

    Meta-World: columns 0–3 (the hand body; offset to the fingertip centre). panda-gym: the
    dict observation flattened in sorted key order (``achieved_goal``, ``desired_goal``,
    ``observation``, as :func:`robo_reward.scoring.state_vector` does), the
    ``observation``'s first three columns (the end effector itself; offset 0).
    """
    base = env.unwrapped
    if hasattr(base, "tcp_center"):
        return (0, 3), np.array(base.tcp_center) - np.array(base.get_endeff_pos())
    if hasattr(base, "robot") and hasattr(base, "task"):
        start = len(base.task.get_achieved_goal()) + len(base.task.get_goal())
        return (start, start + 3), np.zeros(3)
    return None


def ground_truth_spec(env: gym.Env, task: str = "", views: Sequence[str] | None = None,
                      proprioception: bool = True) -> KeypointSpec:
    """The ground-truth keypoint spec of the env's current state (call it on an episode's
    first observation): :func:`spec_from_points` of its keypoints and cameras, the object's
    pixels on its visible surface (MuJoCo), the end effector's state columns when
    ``proprioception``."""
    points, cameras = world_keypoints(env), camera_infos(env, views)
    return spec_from_points(points, cameras, task, state_columns(env) if proprioception else None,
                            pixels=surface_pixels(env, points, cameras))


def keypoint_bodies(env: gym.Env) -> dict[str, tuple[int, ...]]:
    """Keypoint name → MuJoCo body ids of the keypoints on bodies, by their rendered geoms
    (group 0–2, not transparent) nearest the keypoint: the object's body, and the gripper's
    two below the hand body (its finger pads, either side of the fingertip centre; never the
    object it holds); empty for other simulators."""
    import mujoco

    base = env.unwrapped
    if not (hasattr(base, "model") and hasattr(base, "data")):
        return {}
    model = base.model
    rendered = np.flatnonzero((model.geom_group < 3) & (model.geom_rgba[:, 3] > 0))
    hand = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "hand")
    out = {}
    for name, point in world_keypoints(env).items():
        if name == "goal":
            continue
        geoms = rendered
        if name == "gripper" and hand >= 0:
            geoms = rendered[[_below(model, int(b), hand) for b in model.geom_bodyid[rendered]]]
        nearest = geoms[np.argsort(np.linalg.norm(base.data.geom_xpos[geoms] - point, axis=1))]
        bodies = list(dict.fromkeys(int(b) for b in model.geom_bodyid[nearest]))
        out[name] = tuple(bodies[:2 if name == "gripper" else 1])
    return out


def _below(model, body: int, ancestor: int) -> bool:
    """Whether MuJoCo ``body`` is ``ancestor`` or in its subtree."""
    while body != ancestor and body != 0:
        body = int(model.body_parentid[body])
    return body == ancestor


def surface_pixels(env: gym.Env, points: Mapping[str, np.ndarray], cameras: Mapping[str, CameraInfo]
                   ) -> dict[str, dict[str, tuple[float, float]]]:
    """Name → view → pixel of every keypoint: its projection, or for a keypoint on MuJoCo bodies
    (:func:`keypoint_bodies`) the nearest pixel within :data:`SNAP_RADIUS_PX` that shows one of
    them (preferring pixels whose 3×3 neighbourhood all does), none in a view where they show none."""
    from robo_reward.envs.depth import MujocoBuffers

    pixels = project_keypoints(points, cameras)
    bodies = keypoint_bodies(env)
    if not bodies:
        return pixels
    segmentation = MujocoBuffers(env, env.get_wrapper_attr("rig"), segmentation=True)
    try:
        labels = {view: segmentation.render(view) for view in cameras}
    finally:
        segmentation.close()
    geom_body = np.append(env.unwrapped.model.geom_bodyid, -1)  # index -1: no geom
    for name, ids in bodies.items():
        for view in list(pixels[name]):
            snapped = _nearest_on(np.isin(geom_body[labels[view]], ids), np.array(pixels[name][view]))
            if snapped is None:
                del pixels[name][view]
            else:
                pixels[name][view] = snapped
    return pixels


def _nearest_on(mask: np.ndarray, uv: np.ndarray) -> tuple[float, float] | None:
    """The pixel of ``mask`` (H, W) nearest ``uv`` within SNAP_RADIUS_PX, an interior one if any."""
    padded = np.pad(mask, 1)
    interior = np.ones_like(mask)
    for dv in (0, 1, 2):
        for du in (0, 1, 2):
            interior &= padded[dv:dv + mask.shape[0], du:du + mask.shape[1]]
    for region in (interior, mask):
        rows, cols = np.nonzero(region)
        if len(rows):
            distance = np.hypot(cols - uv[0], rows - uv[1])
            best = int(np.argmin(distance))
            if distance[best] <= SNAP_RADIUS_PX:
                return float(cols[best]), float(rows[best])
    return None


@dataclass(frozen=True)
class SurfaceAnchor:
    """A point attached to a MuJoCo body: ``local`` (3,) metres in the body's frame."""

    body: int
    local: np.ndarray

    def world(self, env: gym.Env) -> np.ndarray:
        """(3,) world position at the env's current state."""
        data = env.unwrapped.data
        return data.xpos[self.body] + data.xmat[self.body].reshape(3, 3) @ self.local


def surface_anchor(env: gym.Env, body: int, camera: CameraInfo, uv: Sequence[float], depth: np.ndarray
                   ) -> SurfaceAnchor | None:
    """The point of ``body`` a camera sees at pixel ``uv`` with its depth image (H, W) metres,
    attached to the body; None where the depth is unknown."""
    z = depth_at(depth, np.array(uv), 0)
    if not np.isfinite(z).all():
        return None
    surface = camera.unproject(np.array(uv), z)[0]
    data = env.unwrapped.data
    return SurfaceAnchor(body, data.xmat[body].reshape(3, 3).T @ (surface - data.xpos[body]))


def spec_from_points(points: Mapping[str, np.ndarray], cameras: Mapping[str, CameraInfo], task: str = "",
                     state: tuple[tuple[int, int], np.ndarray] | None = None,
                     pixels: Mapping[str, Mapping[str, tuple[float, float]]] | None = None) -> KeypointSpec:
    """The ground-truth spec of one state: its keypoints' world positions (``gripper``,
    ``object``, ``goal``, as :func:`world_keypoints` gives them) and the cameras.

    Keypoints: ``gripper`` (read from the ``state`` columns with their offset when given,
    else tracked from its projection), ``object`` (tracked; none in reach tasks), ``goal``
    (a fixed place); each with its world position and its pixels in every camera it
    projects into (or ``pixels``, e.g. :func:`surface_pixels`). Waypoints: gripper → object
    (3 cm), then object → goal within the task's own success distance
    (:data:`METAWORLD_SUCCESS_M`; reach tasks: gripper → goal).
    """
    pixels = project_keypoints(points, cameras) if pixels is None else pixels
    keypoints = {}
    for name, point in points.items():
        if name == "gripper" and state is not None:
            keypoints[name] = Keypoint(name, pixels[name], tuple(point), state[0], tuple(state[1]))
        else:
            keypoints[name] = Keypoint(name, pixels[name], tuple(point), track=name != "goal")
    goal_threshold = METAWORLD_SUCCESS_M.get(task, DEFAULT_GOAL_THRESHOLD_M)
    if "object" not in points or task in REACH_TASKS:
        keypoints.pop("object", None)
        waypoints: tuple[Waypoint, ...] = (Waypoint("gripper", "goal", threshold_m=goal_threshold),)
    else:
        waypoints = (Waypoint("gripper", "object", threshold_m=0.03),
                     Waypoint("object", "goal", threshold_m=goal_threshold))
    return KeypointSpec(keypoints, waypoints, cameras=dict(cameras), source=f"ground truth of {task or 'the env'}")


class GroundTruthKeypoints(gym.Wrapper):
    """Give each episode its ground-truth keypoints: after every ``reset``,
    ``info["task"]`` is ``Task(instruction, keypoints=ground_truth_spec(env, task, views))``
    of the episode's first state (objects move between episodes), which
    :class:`~robo_reward.envs.reward_wrapper.RewardModelWrapper` and
    :class:`~robo_reward.rl.vec_reward.VecRewardModel` score the episode with. It stands in
    for a perfect proposer (a person or a VLM marking each episode's first frame); the
    tracking that follows is the model's own. ``episode_task`` is the current episode's
    task, for loops that do not see the reset info (the demo recipe's rollouts).

    Args:
        env: a Meta-World or panda-gym camera env.
        instruction: the task in words.
        task: the simulator task's name (its success distance, e.g. ``drawer-open-v3``).
        views: the views to calibrate (default: every camera).
    """

    def __init__(self, env: gym.Env, instruction: str, task: str = "", views: Sequence[str] | None = None) -> None:
        super().__init__(env)
        self.instruction, self.task_name, self.views = instruction, task, views
        self.episode_task: Task | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[object, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.episode_task = Task(self.instruction, keypoints=ground_truth_spec(self.env, self.task_name, self.views))
        return obs, {**info, EPISODE_TASK: self.episode_task}
