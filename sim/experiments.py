"""Do camera rewards train policies? The RL sweep of docs/sim.md (read top to bottom).

Per task: record scripted demonstrations as a LeRobot dataset (the recipe
``datasets/metaworld_demos/record_lerobot.py``, with the learner's action repeat; a few
perturbed episodes too, which the demo buffer leaves out), then fit the two camera
reward models on them as one would on a robot — the ``progress`` model adapted from
the shipped ML45 checkpoint on ONE demo (``fit progress --init``) and the
``perceptual`` model fitted on the successful demos; the ``keypoint`` model needs no
fitting: it tracks each episode's ground-truth keypoints in the view, with depth and the
end effector from the state (docs/keypoints.md) — and train RLPD (SAC with a
symmetric demo buffer, LayerNorm critics; robo_reward.rl.rlpd) with each row of
:data:`ROWS` and several seeds. The camera rows render one view per agent step.

Every finished run is committed to the results JSON (``--results``) with its learning
curve (the simulator's success rate against agent steps), wall-clock and what the learner
logged (temperature, mean |Q|, BC error; ``--add-learner-logs`` reads them for runs
recorded before, from their run folders); a run already there is skipped, so the sweep
resumes where it stopped, across sessions, and a machine with more cores runs
``--workers`` runs at once (sweeps side by side on one results file keep each other's
runs). ``--report`` writes the table and the plot of docs/sim.md from the results file alone.

    python sim/experiments.py                                  # the whole sweep (many CPU hours)
    python sim/experiments.py --tasks drawer-open-v3 --rows dense shaped-progress --seeds 1
    python sim/experiments.py --plan --seeds 3                # what is left to run, and its cost
    python sim/experiments.py --report --docs docs/sim.md     # table + plot from the results
    python sim/experiments.py --steps 30000 --rows dense --results sim/results/rl_sweep_dense_30k.json  # a longer baseline
    python sim/experiments.py --video drawer-open-v3 shaped-progress 0   # rollout with its reward curve
    python sim/experiments.py --set init_temperature=0.01 --results sim/results/rl_sweep_init_temperature.json \
        --out runs/sweep_init_temperature                               # one setting changed, its own file
    python sim/experiments.py --report --docs docs/sim.md --results sim/results/rl_sweep_init_temperature.json \
        --compare sim/results/rl_sweep.json                             # … against the sweep, seed by seed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.assets import DEFAULT_MODEL
from robo_reward.atomic import atomic_path, write_marked_block

ROOT = Path(__file__).resolve().parents[1]
RECORDER = ROOT / "datasets" / "metaworld_demos" / "record_lerobot.py"



@dataclass(frozen=True)
class TaskSpec:
    """A task of the sweep: simulator, task, cameras and episode length (agent steps)."""

    backend: str
    task: str
    instruction: str
    cameras: tuple[str, ...]
    max_episode_steps: int


@dataclass(frozen=True)
class Row:
    """A row of the table: the learner's reward, with or without the demos, and the camera model."""

    name: str
    reward: str
    demos: bool
    model: str | None = None

    @property
    def label(self) -> str:
        model = f" ({self.model} model)" if self.model else ""
        return f"{self.reward}{model}, {'demos' if self.demos else 'no demos'}"


# One rendered view per task: software rendering is the largest cost of a camera-reward
# step here (bench/sim_step.py). The shipped progress model, trained on corner + topview,
# adapted on one corner demo scores the corner view alone; panda-gym's robot and views
# are not ML45's, so its progress model is fitted from scratch on the demos.
TASKS = (
    TaskSpec("metaworld", "drawer-open-v3", "open the drawer", ("corner",), 100),
    TaskSpec("metaworld", "door-open-v3", "open the door", ("corner",), 100),
    TaskSpec("metaworld", "button-press-topdown-v3", "press the button from the top", ("corner",), 100),
    TaskSpec("panda", "PandaPush-v3", "push the cube to the target", ("front",), 25),
)
ROWS = (
    Row("dense", "dense", demos=False),
    Row("sparse+demos", "sparse", demos=True),
    Row("dense+demos", "dense", demos=True),
    Row("shaped-progress", "shaped", demos=True, model="progress"),
    Row("shaped-perceptual", "shaped", demos=True, model="perceptual"),
    Row("raw-progress", "progress", demos=True, model="progress"),
    Row("shaped-keypoint", "shaped", demos=True, model="keypoint"),
    Row("kagi-keypoint", "kagi", demos=True, model="keypoint"),
)
FITTED = ("progress", "perceptual")
"""The camera models fitted per task on its demos (:func:`fit_models`)."""
KEYPOINT_MODEL = "keypoint"
"""The registered model of the keypoint rows (KAGI, docs/keypoints.md): nothing to fit; it
scores the rendered view with its depth, the end effector from the state, and each
episode's ground-truth keypoints (a perfect proposer; the tracking is the model's own)."""


