"""Throughput of `robo-reward label` end to end against the model's forward alone.

Both are measured in one run on the same frames: end to end = decode + align + score +
shape + write parquet/report; model only = `model.score` on frames decoded beforehand.

    python bench/label_throughput.py                         # shipped sample, embedded default model
    python bench/label_throughput.py --model clip --option pretrained=none --episodes DIR
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from robo_reward.assets import DEFAULT_MODEL, SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.labeling import LabelConfig, label_episodes
from robo_reward.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, default=SAMPLE_DIR, help="episodes.json folder")
    parser.add_argument("--split", default="eval")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model name or checkpoint")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model config option (for a registered model name)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    args = parser.parse_args()

    options = dict(item.split("=", 1) for item in args.option)
    model = load_model(args.model, **options)
    episodes = load_manifest(args.episodes, split=args.split)
    config = LabelConfig(batch_size=args.batch_size)
    batches = [(b, e.task) for e in episodes for b in e.iter_batches(config.batch_size, config.sampling)]
    frames = sum(len(b) for b, _ in batches)

    def end_to_end() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            label_episodes(model, episodes, config, Path(tmp) / "run")
            return time.perf_counter() - start

    def model_only() -> float:
        start = time.perf_counter()
        for batch, task in batches:
            model.score(batch, task)
        return time.perf_counter() - start

    e2e = min(end_to_end() for _ in range(args.repeats))
    forward = min(model_only() for _ in range(args.repeats))
    print(f"model: {model.describe()}")
    print(f"frames: {frames} synchronised sets × {len(episodes[0].view_names)} views, batch {args.batch_size}")
    print(f"label end to end : {frames / e2e:9.1f} frames/s")
    print(f"model forward    : {frames / forward:9.1f} frames/s (pre-decoded frames; the baseline)")
    print(f"ratio end-to-end / model-only = {forward / e2e:.3f}")


if __name__ == "__main__":
    main()
