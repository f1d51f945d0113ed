"""What the labeling benchmarks measure, in one run and on the same frames.

For a source (a list of episodes and the sinks its labels go to), taking turns so that a
busy spell of the machine hits every measurement alike, best of N:

* decode only — every micro-batch of every episode decoded and synchronised, nothing scored;
* model only — the same micro-batches, decoded beforehand, scored through a
  :class:`~robo_reward.scoring.Scorer` with each episode's context (what labeling scores);
* ideal pipeline — ``1 / (1/model_only + 1/decode_only)``: decoding, then scoring, with
  no overhead at all (derived from the two above, and printed as such);
* by hand — what a competent user writes without robo_reward's pipeline: decode an
  episode in full with the same decoder, then score it in large batches (``--hand-batch``)
  with its context; per episode, serially;
* end to end — ``label_episodes`` (decode, sync, score, shape, write scores.parquet,
  metrics and the source's sink; the HTML report is timed on its own), as ``label``
  runs it, and with ``--prefetch`` (decoding in a child process, overlapping scoring).

All runs use the same torch thread setting (``--threads``; ``label``'s default is 1).

Frames/s counts synchronised multi-view sets.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from robo_reward.engine.local import LocalEngine
from robo_reward.labeling import LabelConfig, label_episodes
from robo_reward.labels import Sink
from robo_reward.models import RewardModel
from robo_reward.scoring import Scorer
from robo_reward.types import Episode, FrameBatch


@dataclass
class Source:
    """Episodes to label, opened afresh for every run (no decode state carried over)."""

    name: str
    open: Callable[[], list[Episode]]
    sinks: Callable[[list[Episode]], list[Sink]] = lambda episodes: []


def best_of(repeats: int, runs: dict[str, Callable[[], None]]) -> dict[str, float]:
    """Best wall time (s) of each run; the runs take turns."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def measure(model: RewardModel, source: Source, config: LabelConfig, hand_batch: int, repeats: int,
            scratch: Path) -> None:
    """Time the five runs of the module docstring on ``source`` and print them with their ratios."""
    episodes = source.open()
    decoded = [(e.task, list(e.iter_batches(config.batch_size, config.sampling))) for e in episodes]
    frames = sum(len(b) for _, batches in decoded for b in batches)

    def decode_only() -> None:
        for episode in source.open():
            for _ in episode.iter_batches(config.batch_size, config.sampling):
                pass

    def model_only() -> None:
        for task, batches in decoded:
            scorer = Scorer(model, task, config.batch_size)
            for batch in batches:
                scorer.score(batch)

    def by_hand() -> None:
        for episode in source.open():
            frames_of_episode = FrameBatch.concat(list(episode.iter_batches(hand_batch, config.sampling)))
            Scorer(model, episode.task, hand_batch).score(frames_of_episode)

    def end_to_end(prefetch: bool = False) -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            fresh = source.open()
            label_episodes(model, fresh, config, Path(tmp) / "run", report=False, sinks=source.sinks(fresh),
                           engine=LocalEngine(prefetch=prefetch))

    def with_report() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            fresh = source.open()
            label_episodes(model, fresh, config, Path(tmp) / "run", report=True, sinks=source.sinks(fresh))

    model_only()  # warm-up: text embeddings, allocator
    times = best_of(repeats, {"decode": decode_only, "model": model_only, "hand": by_hand, "e2e": end_to_end,
                              "prefetch": lambda: end_to_end(prefetch=True)})
    report_s = best_of(1, {"report": with_report})["report"] - times["e2e"]
    rate = {name: frames / seconds for name, seconds in times.items()}
    ideal = 1.0 / (1.0 / rate["model"] + 1.0 / rate["decode"])
    print(f"\n{source.name}: {len(episodes)} episodes, {frames} sets of views {episodes[0].view_names}")
    print(f"  model: {model.describe()}")
    print(f"  batch {config.batch_size} (by hand: {hand_batch}), {torch.get_num_threads()} torch thread(s), best of {repeats}")
    print(f"  decode only     : {rate['decode']:9.1f} sets/s")
    print(f"  model only      : {rate['model']:9.1f} sets/s  (pre-decoded, with episode context)")
    print(f"  ideal pipeline  : {ideal:9.1f} sets/s  (1 / (1/model + 1/decode), derived from the two above)")
    print(f"  by hand         : {rate['hand']:9.1f} sets/s  (decode an episode, then score it in batches)")
    print(f"  end to end      : {rate['e2e']:9.1f} sets/s  (label_episodes, outputs and sink written)")
    print(f"  with --prefetch : {rate['prefetch']:9.1f} sets/s  (decoding in a child process)")
    print(f"  + HTML report   : {report_s:9.2f} s once per run")
    print(f"  end to end / ideal = {rate['e2e'] / ideal:.3f}   end to end / by hand = {rate['e2e'] / rate['hand']:.3f}"
          f"   end to end / min(model, decode) = {rate['e2e'] / min(rate['model'], rate['decode']):.3f}")