@dataclass
class SweepArgs:
    """Settings of the sweep; those in :meth:`fingerprint` must match a results file's."""

    results: Path = ROOT / "sim" / "results" / "rl_sweep.json"
    """the committed results file (finished runs are added to it)"""
    out: Path = Path("runs/sweep")
    """working folder: demos, fitted models, run folders (eval.csv, final model)"""
    tasks: tuple[str, ...] = ()
    """task names to run (default: all of TASKS)"""
    rows: tuple[str, ...] = ()
    """row names to run (default: all of ROWS)"""
    seeds: int = 3
    """seeds per task and row"""
    steps: int = 15_000
    """agent steps per run"""
    eval_every: int = 1_000
    """agent steps between evaluations"""
    eval_episodes: int = 10
    """episodes per evaluation (success = the simulator's flag at any step)"""
    action_repeat: int = 2
    """simulator steps per agent step (TD-MPC2's Meta-World setting)"""
    image_size: int = 64
    """rendered view side in pixels (the progress model's input; one view, no shadows)"""
    demo_episodes: int = 10
    """successful demonstrations in the demo buffer and for the perceptual model"""
    perturbed_episodes: int = 2
    """failed (perturbed) recordings in the dataset, left out of the demo buffer"""
    utd_ratio: int = 1
    """critic updates per agent step"""
    n_critics: int = 2
    """critic ensemble size"""
    gamma: float = 0.99
    """learner and shaping discount per agent step"""
    bc_weight: float = 0.4
    """β of the learner's behaviour-cloning term on the demos (TD3+BC's α = 2.5; rows without
    demos have none)"""
    workers: int = 1
    """runs at once (one process each, one torch thread each)"""
    extra: dict[str, Any] = field(default_factory=dict)
    """further TrainArgs fields for every run"""

    def fingerprint(self) -> dict[str, Any]:
        """The settings every run of one results file shares."""
        keys = ("steps", "eval_every", "eval_episodes", "action_repeat", "image_size", "demo_episodes",
                "utd_ratio", "n_critics", "gamma", "bc_weight")
        return {**{k: getattr(self, k) for k in keys}, "extra": self.extra}


INTEGER_SETTINGS = ("seeds", "steps", "eval_every", "eval_episodes", "action_repeat", "image_size",
                    "demo_episodes", "utd_ratio", "n_critics", "workers")
"""The SweepArgs fields given as integer command-line options."""


def run_key(spec: TaskSpec, row: Row, seed: int) -> str:
    return f"{spec.task}/{row.name}/seed{seed}"


def load_results(path: Path, args: SweepArgs) -> dict[str, Any]:
    """The results file, created empty for these settings; refuses one made with others."""
    if not path.is_file():
        return {"settings": args.fingerprint(), "runs": {}}
    results = json.loads(path.read_text())
    if results["settings"] != args.fingerprint():
        raise SystemExit(f"{path} holds runs made with {results['settings']}, not {args.fingerprint()}: "
                         "give another --results file or the same settings")
    return results


def save_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


