"""Meta-World v3 tasks (MuJoCo) rendered from N named cameras.

>>> env = make_metaworld_env("drawer-open-v3", cameras=("corner", "topview"), image_size=(96, 96))
>>> obs, info = env.reset(seed=0)       # seed → object and goal positions
>>> obs["views"]["corner"].shape        # (96, 96, 3) uint8
>>> policy = expert_policy("drawer-open-v3")
>>> obs, reward, terminated, truncated, info = env.step(policy.get_action(obs["state"]))
>>> info["success"]                     # 1.0 once the drawer is open

This module holds the envs: :func:`metaworld_task_env` (state only),
:class:`MujocoCameraRig` and :func:`make_metaworld_env`. Beside it: the task catalogue
(:mod:`~robo_reward.envs.metaworld_tasks`: :data:`TASKS`, :data:`INSTRUCTIONS`,
:func:`check_task`), the scripted experts (:mod:`~robo_reward.envs.metaworld_experts`:
:func:`expert_policy`, :class:`ScriptedPolicy`, the expert stopped part-way or perturbed,
and :func:`scripted_rollout`) and the seed search for datasets
(:mod:`~robo_reward.envs.metaworld_search`: :func:`find_scripted_episode` picks a seed
whose episode comes out as success, partial or failure). Their names are importable from
here too.

Cameras are the seven of Meta-World's scene (``corner``, ``corner2``, ``corner3``,
``corner4``, ``topview``, ``behindGripper``, ``gripperPOV``). Meta-World's corner cameras
are defined with their image "up" pointing at the floor; every camera whose up vector
points downward in the initial state is turned 180° about its optical axis once, at
construction, so all views come out upright; its extrinsics describe the turned image.

Rendering uses ``mujoco.Renderer`` offscreen. ``MUJOCO_GL`` is chosen by
:func:`robo_reward.envs.cameras.choose_mujoco_gl` (``egl`` with a GPU, else ``osmesa``)
unless already set, and must be set before ``mujoco`` is first imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from robo_reward.envs.action_repeat import ActionRepeat
from robo_reward.envs.cameras import (
    OPENGL_TO_OPENCV,
    CameraInfo,
    MultiCameraWrapper,
    check_names,
    choose_mujoco_gl,
    intrinsics_from_fovy,
    parse_image_size,
)
from robo_reward.envs.metaworld_experts import (
    SCRIPTED_KINDS,
    ScriptedPolicy,
    Transition,
    expert_policy,
    scripted_rollout,
)
from robo_reward.envs.metaworld_search import ScriptedEpisode, find_scripted_episode
from robo_reward.envs.metaworld_tasks import INSTRUCTIONS, TASKS, check_task
from robo_reward.errors import ConfigError, require

choose_mujoco_gl()
mujoco = require("mujoco", "sim", "MuJoCo rendering")
_env_dict = require("metaworld.env_dict", "sim", "Meta-World tasks")

_FLIP_180 = np.diag([-1.0, -1.0, 1.0])  # rotation by 180° about the optical (z) axis


class SeededMetaWorld(gym.Wrapper):
    """Gymnasium seeding for a Meta-World env: ``reset(seed=s)`` re-seeds its generator.

    Meta-World's own ``reset`` ignores ``seed``; here the seed fixes the random object and
    goal positions of that episode (and of the unseeded resets that follow).

    Meta-World's tasks move their objects by editing the model (``body_pos``) after its
    last ``mj_forward``, so the first observation and the first rendered frame of an
    episode showed the objects where the previous episode left them (the drawer-open
    handle 9 cm off). Here the kinematics are recomputed and the first observation is
    taken again, as Meta-World builds it (the current state twice, then the goal).
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        env = self.env.unwrapped
        if seed is not None:
            env.seed(seed)
        _, info = self.env.reset(options=options)
        mujoco.mj_forward(env.model, env.data)
        env._prev_obs = env._get_curr_obs_combined_no_goal()
        return env._get_obs().astype(np.float64), info


def metaworld_task_env(task: str, goal_observable: bool = True, max_path_length: int = 500) -> gym.Env:
    """One Meta-World v3 task with random object/goal positions per reset, no cameras.

    Args:
        task: a name from :data:`TASKS`, e.g. ``"drawer-open-v3"``.
        goal_observable: include the goal position in the 39-dim state (as in MT1);
            ``False`` zeroes it (as in ML1).
        max_path_length: steps per episode; the step that reaches it returns
            ``truncated=True`` (Meta-World never returns ``terminated=True``).

    Returns:
        the env; its observation is Meta-World's (39,) float64 state, its action (4,)
        float32 in [-1, 1] (end-effector xyz delta, gripper effort).
    """
    check_task(task)
    if max_path_length < 1:
        raise ConfigError(f"max_path_length must be >= 1, got {max_path_length}")
    env = _env_dict.ALL_V3_ENVIRONMENTS[task]()
    # What Meta-World's own goal-observable constructor sets, with the positions drawn
    # from the env's seeded generator instead of NumPy's global one.
    env._partially_observable = not goal_observable
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    env._set_task_called = True
    env.max_path_length = max_path_length
    env.__dict__.pop("sawyer_observation_space", None)  # cached; depends on observability
    env.observation_space = env.sawyer_observation_space
    return SeededMetaWorld(env)


