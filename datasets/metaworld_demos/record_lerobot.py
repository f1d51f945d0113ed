"""Record Meta-World scripted episodes into a LeRobot v3 dataset (the real ``lerobot`` library).

    python datasets/metaworld_demos/record_lerobot.py --tasks drawer-open-v3 door-open-v3 \\
        --cameras corner topview --size 128 --successes 10 --partials 2 --failures 4 \\
        --out data/metaworld_demos --repo-id robo_reward/metaworld_demos

Per task, ``--successes`` expert episodes, ``--partials`` experts stopped part-way and
``--failures`` perturbed experts (see :func:`robo_reward.envs.metaworld_search.find_scripted_episode`),
each from its own seeded initial state. One LeRobot frame per env step:

* ``observation.images.<camera>`` — video, (H, W, 3) RGB, upright;
* ``observation.state`` — (4,) float32: hand x, y, z (m) and gripper opening;
* ``observation.environment_state`` — (39,) float32: Meta-World's full state;
* ``action`` — (4,) float32 in [-1, 1]: hand xyz delta, gripper effort;
* ``next.reward`` — Meta-World's reward for the step; ``next.success`` — ``info["success"]``
  after the step; ``next.done`` — true on the episode's last frame;
* ``task`` — the instruction, e.g. "open the drawer" (LeRobot's per-frame task).

``meta/robo_reward_episodes.json`` adds, per episode index, the Meta-World task,
``outcome`` (success | partial | failure), seed and behaviour. The dataset is written
to a temporary folder and renamed to ``--out`` when complete. Read it back with
``LeRobotDataset(repo_id, root=out)`` (add ``video_backend="pyav"`` where torchcodec
cannot find FFmpeg's shared libraries).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robo_reward.atomic import atomic_dir
from robo_reward.envs.metaworld import make_metaworld_env, metaworld_task_env
from robo_reward.envs.metaworld_experts import scripted_rollout
from robo_reward.envs.metaworld_search import ScriptedEpisode, find_scripted_episode
from robo_reward.envs.metaworld_tasks import INSTRUCTIONS, check_task
from robo_reward.errors import ConfigError, require

EPISODES_SIDECAR = "meta/robo_reward_episodes.json"


@dataclass(frozen=True)
class RecordConfig:
    """What to record.

    Attributes:
        tasks: Meta-World v3 task names.
        cameras: camera names, one video feature each.
        size: square image side in pixels.
        successes: expert episodes per task.
        partials: expert-stopped-part-way episodes per task.
        failures: perturbed-expert episodes per task.
        seed: first env seed of every task; also seeds the perturbations.
        fps: frame rate written in the dataset (LeRobot needs an int).
        tail: steps kept after the expert's first success.
        max_steps: the expert's step budget; seeds where it fails are skipped.
        vcodec: LeRobot video codec (``libsvtav1``, ``h264``, ``hevc``).
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

    def __post_init__(self) -> None:
        if min(self.successes, self.partials, self.failures) < 0 or not (
            self.successes + self.partials + self.failures
        ):
            raise ConfigError("episode counts must be >= 0 and not all zero")
        if not self.tasks:
            raise ConfigError("give at least one task")


