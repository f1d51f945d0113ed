"""Evaluate a ``progress`` checkpoint on Meta-World ML45's held-out TEST tasks.

For every test task in the manifest (``datasets/metaworld_ml45/record.py``: split
``eval`` holds success / partial / failure episodes, split ``adapt`` one demo):

* zero-shot — the checkpoint as it is (it never saw these tasks);
* adapted — the checkpoint fine-tuned on the task's single ``adapt`` demo, what
  ``robo-reward fit progress --init CKPT --demos ONE_DEMO --option threads=1`` does;

and for every view set: ``fused`` (all views of the episode) and each view alone (the
episode restricted to that one camera, so the model sees the other one as missing).

Scoring and metrics go through the same code as ``robo-reward label`` / ``robo-reward
eval``: each (task, mode, view set) is labeled with
:func:`robo_reward.labeling.label_episodes` (``score_reversed=True``) into
``<work>/<task>/<mode>/<views>/`` and measured with
:func:`robo_reward.evaluation.compute_metrics` on its ``scores.parquet``. On top, 95 %
bootstrap intervals (:func:`robo_reward.metrics.bootstrap_ci`, episodes resampled within
each outcome, and within each task for the mean over tasks) of VOC, reversed VOC,
success AUROC and completion accuracy.

The results go to a JSON file (``--json``) and, with ``--docs``, into the marked results
section of a markdown file (between ``<!-- results:start -->`` and ``<!-- results:end -->``);
``--render`` rewrites that section from an existing JSON without evaluating again.

    MUJOCO_GL=osmesa python datasets/metaworld_ml45/record.py --out runs/metaworld_ml45_eval --demos 0 \\
        --eval-success 10 --eval-partial 5 --eval-failure 5 \\
        --tasks bin-picking-v3 box-close-v3 door-lock-v3 door-unlock-v3 hand-insert-v3
    python sim/eval_progress.py --episodes runs/metaworld_ml45_eval \\
        --model robo_reward/assets/progress_ml45.pt --jobs 2 \\
        --json sim/results/progress_ml45_eval.json --docs docs/progress_model.md
    python sim/eval_progress.py --render sim/results/progress_ml45_eval.json --docs docs/progress_model.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.atomic import atomic_path, write_marked_block
from robo_reward.data.episodes import VideoEpisode, load_manifest
from robo_reward.metrics import auroc, bootstrap_ci, completion_accuracy

FORMAT = "robo_reward.progress_eval/v1"
MODES = ("zero_shot", "adapted")
FUSED = "fused"
METRICS = ("voc", "voc_reversed", "success_auroc", "completion_accuracy")
LABELS = {"voc": "VOC", "voc_reversed": "reversed VOC", "success_auroc": "success AUROC",
          "completion_accuracy": "completion acc."}
DOCS_BLOCK = "progress-eval"  # the generated block of docs/progress_model.md


# ---------------------------------------------------------------- statistics on per-episode rows
#
# compute_metrics gives the point estimates; the bootstrap needs the same statistics of a
# resample of its per-episode rows. These mirror compute_metrics' definitions, and
# `check_point` asserts that they reproduce its numbers on the full sample.


def _mean_voc(values: np.ndarray, success: np.ndarray) -> float:
    picked = values[success]
    picked = picked[np.isfinite(picked)]
    return float(picked.mean()) if len(picked) else float("nan")


def _statistic(metric: str):
    if metric in ("voc", "voc_reversed"):
        return lambda values, final, success: _mean_voc(values, success)
    if metric == "success_auroc":
        return lambda values, final, success: auroc(final, success)
    return lambda values, final, success: completion_accuracy(final, success)


def _columns(rows: list[dict], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = metric if metric in ("voc", "voc_reversed") else "final_success"
    values = np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
    final = np.array([np.nan if r.get("final_success") is None else r["final_success"] for r in rows], dtype=float)
    success = np.array([r["outcome"] == "success" for r in rows])
    return values, final, success


def interval(rows: list[dict], metric: str, resamples: int, seed: int) -> dict[str, float | None]:
    """Point estimate and 95 % bootstrap interval of ``metric`` over one task's episodes."""
    values, final, success = _columns(rows, metric)
    ci = bootstrap_ci(_statistic(metric), values, final, success, strata=success, resamples=resamples, seed=seed)
    return _finite({"estimate": ci.estimate, "low": ci.low, "high": ci.high})


