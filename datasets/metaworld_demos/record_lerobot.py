"""Record scripted Meta-World or panda-gym episodes into a LeRobot v3 dataset (the real ``lerobot`` library).

    python datasets/metaworld_demos/record_lerobot.py --tasks drawer-open-v3 door-open-v3 \\
        --cameras corner topview --size 128 --successes 10 --partials 2 --failures 4 \\
        --action-repeat 2 --out data/metaworld_demos --repo-id robo_reward/metaworld_demos

    python datasets/metaworld_demos/record_lerobot.py --backend panda --tasks PandaPush-v3 \\
        --cameras front side --size 96 --successes 10 --failures 4 \\
        --out data/panda_demos --repo-id robo_reward/panda_demos

Per task, ``--successes`` expert episodes, ``--partials`` experts stopped part-way and
``--failures`` perturbed experts, each from its own seeded initial state; seeds where the
expert does not succeed within ``--max-steps`` are skipped.

* **Meta-World** (``--backend metaworld``, the default; Meta-World v3 task names): the
  outcomes of :func:`robo_reward.envs.metaworld_search.find_scripted_episode`, every
  episode ``S + tail`` steps long, where ``S`` is the expert's success step on that seed.
* **panda-gym** (``--backend panda``; ``PandaReach-v3``, ``PandaPush-v3`` and their
  ``Dense`` variants, see :data:`robo_reward.envs.panda.EXPERTS`): ``success`` — the
  scripted solution, up to and including the step that succeeds (panda-gym terminates
  there; ``--tail`` does not apply); ``failure`` — the same solution aimed 15 cm beside the
  goal along x, never a success, until the env's time limit (50 simulator steps) or
  ``--max-steps``. No partials.

One LeRobot frame per *agent* step, ``--action-repeat`` simulator steps with the same action
(:class:`robo_reward.envs.action_repeat.ActionRepeat`; the seed search plans with the same
repeat, and ``--max-steps`` and ``--tail`` count agent steps):

* ``observation.images.<camera>`` — video, (H, W, 3) RGB, upright; Meta-World's scene
  cameras or :data:`robo_reward.envs.panda.PRESET_CAMERAS` names;
* ``observation.state`` — float32 proprio: Meta-World (4,) hand x, y, z (m) and gripper
  opening; panda (3,) end-effector x, y, z (m), plus the gripper width where the task
  moves the fingers (Reach and Push do not);
* ``observation.environment_state`` — float32, the learner's flat observation:
  ``gymnasium.spaces.flatten`` of the env's observation (what ``FlattenObservation``
  gives): Meta-World's (39,) state; panda's dict flattened in key order
  ``achieved_goal``, ``desired_goal``, ``observation`` (names ``<key>_<i>``; (12,) Reach,
  (24,) Push);
* ``action`` — float32 in [-1, 1]: Meta-World (4,) hand xyz delta, gripper effort;
  panda (3,) end-effector xyz delta (× 5 cm);
* ``next.reward`` — the env's reward for the agent step (summed over its simulator steps);
  ``next.success`` — ``info["success"]`` (Meta-World) or ``info["is_success"]`` (panda)
  after the step; ``next.done`` — true on the episode's last frame. Only a panda episode
  whose last frame succeeds ends in a termination (panda-gym terminates on success); every
  other episode, Meta-World's included, ends in a truncation;
* ``task`` — the instruction, e.g. "open the drawer" (LeRobot's per-frame task).

``meta/robo_reward_episodes.json`` holds ``backend``, ``action_repeat`` and ``episodes``: per
episode index, the task (``env``), ``outcome`` (success | partial | failure), seed,
behaviour and ``success_frame`` (the first successful frame, or null). With ``--keypoints``,
each camera's depth is a feature too (``observation.depth.<camera>``, float32 (H, W)
metres, +inf where no surface is seen: LeRobot's statistics of these features are then not
finite, so normalise depth yourself if a policy reads it), and each episode's entry holds its ground-truth ``keypoints`` spec at its first
frame (:class:`robo_reward.envs.keypoints.GroundTruthKeypoints`). The dataset is
written to a temporary folder and renamed to ``--out`` when complete. Read it back with
``LeRobotDataset(repo_id, root=out)`` (add ``video_backend="pyav"`` where torchcodec
cannot find FFmpeg's shared libraries).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from robo_reward.atomic import atomic_dir
from robo_reward.data.lerobot import DEPTH_PREFIX, RECORDED_EPISODES
from robo_reward.envs import panda
from robo_reward.envs.action_repeat import ActionRepeat
from robo_reward.envs.depth import DepthViews
from robo_reward.envs.keypoints import GroundTruthKeypoints
from robo_reward.envs.metaworld import make_metaworld_env, metaworld_task_env
from robo_reward.envs.metaworld_experts import Transition, scripted_rollout
from robo_reward.envs.metaworld_search import ScriptedEpisode, find_scripted_episode
from robo_reward.envs.metaworld_tasks import INSTRUCTIONS, check_task
from robo_reward.errors import ConfigError, require

EPISODES_SIDECAR = RECORDED_EPISODES  # read back by robo_reward.data.lerobot (outcomes) and rl.demos
OUTCOMES = ("success", "partial", "failure")


@dataclass(frozen=True)
class RecordConfig:
    """What to record.

    Attributes:
        tasks: task names of ``backend`` (Meta-World v3 names, panda-gym ids).
        cameras: camera names, one video feature each.
        size: square image side in pixels.
        successes: expert episodes per task.
        partials: expert-stopped-part-way episodes per task (Meta-World only).
        failures: perturbed-expert episodes per task.
        seed: first env seed of every task; also seeds the perturbations.
        fps: frame rate written in the dataset (LeRobot needs an int).
        tail: agent steps kept after the expert's first success (Meta-World only).
        max_steps: the expert's budget in agent steps; seeds where it fails are skipped.
        vcodec: LeRobot video codec (``libsvtav1``, ``h264``, ``hevc``).
        backend: ``metaworld`` or ``panda`` (see :data:`BACKENDS`).
        action_repeat: simulator steps per agent step (one frame), same action.
        shadows: render shadows (and reflections); a camera reward model fitted on the
            recording must score frames rendered the same way.
        keypoints: also record each camera's depth (``observation.depth.<camera>``, float32
            metres) and each episode's ground-truth keypoint spec at its first frame (the
            sidecar's ``keypoints``), what the ``keypoint`` reward model scores with.
    """

    tasks: tuple[str, ...] = ("drawer-open-v3",)
    cameras: tuple[str, ...] = ("corner", "topview")
    size: int = 128
    successes: int = 10
    partials: int = 0
    failures: int = 0
    seed: int = 0
    fps: int = 20
    tail: int = 5
    max_steps: int = 300
    vcodec: str = "libsvtav1"
    backend: str = "metaworld"
    shadows: bool = True
    action_repeat: int = 1
    keypoints: bool = False

    def __post_init__(self) -> None:
        if min(self.successes, self.partials, self.failures) < 0 or not (
            self.successes + self.partials + self.failures
        ):
            raise ConfigError("episode counts must be >= 0 and not all zero")
        if not self.tasks:
            raise ConfigError("give at least one task")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.partials and "partial" not in BACKENDS[self.backend].outcomes:
            raise ConfigError(f"the {self.backend} backend records no partial episodes: set partials to 0")
        if self.action_repeat < 1:
            raise ConfigError(f"action_repeat must be >= 1, got {self.action_repeat}")


class Backend(Protocol):
    """One simulator's side of the recording: its envs, scripted episodes and proprio.

    Attributes:
        robot_type: LeRobot's robot type.
        outcomes: the outcomes it can record.
        tasks: the command line's default tasks.
        cameras: the command line's default cameras.
    """

    robot_type: str
    outcomes: tuple[str, ...]
    tasks: tuple[str, ...]
    cameras: tuple[str, ...]

    def instruction(self, task: str) -> str:
        """The task in words; :class:`ConfigError` naming ``task`` if it cannot be recorded."""

    def make_env(self, task: str, config: RecordConfig) -> gym.Env:
        """The camera env that is recorded (``{"state", "views"}`` observations)."""

    def make_planner(self, task: str, config: RecordConfig) -> gym.Env:
        """The same env without cameras, for the seed search."""

    def find_episode(
        self, planner: gym.Env, task: str, outcome: str, seeds: Iterator[int], rng: np.random.Generator,
        variant: int, config: RecordConfig,
    ) -> ScriptedEpisode:
        """Draw ``seeds`` until a scripted episode comes out as ``outcome``; simulate only."""

    def rollout(self, env: gym.Env, task: str, episode: ScriptedEpisode) -> Iterator[Transition]:
        """Replay ``episode``'s plan on ``env``, one transition per agent step."""

    def proprio_names(self, env: gym.Env) -> list[str]:
        """Names of the ``observation.state`` entries."""

    def proprio(self, env: gym.Env, state: Any) -> np.ndarray:
        """``observation.state`` from the env's observation ``state``."""


