"""The in-process engine: episodes scored one after the other in this process; decoded
in it between model calls, or (``prefetch``) ahead of the scorer in a child process
(:mod:`robo_reward.engine.decode_worker`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tqdm.auto import tqdm

from robo_reward.engine.decode_worker import DecodeProcess
from robo_reward.labels import EpisodeLabels, LabelConfig, label_episode
from robo_reward.models.base import RewardModel
from robo_reward.types import Episode


class LocalEngine:
    """Label episodes in order in this process, with a frame progress bar.

    Args:
        prefetch: decode in a child process while this one scores, so that decoding and
            scoring overlap. It pays off when the model leaves the CPU free (a GPU) and
            decoding is slow; moving the frames between the processes and starting the
            child cost more than they save on a small CPU machine (bench/label_throughput.py).
    """

    def __init__(self, prefetch: bool = False) -> None:
        self.prefetch = prefetch

    def run(
        self, model: RewardModel, episodes: Sequence[tuple[int, Episode]], config: LabelConfig
    ) -> Iterator[tuple[int, EpisodeLabels]]:
        total = sum(len(e.timestamps(config.sampling)) for _, e in episodes)
        passes = 2 if config.score_reversed else 1
        decoder = DecodeProcess([e for _, e in episodes], config.batch_size, config.sampling, passes) \
            if self.prefetch and episodes else None
        try:
            with tqdm(total=total, desc="label", unit="frame") as bar:
                for number, (position, episode) in enumerate(episodes):
                    bar.set_postfix_str(episode.name)
                    source = None if decoder is None else (lambda p, n=number: decoder.batches(n, p))
                    yield position, label_episode(model, episode, config, bar, source)
        finally:
            if decoder is not None:
                decoder.close()