def pooled_interval(per_task: dict[str, list[dict]], metric: str, resamples: int, seed: int) -> dict:
    """Mean over tasks of ``metric`` and its bootstrap interval (episodes resampled within task × outcome)."""
    tasks = list(per_task)
    cols = [_columns(per_task[t], metric) for t in tasks]
    values, final, success = (np.concatenate([c[i] for c in cols]) for i in range(3))
    task_id = np.concatenate([np.full(len(per_task[t]), i) for i, t in enumerate(tasks)])
    statistic = _statistic(metric)

    def mean_over_tasks(v, f, s, tid):
        return float(np.mean([statistic(v[tid == i], f[tid == i], s[tid == i]) for i in range(len(tasks))]))

    ci = bootstrap_ci(mean_over_tasks, values, final, success, task_id, strata=task_id * 2 + success,
                      resamples=resamples, seed=seed)
    return _finite({"estimate": ci.estimate, "low": ci.low, "high": ci.high})


def _finite(d: dict) -> dict:
    return {k: (float(v) if v is not None and np.isfinite(v) else None) for k, v in d.items()}


def check_point(metrics: dict, rows: list[dict], where: str) -> None:
    """The row statistics must reproduce compute_metrics' point estimates."""
    for metric in METRICS:
        values, final, success = _columns(rows, metric)
        mine, theirs = _statistic(metric)(values, final, success), metrics.get(metric)
        if theirs is None and not np.isfinite(mine):
            continue
        if theirs is None or not np.isclose(mine, theirs, atol=1e-9):
            raise RuntimeError(f"{where}: {metric} from per-episode rows is {mine}, compute_metrics says {theirs}; "
                               "update eval_progress.py's statistics to the evaluator's definition")


# ---------------------------------------------------------------- labeling through the pipeline


def restrict(episode: VideoEpisode, view: str) -> VideoEpisode:
    """The same episode with only one camera view."""
    return VideoEpisode(name=episode.name, task=episode.task, views={view: episode.views[view]},
                        outcome=episode.outcome, metadata=dict(episode.metadata))


def measure(model, episodes: list[VideoEpisode], out: Path, resamples: int, seed: int) -> dict[str, Any]:
    """Label ``episodes`` with ``model`` into ``out`` and measure the run as ``robo-reward eval`` does."""
    from robo_reward.evaluation import compute_metrics, load_scores
    from robo_reward.labeling import LabelConfig, label_episodes

    label_episodes(model, episodes, LabelConfig(score_reversed=True), out, overwrite=True, report=False)
    metrics = compute_metrics(load_scores(out))
    rows = metrics["per_episode"]
    check_point(metrics, rows, str(out))
    counts = metrics["episodes"]
    n = sum(counts.get(o, 0) for o in ("success", "partial", "failure"))
    predicted = sum(1 for r in rows if r.get("final_success") is not None and r["final_success"] > 0.5)
    result = {metric: interval(rows, metric, resamples, seed) for metric in METRICS}
    result |= {
        "episodes": counts,
        "predicted_success": predicted,  # episodes whose final success probability > 1/2
        "majority_baseline": max(counts.get("success", 0), n - counts.get("success", 0)) / n if n else None,
        "how": {k: v for k, v in metrics.items() if k not in (*METRICS, "episodes", "per_episode")},
        "per_episode": [{k: _round(r.get(k)) for k in ("episode", "outcome", "voc", "voc_reversed", "final_progress",
                                                       "final_success")} for r in rows],
    }
    return result


def _round(value: Any) -> Any:
    return round(value, 5) if isinstance(value, float) else value


