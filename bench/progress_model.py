"""Scoring throughput of the ``progress`` model on the shipped sample: batch 1 against larger batches.

Scores the real rendered frames of the shipped Meta-World sample (two views, every
eval episode) through a :class:`~robo_reward.scoring.Scorer`, as labeling does: each
episode's first set is its context, encoded once per episode and cached in the context
(so a batch of 1 pays one forward pass per view, not three). Prints sets/s per batch
size and the ratio of the best batch to batch 1, all measured in one run.

    python bench/progress_model.py                         # shipped checkpoint, 1 CPU thread
    python bench/progress_model.py --model models/progress.pt --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from robo_reward.assets import DEFAULT_MODEL, SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.models import load_model
from robo_reward.scoring import Scorer
from robo_reward.types import FrameBatch, Sampling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="progress checkpoint")
    parser.add_argument("--batches", default="1,4,16,64,256", help="batch sizes to time")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model(args.model)
    episodes = [(e.task, FrameBatch.concat(list(e.iter_batches(256, Sampling()))))
                for e in load_manifest(SAMPLE_DIR, split="eval")]
    sets = sum(len(frames) for _, frames in episodes)
    Scorer(model, episodes[0][0]).score(episodes[0][1].select(slice(0, 4)))  # warm-up: text cache, allocator

    def seconds(batch_size: int) -> float:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for task, frames in episodes:
                scorer = Scorer(model, task, batch_size)
                for i in range(0, len(frames), batch_size):
                    scorer.score(frames.select(slice(i, i + batch_size)))
            best = min(best, time.perf_counter() - start)
        return best

    size = episodes[0][1].views[model.views[0]].shape[1:3]
    print(f"progress model {args.model}: views {model.views}, sample frames {size[0]}×{size[1]}, "
          f"{len(episodes)} episodes, {sets} sets, {args.threads} CPU thread(s)")
    rates = {int(b): sets / seconds(int(b)) for b in args.batches.split(",")}
    for batch_size, value in rates.items():
        print(f"  batch {batch_size:>4}: {value:9.1f} sets/s")
    best = max(rates, key=rates.get)
    print(f"best batch {best}: {rates[best]:.1f} sets/s = {rates[best] / rates[1]:.1f}× batch 1 ({rates[1]:.1f} sets/s)")


if __name__ == "__main__":
    main()