class MetaWorldBackend:
    """Meta-World v3 (MuJoCo, Sawyer): the tasks' scripted experts, perturbed or stopped."""

    robot_type = "sawyer"
    outcomes = OUTCOMES
    tasks = ("drawer-open-v3",)
    cameras = ("corner", "topview")

    def instruction(self, task: str) -> str:
        return INSTRUCTIONS[check_task(task)]

    def make_env(self, task: str, config: RecordConfig) -> gym.Env:
        return make_metaworld_env(task, config.cameras, config.size, max_path_length=_path_length(config),
                                  shadows=config.shadows, action_repeat=config.action_repeat)

    def make_planner(self, task: str, config: RecordConfig) -> gym.Env:
        env = metaworld_task_env(task, max_path_length=_path_length(config))
        return ActionRepeat(env, config.action_repeat)

    def find_episode(
        self, planner: gym.Env, task: str, outcome: str, seeds: Iterator[int], rng: np.random.Generator,
        variant: int, config: RecordConfig,
    ) -> ScriptedEpisode:
        return find_scripted_episode(planner, task, outcome, seeds, rng, variant, config.tail,
                                     config.max_steps)

    def rollout(self, env: gym.Env, task: str, episode: ScriptedEpisode) -> Iterator[Transition]:
        return scripted_rollout(env, task, episode.spec, episode.seed, episode.steps)

    def proprio_names(self, env: gym.Env) -> list[str]:
        return ["hand_x", "hand_y", "hand_z", "gripper"]

    def proprio(self, env: gym.Env, state: np.ndarray) -> np.ndarray:
        return state[:4]


