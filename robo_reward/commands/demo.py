"""``robo-reward demo``: the main job on the embedded default, with no network and no GPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from robo_reward.commands._common import add_subcommand

EXAMPLES = """\
  robo-reward demo --out runs/demo
  robo-reward demo --out runs/demo --overwrite
"""


def add_parser(subparsers) -> None:
    parser = add_subcommand(
        subparsers, "demo",
        "Label the shipped Meta-World sample's eval episodes (recordings the default model never saw, of a "
        "task it WAS trained on) with the embedded default model and write scores, metrics and an HTML report.",
        EXAMPLES, run,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def run(args: argparse.Namespace) -> int:
    from robo_reward.assets import DEFAULT_MODEL, SAMPLE_DIR
    from robo_reward.data.episodes import load_manifest
    from robo_reward.evaluation import format_metrics, read_metrics
    from robo_reward.labeling import LabelConfig, label_episodes
    from robo_reward.models import load_model

    model = load_model(DEFAULT_MODEL)
    episodes = load_manifest(SAMPLE_DIR, split="eval")
    out = label_episodes(model, episodes, LabelConfig(score_reversed=True), args.out, overwrite=args.overwrite)
    print(format_metrics(read_metrics(out)))
    trained_on = set(getattr(model, "instructions", ()))
    tasks = list(dict.fromkeys(e.task.instruction for e in episodes))
    seen = [t for t in tasks if t in trained_on]
    print(f"\ntasks of these {len(episodes)} episodes: "
          + ", ".join(f"'{t}' ({'a TRAINING task' if t in trained_on else 'not a training task'} of the model)"
                      for t in tasks))
    if seen:
        print("the sample's episodes were recorded apart from the model's training demos, but the model was "
              "trained on their task: this measures new episodes of a trained task, not transfer to a new task "
              "(for held-out ML45 tasks see docs/progress_model.md)")
    print(f"\nmodel: {model.describe()}\nwrote {out / 'scores.parquet'}, {out / 'metrics.json'} "
          f"and {out / 'report.html'}")
    return 0