def evaluate_task(task: str, episodes: list[VideoEpisode], demo: VideoEpisode, model_path: Path, work: Path,
                  adapt_steps: int | None, resamples: int, seed: int) -> dict[str, Any]:
    """Both modes and every view set of one task; runs in a worker process."""
    import torch

    from robo_reward.models import load_model

    torch.set_num_threads(1)
    views = list(episodes[0].views)
    view_sets = {FUSED: episodes, **{v: [restrict(e, v) for e in episodes] for v in views}}
    result: dict[str, Any] = {}
    for mode in MODES:
        started = time.perf_counter()
        model = load_model(model_path)
        if mode == "adapted":
            options = {"threads": 1} | ({"adapt_steps": adapt_steps} if adapt_steps else {})
            model.config = replace(model.config, **options)  # = fit progress --init … --option threads=1
            model.fit([demo])
        fit_s = time.perf_counter() - started
        result[mode] = {name: measure(model, eps, work / task / mode / name, resamples, seed)
                        for name, eps in view_sets.items()}
        result[mode]["seconds"] = {"fit": round(fit_s, 1), "total": round(time.perf_counter() - started, 1)}
        print(f"{task} {mode}: VOC {result[mode][FUSED]['voc']['estimate']:.3f} "
              f"({result[mode]['seconds']['total']:.0f} s)", flush=True)
    result["adapt_demo"] = demo.name
    return result


def difference(fused: list[dict], single: list[dict]) -> list[dict]:
    """Per-episode rows whose ``voc`` is the fused VOC minus the single-view VOC of the same episode."""
    other = {r["episode"]: r for r in single}
    rows = []
    for r in fused:
        a, b = r.get("voc"), other[r["episode"]].get("voc")
        rows.append({"episode": r["episode"], "outcome": r["outcome"], "final_success": r.get("final_success"),
                     "voc": None if a is None or b is None else a - b})
    return rows


def task_of(episode) -> str:
    return episode.metadata.get("env", episode.task.instruction)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def code_state() -> dict[str, Any]:
    """The commit evaluated and the files of the package that differ from it (a shared working tree)."""
    import subprocess

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], capture_output=True, text=True, check=True,
                                  cwd=Path(__file__).resolve().parents[1]).stdout.rstrip("\n")
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {"commit": git("rev-parse", "HEAD").strip() or None,
            "modified": [line[3:] for line in git("status", "--porcelain", "--", "robo_reward").splitlines()]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from robo_reward.models import load_model

    eval_eps = load_manifest(args.episodes, split="eval")
    adapt_eps = load_manifest(args.episodes, split="adapt")
    tasks = sorted({task_of(e) for e in eval_eps} & set(args.tasks or {task_of(e) for e in eval_eps}))
    jobs = []
    for task in tasks:
        episodes = [e for e in eval_eps if task_of(e) == task]
        demos = [e for e in adapt_eps if task_of(e) == task]
        if not demos:
            raise SystemExit(f"{args.episodes}: no 'adapt' demo for {task}")
        jobs.append((task, episodes, demos[0], args.model, args.work, args.adapt_steps, args.resamples, args.seed))
    started, cpu0 = time.perf_counter(), _cpu_seconds()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            outputs = list(pool.map(evaluate_task, *zip(*jobs)))
    else:
        outputs = [evaluate_task(*job) for job in jobs]
    per_task = dict(zip(tasks, outputs))
    views = [v for v in per_task[tasks[0]][MODES[0]] if v != "seconds"]
    overall = {mode: {name: {metric: pooled_interval({t: per_task[t][mode][name]["per_episode"] for t in tasks},
                                                     metric, args.resamples, args.seed)
                             for metric in METRICS} for name in views} for mode in MODES}
    for mode in MODES:  # paired by episode: fused VOC minus single-view VOC
        for view in views:
            if view != FUSED:
                overall[mode][f"{FUSED}_minus_{view}"] = {"voc": pooled_interval(
                    {t: difference(per_task[t][mode][FUSED]["per_episode"], per_task[t][mode][view]["per_episode"])
                     for t in tasks}, "voc", args.resamples, args.seed)}
    model = load_model(args.model)
    train_tasks = set(getattr(model, "instructions", []))
    return {
        "format": FORMAT,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "model": {"path": str(args.model), "sha256": sha256(args.model), "description": model.describe(),
                  "adapt_steps": args.adapt_steps or model.config.adapt_steps},
        "episodes": {"manifest": str(args.episodes), "sha256": sha256(Path(args.episodes) / "episodes.json"),
                     "recorded": json.loads((Path(args.episodes) / "episodes.json").read_text()).get("runs", []),
                     "test_instructions_in_training": sorted(
                         {e.task.instruction for e in eval_eps if task_of(e) in tasks} & train_tasks)},
        "evaluator": {"labeling": "robo_reward.labeling.label_episodes(LabelConfig(score_reversed=True))",
                      "metrics": "robo_reward.evaluation.compute_metrics",
                      "bootstrap": {"function": "robo_reward.metrics.bootstrap_ci", "resamples": args.resamples,
                                    "level": 0.95, "seed": args.seed,
                                    "strata": "outcome (success vs not) within each task; the mean over tasks "
                                              "resamples within task x outcome"},
                      "config": asdict(_label_config())},
        "code": code_state(),
        "wall_clock_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(_cpu_seconds() - cpu0, 1),
        "jobs": args.jobs,
        "tasks": per_task,
        "overall": overall,
    }


def _label_config():
    from robo_reward.labeling import LabelConfig

    return LabelConfig(score_reversed=True)


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ---------------------------------------------------------------- the markdown section


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}".replace("-", "−")


