"""The in-process engine: episodes scored one after the other in this process."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tqdm.auto import tqdm

from robo_reward.labels import EpisodeLabels, LabelConfig, label_episode
from robo_reward.models.base import RewardModel
from robo_reward.types import Episode


class LocalEngine:
    """Label episodes in order in this process, with a frame progress bar."""

    def run(
        self, model: RewardModel, episodes: Sequence[tuple[int, Episode]], config: LabelConfig
    ) -> Iterator[tuple[int, EpisodeLabels]]:
        total = sum(len(e.timestamps(config.sampling)) for _, e in episodes)
        with tqdm(total=total, desc="label", unit="frame") as bar:
            for position, episode in episodes:
                bar.set_postfix_str(episode.name)
                yield position, label_episode(model, episode, config, bar)
