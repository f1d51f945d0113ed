"""Meta-World v3 tasks (MuJoCo) rendered from N named cameras.

>>> env = make_metaworld_env("drawer-open-v3", cameras=("corner", "topview"), image_size=(96, 96))
>>> obs, info = env.reset(seed=0)       # seed → object and goal positions
>>> obs["views"]["corner"].shape        # (96, 96, 3) uint8
>>> policy = expert_policy("drawer-open-v3")
>>> obs, reward, terminated, truncated, info = env.step(policy.get_action(obs["state"]))
>>> info["success"]                     # 1.0 once the drawer is open

Scripted episodes for datasets: :class:`ScriptedPolicy` (the expert, stopped part-way or
perturbed), :func:`scripted_rollout` and :func:`find_scripted_episode` (pick a seed whose
episode comes out as success, partial or failure).

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

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robo_reward.envs.cameras import (
    OPENGL_TO_OPENCV,
    CameraInfo,
    MultiCameraWrapper,
    check_names,
    choose_mujoco_gl,
    intrinsics_from_fovy,
    parse_image_size,
)
from robo_reward.errors import ConfigError, require

choose_mujoco_gl()
mujoco = require("mujoco", "sim", "MuJoCo rendering")
_env_dict = require("metaworld.env_dict", "sim", "Meta-World tasks")
_policies = require("metaworld.policies", "sim", "Meta-World expert policies")

#: The 50 Meta-World v3 task names, e.g. ``"drawer-open-v3"``.
TASKS: tuple[str, ...] = tuple(sorted(_env_dict.ALL_V3_ENVIRONMENTS))

_FLIP_180 = np.diag([-1.0, -1.0, 1.0])  # rotation by 180° about the optical (z) axis

#: Task → instruction in words, after the task descriptions of the Meta-World paper.
INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "put the nut on the peg",
    "basketball-v3": "dunk the basketball into the basket",
    "bin-picking-v3": "move the cube from one bin to the other",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button behind the wall from the top",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug out of the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "take the nut off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-close-v3": "turn the faucet off",
    "faucet-open-v3": "turn the faucet on",
    "hammer-v3": "hammer the nail into the wall",
    "hand-insert-v3": "put the gripper into the hole",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "peg-insert-side-v3": "insert the peg into the hole from the side",
    "peg-unplug-side-v3": "unplug the peg from the side",
    "pick-out-of-hole-v3": "pick the peg out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "pick-place-wall-v3": "pick up the puck and place it at the goal behind the wall",
    "plate-slide-back-side-v3": "slide the plate out of the cabinet from the side",
    "plate-slide-back-v3": "slide the plate out of the cabinet",
    "plate-slide-side-v3": "slide the plate into the cabinet from the side",
    "plate-slide-v3": "slide the plate into the cabinet",
    "push-back-v3": "push the puck back to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck past the wall to the goal",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach the goal position behind the wall",
    "shelf-place-v3": "pick up the puck and place it on the shelf",
    "soccer-v3": "kick the ball into the goal",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "stick-push-v3": "grasp the stick and push the box with it",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-close-v3": "close the window",
    "window-open-v3": "open the window",
}


def check_task(task: str) -> str:
    """Return ``task`` if it is a Meta-World v3 task name, else raise :class:`ConfigError`."""
    return check_names("task", (task,), TASKS, "Meta-World v3")[0]


class SeededMetaWorld(gym.Wrapper):
    """Gymnasium seeding for a Meta-World env: ``reset(seed=s)`` re-seeds its generator.

    Meta-World's own ``reset`` ignores ``seed``; here the seed fixes the random object and
    goal positions of that episode (and of the unseeded resets that follow).
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self.env.unwrapped.seed(seed)
        return self.env.reset(options=options)


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