def cell(ci: dict) -> str:
    """``0.21 [0.10, 0.33]``."""
    if ci["estimate"] is None:
        return "n/a"
    return f"{_fmt(ci['estimate'])} [{_fmt(ci['low'])}, {_fmt(ci['high'])}]"


def markdown(results: dict[str, Any]) -> str:
    """The generated results section: the table, the counts, the targets and the caveats."""
    tasks = results["tasks"]
    first = next(iter(tasks.values()))
    views = [v for v in first[MODES[0]] if v not in (FUSED, "seconds")]
    head = ["task", "mode", "VOC fused", *[f"VOC {v} only" for v in views], "reversed VOC fused",
            "success AUROC fused", "completion acc. fused", "majority class", "predicted success"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for mode in MODES:
        for task, r in tasks.items():
            fused = r[mode][FUSED]
            n = fused["episodes"]
            lines.append("| " + " | ".join([
                task, mode.replace("_", "-"), cell(fused["voc"]), *[cell(r[mode][v]["voc"]) for v in views],
                cell(fused["voc_reversed"]), cell(fused["success_auroc"]), cell(fused["completion_accuracy"]),
                _fmt(fused["majority_baseline"]),
                f"{fused['predicted_success']} / {sum(n.get(o, 0) for o in ('success', 'partial', 'failure'))}",
            ]) + " |")
        o = results["overall"][mode]
        total_pred = sum(r[mode][FUSED]["predicted_success"] for r in tasks.values())
        total = sum(sum(r[mode][FUSED]["episodes"].get(k, 0) for k in ("success", "partial", "failure"))
                    for r in tasks.values())
        majority = float(np.mean([r[mode][FUSED]["majority_baseline"] for r in tasks.values()]))
        lines.append("| " + " | ".join([
            "**mean of tasks**", mode.replace("_", "-"), cell(o[FUSED]["voc"]), *[cell(o[v]["voc"]) for v in views],
            cell(o[FUSED]["voc_reversed"]), cell(o[FUSED]["success_auroc"]), cell(o[FUSED]["completion_accuracy"]),
            _fmt(majority), f"{total_pred} / {total}",
        ]) + " |")
    counts = first[MODES[0]][FUSED]["episodes"]
    model = results["model"]
    seconds = {t: r["adapted"]["seconds"]["fit"] for t, r in tasks.items()}
    lines += [
        "",
        (f"Generated by `sim/eval_progress.py` from `sim/results/progress_ml45_eval.json`: model "
        f"`{model['path']}` (sha256 `{model['sha256'][:12]}…`), per task {counts.get('success', 0)} success / "
        f"{counts.get('partial', 0)} partial / {counts.get('failure', 0)} failure `eval` episodes and one `adapt` "
        f"demo; cells are the estimate and its 95 % bootstrap interval "
        f"({results['evaluator']['bootstrap']['resamples']} resamples of the episodes, seed "
        f"{results['evaluator']['bootstrap']['seed']}). VOC and reversed VOC are over the "
        f"{counts.get('success', 0)} successful episodes of a task; AUROC and completion accuracy over all "
        f"{sum(counts.get(o, 0) for o in ('success', 'partial', 'failure'))}. \"majority class\" is the accuracy of a "
        f"constant classifier; \"predicted success\" counts episodes whose final success probability is > ½. "
        f"Adaptation ({model['adapt_steps']} steps, 1 thread): "
        f"{min(seconds.values()):.0f}–{max(seconds.values()):.0f} s per task. Whole evaluation: "
        f"{results['wall_clock_s'] / 60:.1f} min wall-clock, {results['cpu_s'] / 60:.1f} min CPU, "
        f"{results['jobs']} worker process(es), on the shared 2-core machine."),
        "",
        "| claim | measured (mean of tasks, 95 % interval) | verdict |",
        "|---|---|---|",
        *targets(results, views),
        "",
        *caveats(results),
    ]
    return "\n".join(lines)


def _verdict(ci: dict, threshold: float, above: bool) -> str:
    est, low, high = ci["estimate"], ci["low"], ci["high"]
    if est is None:
        return "not measured"
    if above:
        return "met" if low is not None and low >= threshold else "**missed**" if high < threshold else \
            ("point estimate meets it, interval straddles it" if est >= threshold else
             "point estimate misses it, interval straddles it")
    return "met" if high is not None and high < threshold else "**missed**" if low >= threshold else \
        ("point estimate meets it, interval straddles it" if est < threshold else
         "point estimate misses it, interval straddles it")


def targets(results: dict, views: list[str]) -> list[str]:
    o = results["overall"]
    rows = [
        ("zero-shot VOC ≥ 0.6", o["zero_shot"][FUSED]["voc"], 0.6, True),
        ("adapted VOC ≥ 0.9", o["adapted"][FUSED]["voc"], 0.9, True),
        ("zero-shot reversed VOC < 0", o["zero_shot"][FUSED]["voc_reversed"], 0.0, False),
        ("adapted reversed VOC < 0", o["adapted"][FUSED]["voc_reversed"], 0.0, False),
    ]
    lines = [f"| {name} | {cell(ci)} | {_verdict(ci, t, above)} |" for name, ci, t, above in rows]
    for mode in MODES:
        fused = o[mode][FUSED]["voc"]
        best = max(views, key=lambda v: o[mode][v]["voc"]["estimate"] if o[mode][v]["voc"]["estimate"] is not None
                   else -np.inf)
        single = o[mode][best]["voc"]
        diff = o[mode].get(f"{FUSED}_minus_{best}", {}).get("voc")
        if diff is None or diff["estimate"] is None:
            verdict = "not measured"
        elif diff["low"] >= 0:
            verdict = "met"
        elif diff["high"] < 0:
            verdict = "**missed**"
        else:
            verdict = "no measurable difference (the interval of the difference holds 0)"
        lines.append(f"| {mode.replace('_', '-')} fused VOC ≥ best single view ({best}) | "
                     f"{_fmt(fused['estimate'], 3)} vs {_fmt(single['estimate'], 3)}; paired difference "
                     f"{cell(diff) if diff else 'n/a'} | {verdict} |")
    return lines


def caveats(results: dict) -> list[str]:
    """Plain statements that follow from the numbers (generated, so they stay true)."""
    out = []
    every = list(results["tasks"])

    def which(tasks: list[str]) -> str:
        return f"every task ({len(tasks)} of {len(every)})" if tasks == every else ", ".join(tasks)

    for mode in MODES:
        label = mode.replace("_", "-")
        rows = {t: r[mode][FUSED] for t, r in results["tasks"].items()}
        constant = [t for t, r in rows.items() if r["completion_accuracy"]["estimate"] is not None
                    and abs(r["completion_accuracy"]["estimate"] - r["majority_baseline"]) < 1e-9]
        worse = [t for t, r in rows.items() if r["completion_accuracy"]["estimate"] is not None
                 and r["completion_accuracy"]["estimate"] < r["majority_baseline"] - 1e-9]
        none_pred = [t for t, r in rows.items() if r["predicted_success"] == 0]
        if constant:
            out.append(f"- {label}: completion accuracy equals the majority-class fraction on "
                       f"{which(constant)}: no better than a constant classifier there"
                       + (f"; it predicts success for no episode on {which(none_pred)}" if none_pred else "")
                       + ".")
        reach = [t for t, r in rows.items() if t not in constant and t not in worse
                 and r["completion_accuracy"]["low"] is not None
                 and r["completion_accuracy"]["low"] <= r["majority_baseline"] + 1e-9]
        if reach:
            out.append(f"- {label}: the completion-accuracy interval reaches down to a constant classifier's "
                       f"accuracy on {which(reach)}.")
        if worse:
            out.append(f"- {label}: completion accuracy is below a constant classifier on {which(worse)}.")
        chance = [t for t, r in rows.items() if r["success_auroc"]["low"] is not None and r["success_auroc"]["low"] <= 0.5]
        if chance:
            out.append(f"- {label}: the success-AUROC interval includes chance (0.5) on {which(chance)}.")
        rising = {o: [np.nanmean([e["voc"] for e in r["per_episode"] if e["outcome"] == o and e["voc"] is not None])
                      for r in rows.values()] for o in ("partial", "failure")}
        out.append(f"- {label}: VOC is measured on successes only. The mean per-episode VOC (mean of tasks) is "
                   f"{_fmt(float(np.mean(rising['partial'])))} on the partial episodes (they do progress part-way, "
                   f"then stop) and {_fmt(float(np.mean(rising['failure'])))} on the failures (a random arm walk "
                   "that makes no task progress)"
                   + (": the curve rises on failures too, so a high VOC alone does not show that the model "
                      "tracks the task." if np.mean(rising["failure"]) > 0.3 else "."))
        negative = [t for t, r in rows.items() if r["voc"]["high"] is not None and r["voc"]["high"] < 0]
        if negative:
            out.append(f"- {label}: VOC is negative (whole interval below 0) on {which(negative)}: "
                       "the model rates those episodes backwards.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, help="the ML45 manifest folder (splits eval and adapt)")
    parser.add_argument("--model", type=Path, help="a progress checkpoint")
    parser.add_argument("--tasks", nargs="*", help="only these test tasks (default: all in the manifest)")
    parser.add_argument("--adapt-steps", type=int, help="override the checkpoint's adapt_steps")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--jobs", type=int, default=1, help="tasks evaluated in parallel processes")
    parser.add_argument("--work", type=Path, default=Path("runs/eval_progress"),
                        help="folder for the labeled runs (scores.parquet, metrics.json per task/mode/views)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--docs", type=Path, help="rewrite this markdown file's results section")
    parser.add_argument("--render", type=Path, help="only regenerate --docs from this results JSON")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if args.render:
        results = json.loads(args.render.read_text())
    else:
        if not args.episodes or not args.model:
            parser.error("--episodes and --model are required (or --render RESULTS.json)")
        results = run(args)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(args.json) as tmp:
                tmp.write_text(json.dumps(results, indent=1) + "\n")
            print(f"wrote {args.json}")
    print(markdown(results))
    if args.docs:
        write_marked_block(args.docs, DOCS_BLOCK, markdown(results))
        print(f"rewrote the results section of {args.docs}")


if __name__ == "__main__":
    main()