def add_run(path: Path, args: SweepArgs, key: str, record: dict[str, Any]) -> None:
    """Add one finished run to the results file as it is on disk now, read again under a lock:
    sweeps running side by side on one file keep each other's runs."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)  # the lock is the folder's: no lock file left behind
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        results = load_results(path, args)
        results["runs"][key] = record
        save_results(path, results)
    finally:
        os.close(folder)  # closing releases the lock


# 1. Per task: demonstrations and the two camera reward models, made once and cached.

def record_demos(spec: TaskSpec, args: SweepArgs, keypoints: bool) -> Path:
    """A LeRobot dataset of the scripted expert's successful episodes plus a few perturbed ones,
    with depth and each episode's ground-truth keypoints (the recipe's ``--keypoints``). A
    cached recording without them is recorded again where ``keypoints`` rows need them: the
    recipe is deterministic, so the episodes are the same."""
    from robo_reward.data.lerobot import read_recorded

    folder = args.out / "demos" / spec.task
    if (folder / "meta" / "info.json").is_file() and (
            not keypoints or all("keypoints" in e for e in read_recorded(folder).get("episodes", [{}]))):
        return folder
    command = [sys.executable, str(RECORDER), "--backend", spec.backend, "--tasks", spec.task,
               "--cameras", *spec.cameras, "--size", str(args.image_size), "--successes", str(args.demo_episodes),
               "--failures", str(args.perturbed_episodes), "--action-repeat", str(args.action_repeat),
               "--max-steps", str(spec.max_episode_steps), "--vcodec", "h264", "--no-shadows", "--out", str(folder),
               "--repo-id", f"robo_reward/sweep_{spec.task}", "--keypoints", "--overwrite"]
    subprocess.run(command, check=True)
    return folder


def fit_models(spec: TaskSpec, demos: Path, args: SweepArgs) -> dict[str, Path]:
    """``progress``: the ML45 checkpoint adapted on the first demo (Meta-World; panda-gym's
    robot and views are not ML45's: fitted from scratch on the demos); ``perceptual``: fitted
    on all the successful demos."""
    from robo_reward.cli import main as cli

    models = args.out / "models" / spec.task
    one_demo = args.out / "demos" / f"{spec.task}-one"
    paths = {"progress": models / "progress.pt", "perceptual": models / "perceptual.pt"}
    if not paths["progress"].is_file() and spec.backend == "metaworld":
        _one_episode_dataset(demos, one_demo)
        _cli(cli, ["fit", "progress", "--init", str(DEFAULT_MODEL), "--lerobot", str(one_demo),
                   "--task", spec.instruction, "--out", str(paths["progress"]), "--overwrite"])
    elif not paths["progress"].is_file():
        _cli(cli, ["fit", "progress", "--lerobot", str(demos), "--task", spec.instruction,
                   "--out", str(paths["progress"]), "--overwrite"])
    if not paths["perceptual"].is_file():
        _cli(cli, ["fit", "perceptual", "--lerobot", str(demos), "--task", spec.instruction,
                   "--out", str(paths["perceptual"]), "--overwrite"])
    return paths


def _one_episode_dataset(demos: Path, out: Path) -> None:
    """A copy of ``demos`` whose outcomes mark every episode but the first as not a demo
    (videos hard-linked): ``fit --lerobot`` then adapts on exactly one demonstration."""
    import shutil

    from robo_reward.data.lerobot import RECORDED_EPISODES

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(demos, out, copy_function=os.link)
    sidecar = out / RECORDED_EPISODES
    recorded = json.loads(sidecar.read_text())
    first = min(e["episode_index"] for e in recorded["episodes"] if e["outcome"] == "success")
    for episode in recorded["episodes"]:
        if episode["episode_index"] != first:
            episode["outcome"] = "failure" if episode["outcome"] == "failure" else "partial"
    sidecar.unlink()  # a hard link of the input's file: never written through
    sidecar.write_text(json.dumps(recorded, indent=1) + "\n")


def _cli(cli: Any, argv: list[str]) -> None:
    if cli(argv) != 0:
        raise SystemExit(f"robo-reward {' '.join(argv)} failed")


# 2. One run: RLPD with one row's reward, on one seed.

def train_args(spec: TaskSpec, row: Row, seed: int, demos: Path, models: dict[str, Path], args: SweepArgs):
    from robo_reward.rl.train import TrainArgs

    return replace(TrainArgs(
        backend=spec.backend, task=spec.task, instruction=spec.instruction, cameras=spec.cameras,
        image_size=args.image_size, shadows=False, max_episode_steps=spec.max_episode_steps,
        action_repeat=args.action_repeat, reward=row.reward,
        reward_model=(KEYPOINT_MODEL if row.model == KEYPOINT_MODEL else str(models[row.model])) if row.model else None,
        depth=row.model == KEYPOINT_MODEL, ground_truth_keypoints=row.model == KEYPOINT_MODEL,
        algo="rlpd", total_steps=args.steps,
        gamma=args.gamma, learning_starts=1_000 if not row.demos else 500, eval_every=args.eval_every,
        eval_episodes=args.eval_episodes, record_video=False, checkpoint_every=args.steps, seed=seed,
        demos=str(demos) if row.demos else None, demo_episodes=args.demo_episodes, utd_ratio=args.utd_ratio,
        n_critics=args.n_critics, bc_weight=args.bc_weight if row.demos else 0.0, out=str(args.out / "runs" / run_key(spec, row, seed)),
        progress_bar=False,
    ), **args.extra)


def run_one(train_args: Any) -> dict[str, Any]:
    """Train (in a worker process) and return the run's record for the results file."""
    from robo_reward.rl.train import read_eval_log, train

    started = time.perf_counter()
    load = os.getloadavg()[0]
    out = train(train_args)
    rows = read_eval_log(out)
    return {
        "steps": [int(r["steps"]) for r in rows],
        "success_rate": [r["success_rate"] for r in rows],
        "wall_clock_s": round(time.perf_counter() - started, 1),
        "load_at_start": round(load, 2),
        "machine": f"{platform.node()} {os.cpu_count()} cpus",
        "config": run_config(asdict(train_args)),
        "learner": learner_record(out),
    }


def run_config(train_args: dict[str, Any]) -> dict[str, Any]:
    """A run's TrainArgs as its record keeps them (not where it wrote, nor how it showed progress)."""
    return {k: v for k, v in train_args.items() if k not in ("out", "progress_bar")}


def learner_record(out: Path) -> dict[str, list[list[float]]]:
    """The run's logged temperature, mean |Q| and BC error as [step, value] pairs, keyed by
    the scalar's name without ``train/``."""
    from robo_reward.rl.train import read_learner_log

    return {tag.removeprefix("train/"): [[step, round(value, 6)] for step, value in pairs]
            for tag, pairs in read_learner_log(out).items()}


def add_learner_records(args: SweepArgs) -> None:
    """Give the recorded runs made before runs kept their learner's log that log, read from
    their run folders where those are still on disk (the runs themselves are unchanged)."""
    results = load_results(args.results, args)
    added = []
    for key, record in results["runs"].items():
        folder = args.out / "runs" / key
        if "learner" in record or not (folder / "config.json").is_file():
            continue
        if run_config(json.loads((folder / "config.json").read_text())) != record["config"]:
            print(f"{folder}: its config.json is not the recorded run's; left without a learner log")
            continue
        record["learner"] = learner_record(folder)
        added.append(key)
    save_results(args.results, results)
    print(f"learner logs added to {len(added)} run(s) of {args.results}: {', '.join(added) or 'none'}")


def missing_runs(args: SweepArgs, results: dict[str, Any]) -> list[tuple[TaskSpec, Row, int]]:
    """The runs of the grid (tasks × rows × seeds) the results file does not hold yet, seed by
    seed: an interrupted sweep has every row of every task at the same number of seeds."""
    specs = [s for s in TASKS if not args.tasks or s.task in args.tasks]
    rows = [r for r in ROWS if not args.rows or r.name in args.rows]
    missing = [(spec, row, seed) for spec in specs for row in rows for seed in range(args.seeds)
               if run_key(spec, row, seed) not in results["runs"]]
    return sorted(missing, key=lambda item: item[2])


def plan(args: SweepArgs, results: dict[str, Any]) -> str:
    """What :func:`sweep` runs next, each with the mean wall-clock of the row's recorded runs on
    that task."""
    lines, known = [], []
    for spec, row, seed in missing_runs(args, results):
        walls = [results["runs"][run_key(spec, row, s)]["wall_clock_s"] for s in seeds_of(results, spec, row)]
        known += [np.mean(walls) / 60] if walls else []
        cost = f"about {np.mean(walls) / 60:.0f} min, as its {len(walls)} recorded run(s)" if walls else "not run before"
        lines.append(f"  {run_key(spec, row, seed)}: {cost}")
    header = (f"{len(lines)} runs to do, {len(results['runs'])} already in {args.results}; "
              f"{len(known)} of them about {sum(known):.0f} min of runs in all")
    return "\n".join([header, *lines])


def sweep(args: SweepArgs) -> None:
    results = load_results(args.results, args)
    print(plan(args, results), flush=True)
    missing = missing_runs(args, results)
    prepared = {}
    for spec in dict.fromkeys(spec for spec, _, _ in missing):
        wanted = [row for s, row, _ in missing if s == spec]
        demos = record_demos(spec, args, keypoints=any(row.model == KEYPOINT_MODEL for row in wanted))
        models = fit_models(spec, demos, args) if any(row.model in FITTED for row in wanted) else {}
        prepared[spec] = demos, models
    todo = [(run_key(spec, row, seed), train_args(spec, row, seed, *prepared[spec], args))
            for spec, row, seed in missing]
    started = time.perf_counter()
    failed = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(run_one, config): key for key, config in todo}
        for done, future in enumerate(as_completed(futures), 1):
            key = futures[future]
            left = f"about {(time.perf_counter() - started) / done * (len(todo) - done) / 60:.0f} min left"
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 (one broken run must not lose the others: report it, go on)
                failed.append(key)
                print(f"[{done}/{len(todo)}] {key}: FAILED ({type(exc).__name__}: {exc}); {left}", flush=True)
                continue
            add_run(args.results, args, key, record)
            print(f"[{done}/{len(todo)}] {key}: success {record['success_rate'][-1]:.2f} at {record['steps'][-1]} "
                  f"steps, {record['wall_clock_s'] / 60:.1f} min; {left}", flush=True)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed and were not recorded: {', '.join(failed)}")