def _path_length(config: RecordConfig) -> int:
    """Meta-World's episode length in simulator steps: no recording reaches its truncation."""
    return (config.max_steps + config.tail) * config.action_repeat + 1


#: panda-gym task → instruction, for the tasks with a scripted solution.
PANDA_INSTRUCTIONS = {
    "PandaReach-v3": "move the gripper to the target",
    "PandaReachDense-v3": "move the gripper to the target",
    "PandaPush-v3": "push the cube to the target",
    "PandaPushDense-v3": "push the cube to the target",
}


class PandaBackend:
    """panda-gym (PyBullet, Franka Panda): the scripted solutions of
    :data:`robo_reward.envs.panda.EXPERTS`, as is (success) or aimed beside the goal (failure)."""

    robot_type = "panda"
    outcomes = ("success", "failure")
    tasks = ("PandaReach-v3",)
    cameras = ("front", "side")

    def instruction(self, task: str) -> str:
        panda.expert_policy(task)
        return PANDA_INSTRUCTIONS[task]

    def make_env(self, task: str, config: RecordConfig) -> gym.Env:
        return panda.make_panda_env(task, config.cameras, config.size, shadows=config.shadows,
                                    action_repeat=config.action_repeat)

    def make_planner(self, task: str, config: RecordConfig) -> gym.Env:
        return ActionRepeat(gym.make(task), config.action_repeat)

    def find_episode(
        self, planner: gym.Env, task: str, outcome: str, seeds: Iterator[int], rng: np.random.Generator,
        variant: int, config: RecordConfig, max_tries: int = 50,
    ) -> ScriptedEpisode:
        """The expert's seeds only; a failure aims 15 cm beside the goal along x, either side."""
        for seed in itertools.islice(seeds, max_tries):
            expert = list(panda_rollout(planner, task, 0.0, seed, config.max_steps))
            if not expert or not expert[-1].success:
                continue
            if outcome == "success":
                spec, run = {"kind": "expert"}, expert
            else:
                spec = {"kind": "beside", "offset": 0.15 if rng.uniform() < 0.5 else -0.15}
                run = list(panda_rollout(planner, task, spec["offset"], seed, config.max_steps))
            success = [t.success for t in run]
            if outcome == "success" or not any(success):
                return ScriptedEpisode(seed, len(run), spec, outcome, success, [t.progress for t in run])
        raise ConfigError(
            f"{task}: none of {max_tries} seeds gave a {outcome} episode; the scripted solution does not fit "
            f"this task within {config.max_steps} steps: record fewer {outcome} episodes of it"
        )

    def rollout(self, env: gym.Env, task: str, episode: ScriptedEpisode) -> Iterator[Transition]:
        return panda_rollout(env, task, episode.spec.get("offset", 0.0), episode.seed, episode.steps)

    def proprio_names(self, env: gym.Env) -> list[str]:
        return ["ee_x", "ee_y", "ee_z"] + ([] if env.unwrapped.robot.block_gripper else ["gripper_width"])

    def proprio(self, env: gym.Env, state: dict[str, np.ndarray]) -> np.ndarray:
        robot = state["observation"]
        return robot[:3] if env.unwrapped.robot.block_gripper else robot[[0, 1, 2, 6]]


