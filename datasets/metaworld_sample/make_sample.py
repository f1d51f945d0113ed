"""Make the shipped Meta-World sample: scripted episodes of one task, one mp4 per camera.

    python datasets/metaworld_sample/make_sample.py --overwrite     # → robo_reward/assets/metaworld_sample

Episodes (every env step is one frame, frame 0 is the reset state; fps 20 in the files):

* ``success`` — Meta-World's scripted expert, cut ``--tail`` frames after
  ``info["success"]`` first becomes true, so progress rises through the whole clip;
* ``partial`` — the expert stops part-way and then holds still: alternately after a
  random 30–70 % of its steps (the arm has reached the object, nothing moved yet) or
  once the object has covered a random 25–50 % of its way to the goal;
* ``failure`` — a perturbed expert that never gets there: alternately aiming 15 cm
  beside the object, or with heavy action noise (σ = 1 on actions in [-1, 1]).

Partial and failure episodes last as long as the expert's success episode for the same
initial state. Each episode uses its own env seed (its own object and goal positions);
a candidate that does not come out as intended (an expert that fails, a perturbation
that succeeds anyway) is skipped for the next seed, so the result is deterministic for
a given ``--seed``. Output is written to a temporary folder and renamed into place.
The manifest is ``episodes.json`` in the ``robo_reward.episodes/v1`` format read by
:func:`robo_reward.data.episodes.load_manifest`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from robo_reward.atomic import atomic_dir
from robo_reward.data.episodes import MANIFEST_FORMAT
from robo_reward.data.video import write_video
from robo_reward.envs.metaworld import make_metaworld_env, metaworld_task_env
from robo_reward.envs.metaworld_experts import scripted_rollout
from robo_reward.envs.metaworld_search import ScriptedEpisode, find_scripted_episode
from robo_reward.envs.metaworld_tasks import INSTRUCTIONS
from robo_reward.errors import ConfigError

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "robo_reward" / "assets" / "metaworld_sample"


@dataclass(frozen=True)
class SampleConfig:
    """What to record.

    Attributes:
        task: Meta-World v3 task name.
        instruction: the task in words (default: :data:`~robo_reward.envs.metaworld_tasks.INSTRUCTIONS`).
        baselines: VLM-RM baseline prompts stored with the task.
        cameras: camera names, one mp4 per camera per episode.
        size: square image side in pixels.
        seed: first env seed; episode seeds count up from it.
        fit_successes: expert successes in the ``fit`` split.
        eval_successes: expert successes in the ``eval`` split.
        partials: partial episodes (``eval``).
        failures: failure episodes (``eval``).
        tail: frames kept after the first success frame.
        fps: frame rate written in the files.
        max_steps: the expert's step budget; seeds where it does not succeed are skipped.
        shadows: render shadows and reflections (off renders faster; keep it the same as
            the env that the fitted reward model will score).
    """

    task: str = "drawer-open-v3"
    instruction: str = ""
    baselines: tuple[str, ...] = ("a robot arm",)
    cameras: tuple[str, ...] = ("corner", "topview")
    size: int = 128
    seed: int = 0
    fit_successes: int = 5
    eval_successes: int = 5
    partials: int = 4
    failures: int = 4
    tail: int = 5
    fps: float = 20.0
    max_steps: int = 300
    shadows: bool = True

    def __post_init__(self) -> None:
        if not self.instruction:
            object.__setattr__(self, "instruction", INSTRUCTIONS.get(self.task, self.task))
        counts = (self.fit_successes, self.eval_successes, self.partials, self.failures)
        if min(counts) < 0 or sum(counts) == 0:
            raise ConfigError(f"episode counts must be >= 0 and not all zero, got {counts}")
        if self.tail < 0 or self.max_steps < 1 or self.fps <= 0:
            raise ConfigError("tail must be >= 0, max_steps >= 1 and fps > 0")


@dataclass
class Plan:
    """One episode to record.

    Attributes:
        name: episode name, also the video file stem.
        split: ``fit`` or ``eval``.
        episode: the checked scripted episode (seed, steps, behaviour, per-step success).
    """

    name: str
    split: str
    episode: ScriptedEpisode


def plan_episodes(config: SampleConfig) -> list[Plan]:
    """Choose seeds and behaviours by simulating without cameras (cheap), checking outcomes."""
    env = metaworld_task_env(config.task, max_path_length=config.max_steps + config.tail + 1)
    seeds: Iterator[int] = iter(range(config.seed, config.seed + 100_000))
    rng = np.random.default_rng(config.seed)
    wanted = (
        [("fit", "success")] * config.fit_successes
        + [("eval", "success")] * config.eval_successes
        + [("eval", "partial")] * config.partials
        + [("eval", "failure")] * config.failures
    )
    plans: list[Plan] = []
    counters: dict[tuple[str, str], int] = {}
    try:
        for split, outcome in wanted:
            index = counters.get((split, outcome), 0)
            counters[(split, outcome)] = index + 1
            episode = find_scripted_episode(
                env, config.task, outcome, seeds, rng, variant=index, tail=config.tail, max_steps=config.max_steps
            )
            plans.append(Plan(f"{split}_{outcome}_{index:02d}", split, episode))
    finally:
        env.close()
    return plans


def record(plan: Plan, config: SampleConfig, env: Any, folder: Path, bar: tqdm) -> dict[str, Any]:
    """Replay ``plan`` with cameras, write one mp4 per camera; return its manifest entry.

    Frame 0 is the reset observation, frame t the observation after step t.
    """
    episode = plan.episode
    frames: dict[str, list[np.ndarray]] = {camera: [] for camera in config.cameras}
    flags, progress = [0], [0.0]
    for index, step in enumerate(scripted_rollout(env, config.task, episode.spec, episode.seed, episode.steps)):
        for camera in config.cameras:
            if index == 0:
                frames[camera].append(step.obs["views"][camera])
            frames[camera].append(step.next_obs["views"][camera])
        flags.append(int(step.success))
        progress.append(step.progress)
        bar.update(1)
    if flags[1:] != [int(s) for s in episode.success]:
        raise RuntimeError(f"{plan.name}: the recorded rollout differs from the planned one (seed {episode.seed})")
    views = {}
    for camera, images in frames.items():
        relative = f"videos/{plan.name}_{camera}.mp4"
        write_video(folder / relative, images, config.fps)
        views[camera] = relative
    return {
        "name": plan.name,
        "task": {"instruction": config.instruction, "baselines": list(config.baselines)},
        "views": views,
        "outcome": episode.outcome,
        "split": plan.split,
        "env": config.task,
        "seed": episode.seed,
        "fps": config.fps,
        "num_frames": len(flags),
        "sim_success": flags,
        "success_frame": flags.index(1) if 1 in flags else None,
        "sim_object_progress": [None if np.isnan(value) else round(value, 3) for value in progress],
        "behaviour": episode.spec,
    }


def make_sample(config: SampleConfig, out: Path = DEFAULT_OUT, overwrite: bool = False) -> Path:
    """Plan, record and write the sample to ``out`` atomically; returns ``out``."""
    env = make_metaworld_env(config.task, config.cameras, config.size,
                             max_path_length=config.max_steps + config.tail + 1, shadows=config.shadows)
    entries = []
    try:
        with atomic_dir(out, overwrite=overwrite) as folder:
            plans = plan_episodes(config)
            with tqdm(total=sum(p.episode.steps for p in plans), unit="step", desc=f"{config.task} sample") as bar:
                for plan in plans:
                    bar.set_postfix_str(plan.name)
                    entries.append(record(plan, config, env, folder, bar))
            manifest = {
                "format": MANIFEST_FORMAT,
                "generator": {
                    "recipe": "datasets/metaworld_sample/make_sample.py",
                    "config": asdict(config),
                    "versions": {name: version(name) for name in ("metaworld", "mujoco")},
                },
                "episodes": entries,
            }
            (folder / "episodes.json").write_text(json.dumps(manifest, indent=1) + "\n")
            _readable_by_all(folder)
    finally:
        env.close()
    return out


def _readable_by_all(folder: Path) -> None:
    """Temporary files and folders are private (0600/0700); shipped data is not."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def parse_args(argv: Sequence[str] | None) -> tuple[SampleConfig, Path, bool]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = SampleConfig()
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    parser.add_argument("--task", default=defaults.task, help="Meta-World v3 task (default: %(default)s)")
    parser.add_argument("--instruction", default="", help="task text (default: Meta-World's task description)")
    parser.add_argument("--cameras", nargs="+", default=list(defaults.cameras), help="camera names")
    parser.add_argument("--size", type=int, default=defaults.size, help="square image side in pixels")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="first env seed")
    parser.add_argument("--fit-successes", type=int, default=defaults.fit_successes)
    parser.add_argument("--eval-successes", type=int, default=defaults.eval_successes)
    parser.add_argument("--partials", type=int, default=defaults.partials)
    parser.add_argument("--failures", type=int, default=defaults.failures)
    parser.add_argument("--tail", type=int, default=defaults.tail, help="frames kept after the first success")
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="expert step budget")
    parser.add_argument("--no-shadows", action="store_true", help="render without shadows and reflections")
    args = parser.parse_args(argv)
    config = SampleConfig(
        task=args.task, instruction=args.instruction, cameras=tuple(args.cameras), size=args.size, seed=args.seed,
        fit_successes=args.fit_successes, eval_successes=args.eval_successes, partials=args.partials,
        failures=args.failures, tail=args.tail, max_steps=args.max_steps, shadows=not args.no_shadows,
    )
    return config, args.out, args.overwrite


def main(argv: Sequence[str] | None = None) -> Path:
    """Command-line entry: parse ``argv``, make the sample, print a summary; returns the folder."""
    config, out, overwrite = parse_args(argv)
    folder = make_sample(config, out, overwrite)
    episodes = json.loads((folder / "episodes.json").read_text())["episodes"]
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"wrote {len(episodes)} episodes, {size / 1e6:.2f} MB to {folder}", file=sys.stderr)
    return folder


if __name__ == "__main__":
    main()
