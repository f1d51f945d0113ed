"""Labeling throughput on the shipped Meta-World sample with the embedded default model.

Prints decode only, model only (with each episode's context), the ideal pipeline
``1 / (1/model + 1/decode)``, a by-hand baseline (decode an episode, then score it in
large batches) and ``label_episodes`` end to end, measured in one run on the same real
rendered frames, with the ratios end to end / ideal and end to end / by hand
(see bench/_pipeline.py).

    python bench/label_throughput.py
    python bench/label_throughput.py --model clip --option pretrained=none --episodes DIR --split eval
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from _pipeline import Source, measure

from robo_reward.assets import DEFAULT_MODEL, SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.labeling import LabelConfig
from robo_reward.models.options import load_model_from_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, default=SAMPLE_DIR, help="episodes.json folder")
    parser.add_argument("--split", default="eval")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model name or checkpoint")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model config option (for a registered model name)")
    parser.add_argument("--batch-size", type=int, default=LabelConfig().batch_size, help="as label's --batch-size")
    parser.add_argument("--hand-batch", type=int, default=64, help="batch of the by-hand baseline")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every run (label's default)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N timings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model_from_text(args.model, args.option)
    source = Source(f"episodes {args.episodes} split {args.split}", lambda: load_manifest(args.episodes, split=args.split))
    with tempfile.TemporaryDirectory() as scratch:
        measure(model, source, LabelConfig(batch_size=args.batch_size), args.hand_batch, args.repeats, Path(scratch))


if __name__ == "__main__":
    main()
