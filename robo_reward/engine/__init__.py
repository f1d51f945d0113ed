"""Where the episodes of a labeling run are scored.

An engine takes ``(position, episode)`` pairs and yields ``(position, EpisodeLabels)``
as episodes finish, in any order; :func:`robo_reward.labeling.label_episodes` keeps
each one as it arrives (that is what makes a run resumable) and writes the outputs.

* :class:`~robo_reward.engine.local.LocalEngine` — in-process, one episode after the
  other (the default);
* :class:`~robo_reward.engine.ray_data.RayEngine` — Ray Data: decoding as CPU tasks,
  scoring in an actor pool holding the model, on a local or an existing cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from robo_reward.labels import EpisodeLabels, LabelConfig
    from robo_reward.models.base import RewardModel
    from robo_reward.types import Episode

ENGINES = ("local", "ray")


class Engine(Protocol):
    def run(
        self, model: RewardModel, episodes: Sequence[tuple[int, Episode]], config: LabelConfig
    ) -> Iterator[tuple[int, EpisodeLabels]]:
        """Label each episode; yield (its position, its labels) as each finishes."""
        ...


__all__ = ["ENGINES", "Engine"]