def features(config: RecordConfig, state_dim: int) -> dict[str, dict[str, Any]]:
    """The LeRobot feature spec of the recording."""
    spec: dict[str, dict[str, Any]] = {
        f"observation.images.{camera}": {
            "dtype": "video",
            "shape": (config.size, config.size, 3),
            "names": ["height", "width", "channels"],
        }
        for camera in config.cameras
    }
    spec.update(
        {
            "observation.state": {"dtype": "float32", "shape": (4,), "names": ["hand_x", "hand_y", "hand_z", "gripper"]},
            "observation.environment_state": {"dtype": "float32", "shape": (state_dim,), "names": None},
            "action": {"dtype": "float32", "shape": (4,), "names": ["delta_x", "delta_y", "delta_z", "gripper_effort"]},
            "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
            "next.success": {"dtype": "bool", "shape": (1,), "names": None},
            "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        }
    )
    return spec


def record_dataset(config: RecordConfig, out: Path, repo_id: str, overwrite: bool = False) -> Path:
    """Record every task's episodes into a LeRobot dataset at ``out``; returns ``out``."""
    lerobot_dataset = require("lerobot.datasets.lerobot_dataset", "lerobot", "writing LeRobot datasets")
    for task in config.tasks:
        check_task(task)
    wanted = (
        [("success", i) for i in range(config.successes)]
        + [("partial", i) for i in range(config.partials)]
        + [("failure", i) for i in range(config.failures)]
    )
    length = config.max_steps + config.tail + 1
    sidecar: list[dict[str, Any]] = []
    with atomic_dir(out, overwrite=overwrite) as folder:
        envs = {task: make_metaworld_env(task, config.cameras, config.size, max_path_length=length)
                for task in config.tasks}
        try:
            folder.rmdir()  # LeRobot creates its root itself
            state_dim = envs[config.tasks[0]].observation_space["state"].shape[0]
            dataset = lerobot_dataset.LeRobotDataset.create(
                repo_id=repo_id, fps=config.fps, features=features(config, state_dim), root=folder,
                robot_type="sawyer", use_videos=True, vcodec=config.vcodec,
            )
            with tqdm(total=len(config.tasks) * len(wanted), unit="episode", desc="recording") as bar:
                for task_index, task in enumerate(config.tasks):
                    planner = metaworld_task_env(task, max_path_length=length)
                    seeds = itertools.count(config.seed)
                    rng = np.random.default_rng([config.seed, task_index])
                    try:
                        for outcome, variant in wanted:
                            bar.set_postfix_str(f"{task} {outcome}")
                            episode = find_scripted_episode(planner, task, outcome, seeds, rng, variant,
                                                            config.tail, config.max_steps)
                            success = _record_episode(dataset, envs[task], task, episode, config.cameras)
                            if success != episode.success:
                                raise RuntimeError(f"{task} seed {episode.seed}: the recording differs from its plan")
                            sidecar.append({"episode_index": len(sidecar), "env": task, "outcome": outcome,
                                            "seed": episode.seed, "behaviour": episode.spec,
                                            "success_frame": success.index(True) if any(success) else None})
                            bar.update(1)
                    finally:
                        planner.close()
            dataset.finalize()
            _remove_empty_tree(folder / "images")  # LeRobot's per-frame staging folder
        finally:
            for env in envs.values():
                env.close()
        (folder / EPISODES_SIDECAR).write_text(json.dumps({"episodes": sidecar}, indent=1) + "\n")
    return out


def _remove_empty_tree(folder: Path) -> None:
    if folder.is_dir() and not any(path.is_file() for path in folder.rglob("*")):
        shutil.rmtree(folder)


def _record_episode(dataset: Any, env: Any, task: str, episode: ScriptedEpisode, cameras: Sequence[str]) -> list[bool]:
    """Replay ``episode`` with cameras into ``dataset`` as one LeRobot episode; returns per-frame success."""
    success = []
    for index, step in enumerate(scripted_rollout(env, task, episode.spec, episode.seed, episode.steps)):
        state = step.obs["state"]
        frame = {f"observation.images.{camera}": step.obs["views"][camera] for camera in cameras}
        frame.update(
            {
                "observation.state": state[:4].astype(np.float32),
                "observation.environment_state": state.astype(np.float32),
                "action": step.action.astype(np.float32),
                "next.reward": np.array([step.reward], dtype=np.float32),
                "next.success": np.array([step.success]),
                "next.done": np.array([index == episode.steps - 1]),
                "task": INSTRUCTIONS[task],
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
    parser.add_argument("--tasks", nargs="+", default=list(defaults.tasks), help="Meta-World v3 task names")
    parser.add_argument("--cameras", nargs="+", default=list(defaults.cameras), help="camera names")
    parser.add_argument("--size", type=int, default=defaults.size, help="square image side in pixels")
    parser.add_argument("--successes", type=int, default=defaults.successes, help="per task")
    parser.add_argument("--partials", type=int, default=defaults.partials, help="per task")
    parser.add_argument("--failures", type=int, default=defaults.failures, help="per task")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--fps", type=int, default=defaults.fps)
    parser.add_argument("--tail", type=int, default=defaults.tail, help="steps kept after the first success")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="expert step budget")
    parser.add_argument("--vcodec", default=defaults.vcodec, choices=["libsvtav1", "h264", "hevc"])
    args = parser.parse_args(argv)
    config = RecordConfig(
        tasks=tuple(args.tasks), cameras=tuple(args.cameras), size=args.size, successes=args.successes,
        partials=args.partials, failures=args.failures, seed=args.seed, fps=args.fps, tail=args.tail,
        max_steps=args.max_steps, vcodec=args.vcodec,
    )
    out = record_dataset(config, args.out, args.repo_id, args.overwrite)
    episodes = json.loads((out / EPISODES_SIDECAR).read_text())["episodes"]
    print(f"wrote {len(episodes)} episodes of {len(config.tasks)} task(s) to {out}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
