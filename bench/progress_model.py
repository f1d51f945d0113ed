"""Scoring throughput of the ``progress`` model: batch 1 against its best batch, one run.

Scores N synchronised two-view samples (64×64 Meta-World frames rendered into the
shipped sample when it is there, else synthetic frames of the checkpoint's views) with
the episode's first frame as the reference, as labeling does, at several batch sizes;
prints frames/s (a frame = one synchronised multi-view sample) per batch size and the
ratio best / batch 1.

    python bench/progress_model.py                                  # shipped checkpoint, CPU
    python bench/progress_model.py --model models/progress.pt --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from robo_reward.models import load_model
from robo_reward.types import FrameBatch, Task

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "robo_reward" / "assets" / "progress_ml45.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_CHECKPOINT), help="progress checkpoint")
    parser.add_argument("--frames", type=int, default=256, help="samples scored per timing")
    parser.add_argument("--batches", default="1,4,16,64,256", help="batch sizes to time")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = load_model(args.model)
    rng = np.random.default_rng(0)
    size = model.config.image_size
    views = {v: rng.integers(0, 256, (args.frames, size, size, 3), dtype=np.uint8) for v in model.views}
    frames = FrameBatch(views=views, timestamps_ns=np.arange(args.frames))
    reference = frames.select(np.arange(1))
    task = Task(model.instructions[0])
    model.score(frames.select(np.arange(4)), task, reference)  # warm-up: text cache, allocator

    def rate(batch_size: int) -> float:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for i in range(0, args.frames, batch_size):
                model.score(frames.select(np.arange(i, min(i + batch_size, args.frames))), task, reference)
            best = min(best, time.perf_counter() - start)
        return args.frames / best

    print(f"progress model {args.model}: views {model.views}, {size}×{size}, {args.threads} CPU thread(s)")
    rates = {int(b): rate(int(b)) for b in args.batches.split(",")}
    for batch_size, value in rates.items():
        print(f"  batch {batch_size:>4}: {value:9.1f} frames/s")
    best = max(rates, key=rates.get)
    print(f"best batch {best}: {rates[best]:.1f} frames/s = {rates[best] / rates[1]:.1f}× batch 1 "
          f"({rates[1]:.1f} frames/s)")


if __name__ == "__main__":
    main()
