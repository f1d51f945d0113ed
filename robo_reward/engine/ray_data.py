"""Labeling on Ray Data: decoding in a CPU actor pool, scoring in an actor pool that holds the model.

The pipeline is ``episodes → decode (CPU actor pool) → score (actor pool) → driver``:

* the decode stage turns each episode into the same micro-batches the local engine
  makes (``Episode.iter_batches``), streamed block by block, and picks the report
  thumbnails; its actors hold the episode list once each, and being a separate actor
  pool it is never fused into the scoring actors, so decoding overlaps scoring;
* the scoring stage is ``map_batches`` with a callable class: each actor loads the
  model once (from a loader, so that it can build the model on its own GPU) and scores
  micro-batches through a :class:`~robo_reward.scoring.Scorer` per episode, whose
  context is the episode's first set (sent with every micro-batch, since an episode's
  micro-batches may reach different actors); it gets ``num_gpus`` when the cluster has GPUs;
* the driver gathers each episode's scored batches and assembles its labels with the
  same code as the local engine, so both give the same numbers.

Episodes may differ in views and image sizes, so a micro-batch travels as one binary
cell (pickled :class:`~robo_reward.types.FrameBatch`) rather than as tensor columns. A
toolkit error (bad input, unusable model output) travels as a row too and is raised
on the driver as itself, naming the file / topic / frame as the local engine would.
Ray is imported lazily; a local cluster is started unless one is running or an
``address`` is given, and shut down again when the run ends.
"""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from robo_reward.errors import ConfigError, InputError, RoboRewardError, require
from robo_reward.labels import (
    EpisodeLabels,
    LabelConfig,
    assemble_labels,
    pick_thumbnails,
    thumbnail_positions,
)
from robo_reward.scoring import Scorer
from robo_reward.types import Episode, EpisodeContext, Task

if TYPE_CHECKING:
    from robo_reward.models.base import RewardModel

ModelLoader = Callable[[], "RewardModel"]


def _given(model: RewardModel) -> RewardModel:
    """The default loader: the (unpickled) model the driver was given."""
    return model