def panda_rollout(env: gym.Env, task: str, offset: float, seed: int, max_steps: int) -> Iterator[Transition]:
    """Reset ``env`` with ``seed`` and step it with ``task``'s scripted solution, aimed
    ``offset`` metres beside the goal along x (0: at the goal).

    ``env`` is a panda-gym env, as made by ``gymnasium.make`` (optionally in
    :class:`ActionRepeat`) or :func:`robo_reward.envs.panda.make_panda_env`. Yields up to
    ``max_steps`` transitions (``progress`` NaN: not measured), fewer if the episode ends
    (panda-gym terminates on success and truncates at its time limit).
    """
    expert = panda.expert_policy(task)
    shift = np.array([offset, 0.0, 0.0], dtype=np.float32)
    obs, _ = env.reset(seed=seed)
    for _ in range(max_steps):
        state = obs["state"] if "views" in obs else obs
        action = expert({**state, "desired_goal": state["desired_goal"] + shift})
        next_obs, reward, terminated, truncated, info = env.step(action)
        yield Transition(obs, action, float(reward), bool(info["is_success"]), float("nan"), next_obs)
        obs = next_obs
        if terminated or truncated:
            return


#: Backend name → how it is recorded.
BACKENDS: dict[str, Backend] = {"metaworld": MetaWorldBackend(), "panda": PandaBackend()}