# 3. The report: table and plot from the results file alone.

def seeds_of(results: dict[str, Any], spec: TaskSpec, row: Row) -> set[int]:
    prefix = f"{spec.task}/{row.name}/seed"
    return {int(k.removeprefix(prefix)) for k in results["runs"] if k.startswith(prefix)}


def curves(results: dict[str, Any], spec: TaskSpec, row: Row,
           seeds: set[int] | None = None) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(steps, success (seeds, evals), wall-clock per run) of one task and row (of ``seeds``
    only, if given), truncated to the evaluations every seed has."""
    runs = [results["runs"][run_key(spec, row, seed)]
            for seed in sorted(seeds_of(results, spec, row) if seeds is None else seeds)]
    if not runs:
        return np.zeros(0), np.zeros((0, 0)), []
    length = min(len(r["steps"]) for r in runs)
    steps = np.array(runs[0]["steps"][:length])
    return steps, np.array([r["success_rate"][:length] for r in runs]), [r["wall_clock_s"] for r in runs]


def interval(values: np.ndarray) -> tuple[float, float]:
    """Student-t 95 % interval of the mean over seeds (the mean itself for one seed)."""
    from scipy import stats

    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(max(values.mean() - half, 0.0)), float(min(values.mean() + half, 1.0))


def steps_to(steps: np.ndarray, success: np.ndarray, level: float = 0.8) -> int | None:
    """The first evaluation at which the success rate, mean over seeds, reaches ``level``."""
    reached = np.flatnonzero(success.mean(axis=0) >= level)
    return int(steps[reached[0]]) if len(reached) else None


def report(results: dict[str, Any], figure: Path | None) -> str:
    """The markdown table of every task and row with runs, and (optionally) the plot."""
    budget = results["settings"]["steps"]
    header = (f"| task | reward | seeds | success at {budget // 1000} k steps, mean [95% CI] | steps to 80 % "
              "| wall-clock per run |")
    lines = [header, "|---|---|---|---|---|---|"]
    specs = [s for s in TASKS if any(k.startswith(f"{s.task}/") for k in results["runs"])]
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, max(len(specs), 1), figsize=(4.6 * max(len(specs), 1), 3.4), squeeze=False)
    for index, spec in enumerate(specs):
        for row in ROWS:
            steps, success, wall = curves(results, spec, row)
            if not len(steps):
                continue
            low, high = interval(success[:, -1])
            reached = steps_to(steps, success)
            lines.append(f"| {spec.task} | {row.label} | {len(success)} | {success[:, -1].mean():.2f} "
                         f"[{low:.2f}, {high:.2f}] at {steps[-1] // 1000} k | "
                         f"{f'{reached // 1000} k' if reached else f'not within {steps[-1] // 1000} k'} | "
                         f"{np.mean(wall) / 60:.1f} min |")
            if figure is not None:
                ax = axes[0][index]
                bands = np.array([interval(success[:, j]) for j in range(success.shape[1])])
                ax.plot(steps / 1000, success.mean(axis=0), label=row.label)
                ax.fill_between(steps / 1000, bands[:, 0], bands[:, 1], alpha=0.15)
        if figure is not None:
            ax = axes[0][index]
            ax.set_title(spec.task, fontsize=9)
            ax.set_xlabel("agent steps (k)")
            ax.set_ylim(-0.05, 1.05)
            ax.legend(fontsize=6)
    if figure is not None:
        axes[0][0].set_ylabel("simulator success rate")
        fig.tight_layout()
        with atomic_path(figure) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
    return "\n".join(lines)


def comparison_report(base: dict[str, Any], other: dict[str, Any]) -> str | None:
    """Every task and row of ``other`` against the same row of ``base``, on the seeds both
    results files hold: steps to 80 % and the success rate at the end (mean over those seeds),
    under a line naming the settings that differ; None when they share no run."""
    changed = ", ".join(f"{key} {base['settings'].get(key)} → {value}"
                        for key, value in other["settings"].items() if base["settings"].get(key) != value)
    budget = other["settings"]["steps"]
    lines = [f"Settings changed: {changed or 'none'}.", "",
             f"| task | reward | seeds | steps to 80 % | success at {budget // 1000} k steps |", "|---|---|---|---|---|"]
    for spec in TASKS:
        for row in ROWS:
            seeds = seeds_of(base, spec, row) & seeds_of(other, spec, row)
            if not seeds:
                continue
            cells = []
            for results in (base, other):
                steps, success, _ = curves(results, spec, row, seeds)
                reached = steps_to(steps, success)
                cells.append((f"{reached // 1000} k" if reached else f"not within {steps[-1] // 1000} k",
                              f"{success[:, -1].mean():.2f}"))
            names = ", ".join(str(seed) for seed in sorted(seeds))
            lines.append(f"| {spec.task} | {row.label} | {names} | {cells[0][0]} → {cells[1][0]} "
                         f"| {cells[0][1]} → {cells[1][1]} |")
    return "\n".join(lines) if len(lines) > 4 else None


LEARNER_COLUMNS = (("ent_coef", "temperature α"), ("q_abs_mean", "mean abs Q"), ("bc_mse", "BC error"))
"""The learner scalars of the second table (their names in a run's ``learner`` record) and headings."""


def learner_report(results: dict[str, Any]) -> str | None:
    """The table of what the learner logged (mean over the seeds that kept it) at 1 k, 5 k,
    10 k agent steps and the budget, or None when no run has a learner log."""
    budget = results["settings"]["steps"]
    at = sorted({1_000, 5_000, 10_000, budget} & set(range(budget + 1)))
    when = " / ".join(f"{s // 1000}" for s in at)
    lines = [f"| task | reward | seeds | {' | '.join(f'{name} at {when} k' for _, name in LEARNER_COLUMNS)} |",
             "|---|---|---|" + "---|" * len(LEARNER_COLUMNS)]
    for spec in TASKS:
        for row in ROWS:
            runs = [results["runs"][run_key(spec, row, seed)] for seed in sorted(seeds_of(results, spec, row))]
            logs = [run["learner"] for run in runs if "learner" in run]
            if not logs:
                continue
            cells = []
            for key, _ in LEARNER_COLUMNS:
                series = [log[key] for log in logs if log.get(key)]
                cells.append(" / ".join(f"{np.mean([logged_at(pairs, step) for pairs in series]):.3g}"
                                        for step in at) if series else "–")
            lines.append(f"| {spec.task} | {row.label} | {len(logs)} | {' | '.join(cells)} |")
    return "\n".join(lines) if len(lines) > 2 else None


def logged_at(pairs: list[list[float]], step: int) -> float:
    """The last value logged at or before ``step`` (the first one if none was)."""
    before = [value for logged, value in pairs if logged <= step]
    return before[-1] if before else pairs[0][1]


def docs_block(results: Path) -> str:
    """The generated block of docs/sim.md a results file fills: ``rl-sweep`` for
    ``rl_sweep.json``, ``rl-sweep-dense-30k`` for ``rl_sweep_dense_30k.json`` (its plot:
    ``sim_<stem>.png``)."""
    return results.stem.replace("_", "-")


def results_digest(path: Path) -> str:
    """A short hash of the results file, printed with the report so a table names its data."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


# 4. A rollout video of a finished run, with the reward model's progress curve.

def rollout_video(args: SweepArgs, task: str, row_name: str, seed: int) -> Path:
    """Replay a finished run's final policy once, rendering its camera, and write the
    episode with its row's camera model's curve (the progress model's for rows without one)."""
    from robo_reward.models import load_model
    from robo_reward.rl.callbacks import run_episode, write_rollout
    from robo_reward.rl.rlpd import RLPD
    from robo_reward.rl.train import make_camera_env
    from robo_reward.types import Task

    spec = next(s for s in TASKS if s.task == task)
    row = next(r for r in ROWS if r.name == row_name)
    demos = args.out / "demos" / spec.task
    models = fit_models(spec, demos, args)
    config = train_args(spec, row, seed, demos, models, args)
    learner = RLPD.load(Path(config.out) / "final_model.zip", device="cpu")
    env = make_camera_env(config, seed + 10_000, render=True)
    episode = run_episode(env, learner, record=True)
    path = args.out / "videos" / f"{task}_{row_name}_seed{seed}_{'success' if episode.succeeded else 'failure'}.mp4"
    write_rollout(path, episode, load_model(config.reward_model or str(models["progress"])), Task(spec.instruction))
    env.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = SweepArgs()
    parser.add_argument("--results", type=Path, default=defaults.results)
    parser.add_argument("--out", type=Path, default=defaults.out)
    parser.add_argument("--tasks", nargs="*", default=[])
    parser.add_argument("--rows", nargs="*", default=[], choices=[r.name for r in ROWS])
    for name in INTEGER_SETTINGS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--bc-weight", type=float, default=defaults.bc_weight)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="a further TrainArgs field for every run, e.g. --set backup_entropy=true")
    parser.add_argument("--plan", action="store_true", help="only list the runs the sweep would do, and their cost")
    parser.add_argument("--report", action="store_true", help="only write the table (and plot) from --results")
    parser.add_argument("--add-learner-logs", action="store_true",
                        help="give recorded runs without a learner log the one in their run folder under --out")
    parser.add_argument("--docs", type=Path, help="with --report: write the table into this markdown file")
    parser.add_argument("--compare", type=Path, metavar="BASE_RESULTS",
                        help="also compare --results' rows with this results file's, on the seeds both hold")
    parser.add_argument("--video", nargs=3, metavar=("TASK", "ROW", "SEED"),
                        help="write a rollout video of a finished run (runs/sweep/videos/…)")
    parsed = parser.parse_args()
    args = SweepArgs(results=parsed.results, out=parsed.out, tasks=tuple(parsed.tasks), rows=tuple(parsed.rows),
                     extra={k: json.loads(v) for k, v in (item.split("=", 1) for item in parsed.set)},
                     bc_weight=parsed.bc_weight,
                     **{name: getattr(parsed, name) for name in INTEGER_SETTINGS})
    if parsed.video:
        task, row, seed = parsed.video
        print(rollout_video(args, task, row, int(seed)))
        return
    if parsed.plan:
        print(plan(args, load_results(args.results, args)))
        return
    if parsed.add_learner_logs:
        add_learner_records(args)
    elif not parsed.report:
        sweep(args)
    results = json.loads(args.results.read_text())
    figure = (parsed.docs.parent / f"sim_{args.results.stem}.png") if parsed.docs else None
    table, learner = report(results, figure), learner_report(results)
    print(f"results {args.results} (sha256 {results_digest(args.results)})\n{table}")
    if learner:
        print(f"\nwhat the learner logged:\n{learner}")
    comparison = comparison_report(json.loads(parsed.compare.read_text()), results) if parsed.compare else None
    if comparison:
        print(f"\nagainst {parsed.compare}:\n{comparison}")
    if parsed.docs:
        block = docs_block(args.results)
        write_marked_block(parsed.docs, block, table)
        if learner:
            write_marked_block(parsed.docs, f"{block}-learner", learner)
        if comparison:
            write_marked_block(parsed.docs, f"{block}-vs-{docs_block(parsed.compare)}", comparison)


if __name__ == "__main__":
    main()
