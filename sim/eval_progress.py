"""Evaluate a ``progress`` checkpoint on Meta-World ML45's held-out TEST tasks.

For every test task in the manifest (``datasets/metaworld_ml45/record.py``: split
``eval`` holds success / partial / failure episodes, split ``adapt`` one demo):

* zero-shot — the checkpoint as it is (it never saw these tasks);
* adapted — the checkpoint fine-tuned on the task's single ``adapt`` demo
  (what ``robo-reward fit progress --init CKPT --demos ONE_DEMO`` does).

Metrics (GVL's VOC, DESIGN.md §3): VOC = Spearman ρ of progress vs frame index on
successful episodes, fused and per single view (the batch holds that view only, so the
other is missing); reversed VOC scores the reversed frame sequence for real, with its own
first frame (the completed scene) as the reference; success AUROC and completion
accuracy (final success probability > ½, mean of the last 3 frames) over success vs
partial + failure episodes.

    python sim/eval_progress.py --episodes runs/metaworld_ml45 \\
        --model robo_reward/assets/progress_ml45.pt --json runs/eval_progress.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from robo_reward.data.episodes import Sampling, load_manifest
from robo_reward.metrics import auroc, completion_accuracy, voc
from robo_reward.models import load_model
from robo_reward.types import FrameBatch, Scores, Task

FINAL_WINDOW = 3


def frames_of(episode) -> FrameBatch:
    """All frames of an episode in one batch."""
    return next(episode.iter_batches(100_000, Sampling()))


def score(model, batch: FrameBatch, task: Task, views: list[str] | None = None) -> Scores:
    """Score ``batch`` (only ``views`` if given) with its first frame as the reference."""
    if views is not None:
        batch = FrameBatch(views={v: batch.views[v] for v in views}, timestamps_ns=batch.timestamps_ns)
    return model.score(batch, task, batch.select(np.arange(1)))


def reversed_batch(batch: FrameBatch) -> FrameBatch:
    order = np.arange(len(batch))[::-1]
    return FrameBatch(views={v: np.ascontiguousarray(x[order]) for v, x in batch.views.items()},
                      timestamps_ns=batch.timestamps_ns)


def evaluate(model, episodes: list) -> dict:
    """Metrics of ``model`` on one task's eval episodes."""
    views = model.views
    fused, single, reverse, finals, completed = [], {v: [] for v in views}, [], [], []
    for episode in episodes:
        batch = frames_of(episode)
        scores = score(model, batch, episode.task)
        finals.append(float(scores.success[-FINAL_WINDOW:].mean()))
        completed.append(episode.outcome == "success")
        if episode.outcome != "success":
            continue
        fused.append(voc(scores.progress))
        for view in views:
            if view in batch.views:
                single[view].append(voc(score(model, batch, episode.task, [view]).progress))
        reverse.append(voc(score(model, reversed_batch(batch), episode.task).progress))
    finals_a, completed_a = np.array(finals), np.array(completed)
    return {
        "voc": float(np.nanmean(fused)),
        "voc_views": {v: float(np.nanmean(s)) for v, s in single.items() if s},
        "voc_reversed": float(np.nanmean(reverse)),
        "success_auroc": auroc(finals_a, completed_a),
        "completion_accuracy": completion_accuracy(finals_a, completed_a),
        "episodes": len(episodes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, required=True, help="the ML45 manifest folder")
    parser.add_argument("--model", type=Path, required=True, help="a progress checkpoint")
    parser.add_argument("--adapt-steps", type=int, help="override the checkpoint's adapt_steps")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    eval_eps = load_manifest(args.episodes, split="eval")
    adapt_eps = load_manifest(args.episodes, split="adapt")
    tasks = list(dict.fromkeys(e.metadata.get("env", e.task.instruction) for e in eval_eps))
    results = {}
    for task in tasks:
        episodes = [e for e in eval_eps if e.metadata.get("env", e.task.instruction) == task]
        demo = [e for e in adapt_eps if e.metadata.get("env", e.task.instruction) == task][:1]
        zero = evaluate(load_model(args.model), episodes)
        adapted_model = load_model(args.model)
        if args.adapt_steps:
            adapted_model.config.adapt_steps = args.adapt_steps
        started = time.perf_counter()
        adapted_model.fit(demo)
        adapt_seconds = time.perf_counter() - started
        adapted = evaluate(adapted_model, episodes)
        results[task] = {"zero_shot": zero, "adapted": adapted, "adapt_seconds": adapt_seconds}
        print(f"{task}: zero-shot VOC {zero['voc']:.3f} (reversed {zero['voc_reversed']:.3f}), "
              f"adapted VOC {adapted['voc']:.3f} (reversed {adapted['voc_reversed']:.3f}) "
              f"in {adapt_seconds:.0f} s", flush=True)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def markdown(results: dict) -> str:
    """The evaluation table, one row per task and setting plus the means."""
    views = sorted({v for r in results.values() for v in r["zero_shot"]["voc_views"]})
    head = ["task", "setting", "VOC fused", *[f"VOC {v}" for v in views], "VOC reversed", "success AUROC",
            "completion acc."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting in ("zero_shot", "adapted"):
        rows = [(task, r[setting]) for task, r in results.items()]
        rows.append(("**mean**", {k: (float(np.nanmean([r[k] for _, r in rows]))
                                      if k != "voc_views" else
                                      {v: float(np.nanmean([r[k][v] for _, r in rows])) for v in views})
                                  for k in rows[0][1] if k != "episodes"}))
        for task, r in rows:
            cells = [task, setting.replace("_", "-"), f"{r['voc']:.3f}", *[f"{r['voc_views'][v]:.3f}" for v in views],
                     f"{r['voc_reversed']:.3f}", f"{r['success_auroc']:.3f}", f"{r['completion_accuracy']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
