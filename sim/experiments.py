"""Does a camera reward model help RL? The results table of docs/sim_results.md.

For each task: record scripted demos with the training cameras, fit a `perceptual`
reward model on them, then train SAC with four rewards and several seeds:

* sparse   — the simulator's success flag;
* dense    — the simulator's own hand-designed reward;
* shaped   — sparse success + potential shaping with the model's progress (policy-invariant);
* progress — the model's progress used raw as the reward (VLM-RM style).

Each run logs the simulator's success rate against environment steps (eval.csv); the
script then writes a markdown table (mean ± std over seeds), a plot, and the wall-clock.
Runs already finished are skipped, so an interrupted sweep resumes.

    python sim/experiments.py                       # the documented sweep (~1 h on 2 CPU cores)
    python sim/experiments.py --steps-scale 0.05 --seeds 1 --out runs/exp_smoke   # plumbing check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from robo_reward.atomic import atomic_path
from robo_reward.cli import main as cli
from robo_reward.data.episodes import MANIFEST_FORMAT
from robo_reward.data.video import write_video
from robo_reward.rl.train import TrainArgs, read_eval_log, train

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("sparse", "dense", "shaped", "progress")


@dataclass(frozen=True)
class TaskSpec:
    """One row of the table: a simulator task, its camera, and its training budget."""

    backend: str
    task: str
    instruction: str
    camera: str
    steps: int
    max_episode_steps: int


TASKS = (
    TaskSpec("metaworld", "drawer-open-v3", "open the drawer", "corner", 6_000, 150),
    TaskSpec("metaworld", "drawer-close-v3", "close the drawer", "corner", 6_000, 150),
    TaskSpec("panda", "PandaReach-v3", "move the gripper to the target", "front", 3_000, 50),
)


def record_panda_reach_demos(folder: Path, camera: str, size: int, episodes: int, seed: int) -> None:
    """Scripted demos of PandaReach: a proportional controller to the goal, as mp4 + manifest."""
    from robo_reward.envs.panda import make_panda_env

    env = make_panda_env("PandaReach-v3", (camera,), size, shadows=False)
    entries = []
    for index in range(episodes):
        obs, _ = env.reset(seed=seed + index)
        frames = [obs["views"][camera]]
        for _ in range(50):
            state = obs["state"]
            action = np.clip(10.0 * (state["desired_goal"] - state["achieved_goal"]), -1, 1)
            obs, _, terminated, truncated, info = env.step(action)
            frames.append(obs["views"][camera])
            if info["is_success"]:
                frames += [obs["views"][camera]] * 3
                break
        name = f"reach_{index:02d}"
        write_video(folder / f"{name}_{camera}.mp4", frames, fps=25)
        entries.append({"name": name, "task": {"instruction": "move the gripper to the target"},
                        "views": {camera: f"{name}_{camera}.mp4"}, "outcome": "success", "split": "fit"})
    env.close()
    (folder / "episodes.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "episodes": entries}))


def reward_model_for(spec: TaskSpec, out: Path, size: int) -> Path:
    """Record 5 scripted demos with the training camera and fit a perceptual model on them."""
    model = out / "models" / f"{spec.task}.pt"
    if model.is_file():
        return model
    demos = out / "demos" / spec.task
    if spec.backend == "metaworld":
        subprocess.run([sys.executable, str(ROOT / "datasets/metaworld_sample/make_sample.py"), "--task", spec.task,
                        "--instruction", spec.instruction, "--cameras", spec.camera, "--size", str(size),
                        "--fit-successes", "5", "--eval-successes", "0", "--partials", "0", "--failures", "0",
                        "--no-shadows", "--out", str(demos), "--overwrite"], check=True)
    else:
        demos.mkdir(parents=True, exist_ok=True)
        record_panda_reach_demos(demos, spec.camera, size, episodes=5, seed=1000)
    if cli(["fit", "perceptual", "--demos", str(demos), "--out", str(model), "--overwrite"]) != 0:
        raise SystemExit(f"fitting the reward model for {spec.task} failed")
    return model


def run_one(spec: TaskSpec, variant: str, seed: int, model: Path, out: Path, steps: int, size: int) -> Path:
    folder = out / "runs" / spec.task / variant / f"seed{seed}"
    if (folder / "final_model.zip").is_file():
        return folder
    train(TrainArgs(
        backend=spec.backend, task=spec.task, instruction=spec.instruction, cameras=(spec.camera,),
        image_size=size, max_episode_steps=spec.max_episode_steps, reward=variant,
        reward_model=str(model) if variant in ("shaped", "progress") else None, total_steps=steps,
        learning_starts=min(1_000, steps // 4), eval_every=max(steps // 4, 1), eval_episodes=5,
        checkpoint_every=steps, record_video=False, seed=seed, out=str(folder), progress_bar=False,
        shadows=False,
    ))
    return folder


def summarise(out: Path, specs: tuple[TaskSpec, ...], seeds: int, docs: Path | None) -> str:
    lines = ["| task | reward | steps | success rate (mean ± std over seeds) | best eval | wall-clock per run |",
             "|---|---|---|---|---|---|"]
    fig, axes = plt.subplots(1, len(specs), figsize=(4.5 * len(specs), 3.2), squeeze=False)
    for ax, spec in zip(axes[0], specs):
        for variant in VARIANTS:
            logs = [read_eval_log(out / "runs" / spec.task / variant / f"seed{s}") for s in range(seeds)
                    if (out / "runs" / spec.task / variant / f"seed{s}" / "eval.csv").is_file()]
            if not logs:
                continue
            length = min(len(log) for log in logs)
            steps = np.array([row["steps"] for row in logs[0][:length]])
            rates = np.array([[row["success_rate"] for row in log[:length]] for log in logs])
            ax.plot(steps, rates.mean(0), label=variant)
            ax.fill_between(steps, rates.mean(0) - rates.std(0), rates.mean(0) + rates.std(0), alpha=0.15)
            final = rates[:, -1]
            wall = np.mean([log[length - 1]["wall_clock_s"] for log in logs])
            lines.append(f"| {spec.task} | {variant} | {int(steps[-1])} | {final.mean():.2f} ± {final.std():.2f} "
                         f"(n={len(logs)}) | {rates.max():.2f} | {wall / 60:.1f} min |")
        ax.set_title(spec.task, fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("simulator success rate")
    fig.tight_layout()
    figure = (docs.parent if docs else out) / "sim_results.png"
    fig.savefig(figure, dpi=90)
    plt.close(fig)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply every task's step budget")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--tasks", nargs="*", help="task names to run (default: all)")
    parser.add_argument("--docs", type=Path, help="write the table into this markdown file's results block")
    args = parser.parse_args()

    specs = tuple(s for s in TASKS if not args.tasks or s.task in args.tasks)
    started = time.perf_counter()
    for spec in specs:
        model = reward_model_for(spec, args.out, args.image_size)
        for variant in VARIANTS:
            for seed in range(args.seeds):
                steps = max(int(spec.steps * args.steps_scale), 100)
                print(f"[{time.perf_counter() - started:7.0f} s] {spec.task} {variant} seed {seed}", flush=True)
                run_one(spec, variant, seed, model, args.out, steps, args.image_size)
    table = summarise(args.out, specs, args.seeds, args.docs)
    print(table)
    print(f"total wall-clock {(time.perf_counter() - started) / 60:.1f} min")
    if args.docs:
        text = args.docs.read_text()
        begin, end = "<!-- results:begin -->", "<!-- results:end -->"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        with atomic_path(args.docs) as tmp:
            tmp.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


if __name__ == "__main__":
    main()