def features(config: RecordConfig, env: gym.Env) -> dict[str, dict[str, Any]]:
    """The LeRobot feature spec of the recording from camera env ``env``."""
    backend = BACKENDS[config.backend]
    state_space = env.observation_space["state"]
    flat_names = (
        [f"{key}_{i}" for key, space in state_space.items() for i in range(spaces.flatdim(space))]
        if isinstance(state_space, spaces.Dict) else None
    )
    proprio = backend.proprio_names(env)
    actions = ["delta_x", "delta_y", "delta_z", "gripper_effort"][: env.action_space.shape[0]]
    spec: dict[str, dict[str, Any]] = {
        f"observation.images.{camera}": {
            "dtype": "video",
            "shape": (config.size, config.size, 3),
            "names": ["height", "width", "channels"],
        }
        for camera in config.cameras
    }
    if config.keypoints:
        spec.update({f"{DEPTH_PREFIX}{camera}": {"dtype": "float32", "shape": (config.size, config.size),
                                                     "names": ["height", "width"]} for camera in config.cameras})
    spec.update(
        {
            "observation.state": {"dtype": "float32", "shape": (len(proprio),), "names": proprio},
            "observation.environment_state": {
                "dtype": "float32", "shape": (spaces.flatdim(state_space),), "names": flat_names,
            },
            "action": {"dtype": "float32", "shape": (len(actions),), "names": actions},
            "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
            "next.success": {"dtype": "bool", "shape": (1,), "names": None},
            "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        }
    )
    return spec


def record_dataset(config: RecordConfig, out: Path, repo_id: str, overwrite: bool = False) -> Path:
    """Record every task's episodes into a LeRobot dataset at ``out``; returns ``out``."""
    lerobot_dataset = require("lerobot.datasets.lerobot_dataset", "lerobot", "writing LeRobot datasets")
    backend = BACKENDS[config.backend]
    instructions = {task: backend.instruction(task) for task in config.tasks}
    wanted = (
        [("success", i) for i in range(config.successes)]
        + [("partial", i) for i in range(config.partials)]
        + [("failure", i) for i in range(config.failures)]
    )
    sidecar: list[dict[str, Any]] = []
    with atomic_dir(out, overwrite=overwrite) as folder:
        envs: dict[str, gym.Env] = {}
        try:
            for task in config.tasks:
                envs[task] = backend.make_env(task, config)
                if config.keypoints:
                    envs[task] = GroundTruthKeypoints(DepthViews(envs[task]), instructions[task], task)
            spec = _common_features(config, envs)
            folder.rmdir()  # LeRobot creates its root itself
            dataset = lerobot_dataset.LeRobotDataset.create(
                repo_id=repo_id, fps=config.fps, features=spec, root=folder,
                robot_type=backend.robot_type, use_videos=True, vcodec=config.vcodec,
            )
            with tqdm(total=len(config.tasks) * len(wanted), unit="episode", desc="recording") as bar:
                for task_index, task in enumerate(config.tasks):
                    planner = backend.make_planner(task, config)
                    seeds = itertools.count(config.seed)
                    rng = np.random.default_rng([config.seed, task_index])
                    try:
                        for outcome, variant in wanted:
                            bar.set_postfix_str(f"{task} {outcome}")
                            episode = backend.find_episode(planner, task, outcome, seeds, rng, variant, config)
                            success = _record_episode(dataset, backend, envs[task], task, instructions[task],
                                                      episode, config.cameras)
                            if success != episode.success:
                                raise RuntimeError(f"{task} seed {episode.seed}: the recording differs from its plan")
                            sidecar.append({"episode_index": len(sidecar), "env": task, "outcome": outcome,
                                            "seed": episode.seed, "behaviour": episode.spec,
                                            "success_frame": success.index(True) if any(success) else None})
                            if config.keypoints:
                                sidecar[-1]["keypoints"] = envs[task].episode_task.keypoints.to_dict()
                            bar.update(1)
                    finally:
                        planner.close()
            dataset.finalize()
            _remove_empty_tree(folder / "images")  # LeRobot's per-frame staging folder
        finally:
            for env in envs.values():
                env.close()
        summary = {"backend": config.backend, "action_repeat": config.action_repeat,
                   "render": {"size": config.size, "shadows": config.shadows}, "episodes": sidecar}
        (folder / EPISODES_SIDECAR).write_text(json.dumps(summary, indent=1) + "\n")
    return out


def _common_features(config: RecordConfig, envs: dict[str, gym.Env]) -> dict[str, dict[str, Any]]:
    """The feature spec every task's env gives; :class:`ConfigError` naming two tasks that differ."""
    specs = {task: features(config, env) for task, env in envs.items()}
    first, spec = next(iter(specs.items()))
    for task, other in specs.items():
        for key, feature in other.items():
            if feature != spec[key]:
                raise ConfigError(
                    f"tasks {first} and {task} record {key} differently (shape {spec[key]['shape']} vs "
                    f"{feature['shape']}; a dataset has one per feature): record them into separate datasets"
                )
    return spec


def _remove_empty_tree(folder: Path) -> None:
    if folder.is_dir() and not any(path.is_file() for path in folder.rglob("*")):
        shutil.rmtree(folder)


def _record_episode(
    dataset: Any, backend: Backend, env: gym.Env, task: str, instruction: str, episode: ScriptedEpisode,
    cameras: Sequence[str],
) -> list[bool]:
    """Replay ``episode`` with cameras into ``dataset`` as one LeRobot episode; returns per-frame success."""
    state_space = env.observation_space["state"]
    success = []
    for index, step in enumerate(backend.rollout(env, task, episode)):
        state = step.obs["state"]
        frame = {f"observation.images.{camera}": step.obs["views"][camera] for camera in cameras}
        frame.update({f"{DEPTH_PREFIX}{camera}": depth for camera, depth in step.obs.get("depth", {}).items()})
        frame.update(
            {
                "observation.state": np.asarray(backend.proprio(env, state), dtype=np.float32),
                "observation.environment_state": spaces.flatten(state_space, state).astype(np.float32),
                "action": step.action.astype(np.float32),
                "next.reward": np.array([step.reward], dtype=np.float32),
                "next.success": np.array([step.success]),
                "next.done": np.array([index == episode.steps - 1]),
                "task": instruction,
            }
        )
        dataset.add_frame(frame)
        success.append(step.success)
    dataset.save_episode(parallel_encoding=False)
    return success


def main(argv: Sequence[str] | None = None) -> Path:
    """Command-line entry: parse ``argv``, record, print a summary; returns the dataset folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = RecordConfig()
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (LeRobot root), must not exist")
    parser.add_argument("--repo-id", default="robo_reward/metaworld_demos", help="LeRobot repo id stored in the dataset")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    parser.add_argument("--backend", default=defaults.backend, choices=list(BACKENDS), help="simulator")
    parser.add_argument("--tasks", nargs="+",
                        help="the backend's task names (default: drawer-open-v3 | PandaReach-v3)")
    parser.add_argument("--cameras", nargs="+", help="camera names (default: corner topview | front side)")
    parser.add_argument("--size", type=int, default=defaults.size, help="square image side in pixels")
    parser.add_argument("--successes", type=int, default=defaults.successes, help="per task")
    parser.add_argument("--partials", type=int, default=defaults.partials, help="per task (Meta-World only)")
    parser.add_argument("--failures", type=int, default=defaults.failures, help="per task")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--fps", type=int, default=defaults.fps)
    parser.add_argument("--tail", type=int, default=defaults.tail,
                        help="agent steps kept after the first success (Meta-World only)")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="expert budget in agent steps")
    parser.add_argument("--action-repeat", type=int, default=defaults.action_repeat,
                        help="simulator steps per agent step (one frame)")
    parser.add_argument("--vcodec", default=defaults.vcodec, choices=["libsvtav1", "h264", "hevc"])
    parser.add_argument("--no-shadows", dest="shadows", action="store_false",
                        help="render without shadows (faster; train and score with shadows off too)")
    parser.add_argument("--keypoints", action="store_true",
                        help="also record depth per camera and each episode's ground-truth keypoints (keypoint reward)")
    args = parser.parse_args(argv)
    backend = BACKENDS[args.backend]
    config = RecordConfig(
        tasks=tuple(args.tasks or backend.tasks), cameras=tuple(args.cameras or backend.cameras),
        size=args.size, successes=args.successes, partials=args.partials, failures=args.failures,
        seed=args.seed, fps=args.fps, tail=args.tail, max_steps=args.max_steps, vcodec=args.vcodec,
        backend=args.backend, action_repeat=args.action_repeat, shadows=args.shadows, keypoints=args.keypoints,
    )
    out = record_dataset(config, args.out, args.repo_id, args.overwrite)
    episodes = json.loads((out / EPISODES_SIDECAR).read_text())["episodes"]
    print(f"wrote {len(episodes)} episodes of {len(config.tasks)} task(s) to {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