class DecodeActor:
    """Decode stage: holds the run's episodes; one output row per micro-batch of each episode."""

    def __init__(self, episodes: dict[int, Episode], config: LabelConfig) -> None:
        self.episodes = episodes
        self.config = config

    def __call__(self, batch: dict[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        config = self.config
        for position in batch["position"]:
            episode = self.episodes[int(position)]
            number, context = 0, None
            try:
                keep = thumbnail_positions(len(episode.timestamps(config.sampling)), config.thumbnails)
                seen = 0
                for number, frames in enumerate(episode.iter_batches(config.batch_size, config.sampling)):
                    context = context or EpisodeContext.starting_with(frames)
                    thumbs = pick_thumbnails(frames, seen, keep)
                    payload = pickle.dumps((frames, episode.task, context, thumbs), protocol=5)
                    seen += len(frames)
                    yield _row(position, number, payload=payload)
            except RoboRewardError as exc:
                yield _row(position, number, error=exc)


def _row(
    position: int, number: int, payload: bytes = b"", error: RoboRewardError | None = None
) -> dict[str, np.ndarray]:
    """One row between the stages: a micro-batch's payload, or the toolkit error that stopped its episode."""
    return {
        "position": np.array([position], dtype=np.int64),
        "number": np.array([number], dtype=np.int64),
        "payload": np.array([payload], dtype=object),
        "error": np.array([pickle.dumps(error) if error is not None else b""], dtype=object),
    }


class ScoreActor:
    """Scoring stage: holds one model (loaded once per actor) and a scorer per recent episode."""

    def __init__(self, loader: ModelLoader, batch_size: int) -> None:
        self.model = loader()
        self.batch_size = batch_size
        self.scorers: dict[int, Scorer] = {}

    def _scorer(self, position: int, task: Task, context: EpisodeContext) -> Scorer:
        if position not in self.scorers:
            if len(self.scorers) >= 8:  # episodes arrive roughly in order: keep the recent ones
                del self.scorers[next(iter(self.scorers))]
            self.scorers[position] = Scorer(self.model, task, self.batch_size)
            self.scorers[position].begin(context=context)
        return self.scorers[position]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results, errors = [], list(batch["error"])
        for index, payload in enumerate(batch["payload"]):
            result = b""
            if not errors[index]:
                frames, task, context, thumbs = pickle.loads(payload)
                try:
                    scores = self._scorer(int(batch["position"][index]), task, context).score(frames)
                    result = pickle.dumps((scores, frames.timestamps_ns, frames.frame_index, thumbs), protocol=5)
                except RoboRewardError as exc:
                    errors[index] = pickle.dumps(exc)
            results.append(result)
        return {"position": batch["position"], "number": batch["number"],
                "result": np.array(results, dtype=object), "error": np.array(errors, dtype=object)}


class RayEngine:
    """Label episodes on a Ray cluster (see the module docstring).

    Args:
        address: an existing cluster's address (``ray://…`` or ``host:port``); None
            starts a local cluster unless Ray is already initialised in this process.
        num_actors: scoring actors (default: one per GPU, else one per two CPUs); the
            decoding actors (one CPU each) scale up to the CPUs left over.
        num_gpus_per_actor: GPUs per scoring actor (default: 1 where the cluster has GPUs, else 0).
        num_cpus: CPUs of a local cluster this engine starts (default: all).
        model_loader: builds the model inside each actor (default: a copy of the model given to ``run``).
    """

    def __init__(
        self,
        address: str | None = None,
        num_actors: int | None = None,
        num_gpus_per_actor: float | None = None,
        num_cpus: int | None = None,
        model_loader: ModelLoader | None = None,
    ) -> None:
        if num_actors is not None and num_actors < 1:
            raise ConfigError(f"the Ray engine needs at least one scoring actor, got {num_actors}")
        self.address = address
        self.num_actors = num_actors
        self.num_gpus_per_actor = num_gpus_per_actor
        self.num_cpus = num_cpus
        self.model_loader = model_loader

    def run(
        self, model: RewardModel, episodes: Sequence[tuple[int, Episode]], config: LabelConfig
    ) -> Iterator[tuple[int, EpisodeLabels]]:
        if not episodes:
            return
        if model.sequential:
            raise ConfigError(
                f"model '{model.describe()}' scores a frame after the episode's earlier ones (sequential), but the "
                "Ray engine may send an episode's micro-batches to different actors: label with --engine local"
            )
        ray = require("ray", "ray", "the Ray engine (--engine ray)")
        started = self._connect(ray)
        try:
            yield from self._run(ray, model, episodes, config)
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Initialise Ray if needed; True when this engine started it (and must shut it down)."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if self.address is None and self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        try:
            ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot connect to the Ray cluster at {self.address or 'local'}: {exc}") from exc
        return True

    def _pools(self, ray: Any) -> tuple[int, float, int]:
        """(scoring actors, GPUs per scoring actor, most decoding actors) for this cluster."""
        resources = ray.cluster_resources()
        gpus, cpus = float(resources.get("GPU", 0)), int(resources.get("CPU", 2))
        per_actor = self.num_gpus_per_actor if self.num_gpus_per_actor is not None else (1.0 if gpus >= 1 else 0.0)
        if self.num_actors is not None:
            actors = self.num_actors
        elif per_actor > 0:
            actors = max(1, int(gpus // per_actor))
        else:
            actors = max(1, cpus // 2)
        return actors, per_actor, max(1, cpus - actors)

    def _run(
        self, ray: Any, model: RewardModel, episodes: Sequence[tuple[int, Episode]], config: LabelConfig
    ) -> Iterator[tuple[int, EpisodeLabels]]:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        by_position = dict(episodes)
        totals = {position: len(e.timestamps(config.sampling)) for position, e in episodes}
        for position, total in totals.items():
            if total == 0:
                raise InputError(f"episode '{by_position[position].name}': no frames to score")
        actors, gpus, decoders = self._pools(ray)
        loader = self.model_loader or functools.partial(_given, model)
        items = ray.data.from_items([{"position": p} for p in by_position], override_num_blocks=len(by_position))
        decoded = items.map_batches(
            DecodeActor, fn_constructor_args=(by_position, config), batch_size=1, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=min(decoders, len(by_position))),
        )
        scored = decoded.map_batches(
            ScoreActor, fn_constructor_args=(loader, config.batch_size), batch_size=1, num_cpus=1, num_gpus=gpus,
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        gathered: dict[int, dict[int, tuple]] = {p: {} for p in by_position}
        counts = dict.fromkeys(by_position, 0)
        with tqdm(total=sum(totals.values()), desc="label (ray)", unit="frame") as bar:
            for row in scored.iter_rows():
                if row["error"]:
                    raise pickle.loads(row["error"])
                position, number = int(row["position"]), int(row["number"])
                result = pickle.loads(row["result"])
                gathered[position][number] = result
                counts[position] += len(result[1])
                bar.update(len(result[1]))
                if counts[position] == totals[position]:
                    finished = gathered.pop(position)
                    parts = [finished[n] for n in sorted(finished)]
                    yield position, assemble_labels(
                        by_position[position],
                        config,
                        [p[0] for p in parts],
                        [(p[1], p[2]) for p in parts],
                        [thumb for p in parts for thumb in p[3]],
                    )