class MujocoCameraRig:
    """Renders named cameras of a MuJoCo model with one offscreen ``mujoco.Renderer``.

    Args:
        model: the ``mujoco.MjModel``.
        data: its ``mujoco.MjData`` (read, never stepped).
        names: camera names defined in the model.
        height: image height in pixels.
        width: image width in pixels.
        shadows: render shadows and reflections (off: about half the time in software GL).
    """

    def __init__(self, model: Any, data: Any, names: Sequence[str], height: int, width: int,
                 shadows: bool = True) -> None:
        valid = [model.camera(i).name for i in range(model.ncam)]
        self.names = check_names("camera", names, valid, "this MuJoCo scene")
        self.height, self.width = height, width
        self._model, self._data = model, data
        self._effects_off = () if shadows else (
            mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX)
        self._ids = {name: model.camera(name).id for name in self.names}
        # camera y axis is image-up in MuJoCo; pointing at the floor means upside down
        self._flipped = {name: bool(data.cam_xmat[i].reshape(3, 3)[2, 1] < 0) for name, i in self._ids.items()}
        visual = model.vis.global_
        visual.offwidth, visual.offheight = max(visual.offwidth, width), max(visual.offheight, height)
        # a shadow map far finer than the image costs time (software GL) and shows nothing
        model.vis.quality.shadowsize = min(model.vis.quality.shadowsize, 8 * max(height, width))
        try:
            self._renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:  # GL context creation fails in many library-specific ways
            raise ConfigError(
                f"cannot create a MuJoCo offscreen renderer ({exc}). MuJoCo reads MUJOCO_GL "
                f"(now {choose_mujoco_gl()!r}) when it is first imported: run with MUJOCO_GL=egl (GPU) or "
                "MUJOCO_GL=osmesa (CPU, apt install libosmesa6), or import robo_reward.envs before mujoco."
            ) from exc

    def render(self, name: str) -> np.ndarray:
        """uint8 RGB (height, width, 3) view of camera ``name``, upright."""
        self._renderer.update_scene(self._data, camera=self._ids[name])
        for flag in self._effects_off:
            self._renderer.scene.flags[flag] = False
        image = self._renderer.render()
        return np.ascontiguousarray(image[::-1, ::-1]) if self._flipped[name] else image

    def info(self, name: str) -> CameraInfo:
        """Calibration of camera ``name`` at the current state (``data.cam_xpos``/``cam_xmat``)."""
        index = self._ids[name]
        rotation = self._data.cam_xmat[index].reshape(3, 3) @ OPENGL_TO_OPENCV
        if self._flipped[name]:
            rotation = rotation @ _FLIP_180
        extrinsics = np.eye(4)
        extrinsics[:3, :3] = rotation
        extrinsics[:3, 3] = self._data.cam_xpos[index]
        intrinsics = intrinsics_from_fovy(float(self._model.cam_fovy[index]), self.width, self.height)
        return CameraInfo(intrinsics, extrinsics, self.width, self.height)

    def close(self) -> None:
        self._renderer.close()


def make_metaworld_env(
    task: str = "drawer-open-v3",
    cameras: Sequence[str] = ("corner", "topview"),
    image_size: int | Sequence[int] = (96, 96),
    goal_observable: bool = True,
    max_path_length: int = 500,
    shadows: bool = True,
    action_repeat: int = 1,
) -> MultiCameraWrapper:
    """A Meta-World v3 task whose observations carry camera views.

    Also made by ``gymnasium.make("robo_reward/MetaWorld-v0", task=..., cameras=...,
    image_size=...)`` after ``import robo_reward.envs``.

    Args:
        task: a name from :data:`TASKS`, e.g. ``"drawer-open-v3"``.
        cameras: camera names, in the order of ``obs["views"]``.
        image_size: (height, width) in pixels, or one int for square images.
        goal_observable: see :func:`metaworld_task_env`.
        max_path_length: see :func:`metaworld_task_env`.
        shadows: render shadows and reflections (off: faster in software GL).
        action_repeat: simulator steps per agent step (:class:`ActionRepeat`, inside the
            camera wrapper: views are rendered once per agent step). ``max_path_length``
            counts simulator steps.

    Returns:
        a :class:`MultiCameraWrapper`; ``obs["state"]`` is the (39,) float64 state,
        ``info["success"]`` is 1.0 once the task is done.
    """
    check_task(task)
    height, width = parse_image_size(image_size)
    if isinstance(cameras, str):
        cameras = (cameras,)
    env = metaworld_task_env(task, goal_observable, max_path_length)
    if action_repeat != 1:
        env = ActionRepeat(env, action_repeat)
    try:
        rig = MujocoCameraRig(env.unwrapped.model, env.unwrapped.data, cameras, height, width, shadows)
    except Exception:
        env.close()
        raise
    return MultiCameraWrapper(env, rig)



__all__ = [
    "INSTRUCTIONS", "SCRIPTED_KINDS", "TASKS", "MujocoCameraRig", "ScriptedEpisode", "ScriptedPolicy",
    "SeededMetaWorld", "Transition", "check_task", "expert_policy", "find_scripted_episode",
    "make_metaworld_env", "metaworld_task_env", "scripted_rollout",
]