def expert_policy(task: str) -> Any:
    """Meta-World's scripted expert for ``task``: ``policy.get_action(state) -> (4,) action``."""
    return _policies.ENV_POLICY_MAP[check_task(task)]()


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

    Returns:
        a :class:`MultiCameraWrapper`; ``obs["state"]`` is the (39,) float64 state,
        ``info["success"]`` is 1.0 once the task is done.
    """
    check_task(task)
    height, width = parse_image_size(image_size)
    if isinstance(cameras, str):
        cameras = (cameras,)
    env = metaworld_task_env(task, goal_observable, max_path_length)
    try:
        rig = MujocoCameraRig(env.unwrapped.model, env.unwrapped.data, cameras, height, width, shadows)
    except Exception:
        env.close()
        raise
    return MultiCameraWrapper(env, rig)


# --- scripted episodes: the expert, stopped part-way or perturbed -----------------------------

#: How :class:`ScriptedPolicy` makes actions, and the outcome each kind is meant to produce.
SCRIPTED_KINDS = {
    "expert": "success",
    "stop_step": "partial",
    "stop_progress": "partial",
    "beside": "failure",
    "noise": "failure",
}


class ScriptedPolicy:
    """Meta-World's scripted expert for a task, optionally stopped part-way or perturbed.

    ``spec["kind"]`` (see :data:`SCRIPTED_KINDS`):

    * ``expert`` — the expert as is;
    * ``stop_step`` — holds still after ``spec["stop_step"]`` steps;
    * ``stop_progress`` — holds still once the object has covered ``spec["fraction"]`` of
      its initial distance to the goal (it may coast a little further);
    * ``beside`` — the expert aims ``spec["offset"]`` metres beside the object and the
      goal along x (it sees both shifted);
    * ``noise`` — Gaussian noise of std ``spec["sigma"]`` (drawn from
      ``spec["noise_seed"]``) added to the expert's actions, clipped to [-1, 1].

    Holding still keeps the expert's last gripper effort. One instance drives one episode.

    Args:
        task: Meta-World v3 task name.
        spec: the kind and its parameters (JSON-serialisable, stored with recordings).
    """

    def __init__(self, task: str, spec: dict[str, Any]) -> None:
        if spec.get("kind") not in SCRIPTED_KINDS:
            raise ConfigError(f"scripted kind must be one of {', '.join(SCRIPTED_KINDS)}, got {spec.get('kind')!r}")
        self.expert = expert_policy(task)
        self.spec = dict(spec)
        self.rng = np.random.default_rng(spec.get("noise_seed", 0))
        self.steps = 0
        self.holding = False
        self.last = np.zeros(4, dtype=np.float32)

    def __call__(self, state: np.ndarray, progress: float) -> np.ndarray:
        """The next (4,) float32 action from the (39,) ``state``; ``progress`` is the object's
        progress toward the goal so far (see :func:`scripted_rollout`)."""
        kind = self.spec["kind"]
        self.steps += 1
        if kind == "stop_step" and self.steps > self.spec["stop_step"]:
            self.holding = True
        if kind == "stop_progress" and progress >= self.spec["fraction"]:
            self.holding = True
        if self.holding:
            return np.array([0.0, 0.0, 0.0, self.last[3]], dtype=np.float32)
        if kind == "beside":
            state = state.copy()
            state[[4, -3]] += self.spec["offset"]  # first object's x, goal's x
        action = np.asarray(self.expert.get_action(state), dtype=np.float32)
        if kind == "noise":
            action = np.clip(action + self.rng.normal(0.0, self.spec["sigma"], 4), -1.0, 1.0).astype(np.float32)
        self.last = action
        return action


@dataclass
class Transition:
    """One env step of a scripted rollout.

    Attributes:
        obs: the observation the action was chosen from (the env's, e.g. a state array or
            ``{"state", "views"}`` dict).
        action: (4,) float32 action taken.
        reward: Meta-World's reward for the step.
        success: whether ``info["success"]`` is true after the step.
        progress: the object's progress toward the goal after the step,
            1 − distance / distance after the first step (0 closed … ≈0.93 at success
            for drawer-open); NaN for tasks whose ``info["obj_to_target"]`` is always 0
            (assembly, box-close, disassemble, door-open, hammer).
        next_obs: the observation after the step.
    """

    obs: Any
    action: np.ndarray
    reward: float
    success: bool
    progress: float
    next_obs: Any


def scripted_rollout(
    env: gym.Env, task: str, spec: dict[str, Any], seed: int, max_steps: int, stop_on_success: bool = False
) -> Iterator[Transition]:
    """Reset ``env`` with ``seed`` and step it with :class:`ScriptedPolicy` ``spec``.

    ``env`` is a Meta-World env from :func:`metaworld_task_env` or :func:`make_metaworld_env`.
    Yields up to ``max_steps`` transitions, fewer if ``stop_on_success`` and the task
    succeeds (the successful step is yielded) or the episode is truncated.
    """
    policy = ScriptedPolicy(task, spec)
    obs, _ = env.reset(seed=seed)
    progress, start = 0.0, None  # start: the object's distance to the goal after the first step
    for _ in range(max_steps):
        state = obs["state"] if isinstance(obs, dict) else obs
        action = policy(state, progress)
        next_obs, reward, _, truncated, info = env.step(action)
        start = start if start is not None else float(info["obj_to_target"])
        progress = 1.0 - float(info["obj_to_target"]) / start if start > 1e-6 else float("nan")
        success = bool(info["success"] > 0)
        yield Transition(obs, action, float(reward), success, progress, next_obs)
        obs = next_obs
        if truncated or (stop_on_success and success):
            return


@dataclass
class ScriptedEpisode:
    """A checked plan for one scripted episode: replaying ``spec`` from ``seed`` for
    ``steps`` steps gives ``success`` (per step) and the labelled ``outcome``."""

    seed: int
    steps: int
    spec: dict[str, Any]
    outcome: str
    success: list[bool]
    progress: list[float]


def find_scripted_episode(
    env: gym.Env,
    task: str,
    outcome: str,
    seeds: Iterator[int],
    rng: np.random.Generator,
    variant: int = 0,
    tail: int = 5,
    max_steps: int = 300,
    max_tries: int = 50,
) -> ScriptedEpisode:
    """Draw seeds until a scripted episode comes out as ``outcome``; simulate only.

    The expert first runs from the seed's initial state: seeds where it does not succeed
    within ``max_steps`` are skipped. Its success step ``S`` fixes the length, ``S + tail``
    steps, for every outcome:

    * ``success`` — the expert, ending ``tail`` steps after its first success;
    * ``partial`` — even ``variant``: stop after a random 30–70 % of ``S`` steps; odd:
      stop once the object covered a random 25–50 % of its way (where the task measures
      it, else as even); never a success, and the object ends below 80 % of its way;
    * ``failure`` — even ``variant``: aim 15 cm beside the object and goal; odd: noise
      σ = 1; never a success, and the object never covers half of its way (where the
      task measures it).

    Args:
        env: a Meta-World env for ``task`` (cameras are not needed).
        task: Meta-World v3 task name.
        outcome: ``success``, ``partial`` or ``failure``.
        seeds: env seeds to try, in order (consumed).
        rng: draws the stop points, offsets' sign and noise seeds.
        variant: which perturbation of the outcome (alternates the two kinds).
        tail: steps kept after the expert's first success.
        max_steps: the expert's step budget.
        max_tries: seeds to try before giving up with a :class:`ConfigError`.
    """
    if outcome not in ("success", "partial", "failure"):
        raise ConfigError(f"outcome must be success, partial or failure, got {outcome!r}")
    for seed in itertools.islice(seeds, max_tries):
        expert = list(scripted_rollout(env, task, {"kind": "expert"}, seed, max_steps, stop_on_success=True))
        if not expert or not expert[-1].success:
            continue
        success_step = len(expert)
        measured = not np.isnan(expert[-1].progress)
        spec = _perturbation(outcome, variant, success_step, rng, measured)
        run = list(scripted_rollout(env, task, spec, seed, success_step + tail))
        success = [t.success for t in run]
        progress = [t.progress for t in run]
        furthest = max((p for p in progress if not np.isnan(p)), default=0.0)
        intended = {
            "success": len(run) == success_step + tail and success[-1],
            "partial": not any(success) and not progress[-1] >= 0.8,
            "failure": not any(success) and furthest < 0.5,
        }[outcome]
        if intended:
            return ScriptedEpisode(seed, len(run), spec, outcome, success, progress)
    raise ConfigError(
        f"{task}: none of {max_tries} seeds gave a {outcome} episode (variant {variant}); the scripted expert "
        f"or its perturbation does not fit this task: record fewer {outcome} episodes of it"
    )


def _perturbation(
    outcome: str, variant: int, success_step: int, rng: np.random.Generator, measured: bool
) -> dict[str, Any]:
    if outcome == "success":
        return {"kind": "expert"}
    if outcome == "partial":
        if variant % 2 == 0 or not measured:
            return {"kind": "stop_step", "stop_step": round(rng.uniform(0.3, 0.7) * success_step)}
        return {"kind": "stop_progress", "fraction": round(float(rng.uniform(0.25, 0.5)), 3)}
    if variant % 2 == 0:
        return {"kind": "beside", "offset": 0.15 if rng.uniform() < 0.5 else -0.15}
    return {"kind": "noise", "sigma": 1.0, "noise_seed": int(rng.integers(2**31))}
