"""Offline labeling: episodes → model scores → rewards → parquet + report + sinks.

One implementation of the flow source → batch → Scorer → Scores → shaper → sink
(DESIGN.md §1); the sources are :class:`~robo_reward.types.Episode` objects, so video
files, LeRobot datasets and bags all go through here, and an engine
(:mod:`robo_reward.engine`: local, in-process by default, or Ray Data) decides where
the episodes are scored, each by :func:`robo_reward.labels.label_episode`. A run is
resumable: each finished episode is kept in a hidden work folder beside the output
(:mod:`robo_reward.engine.work`) until the output is written whole.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from robo_reward.atomic import atomic_dir
from robo_reward.engine.local import LocalEngine
from robo_reward.engine.work import WorkFolder
from robo_reward.errors import InputError
from robo_reward.labels import EpisodeLabels, LabelConfig, Sink, label_episode
from robo_reward.types import Episode

if TYPE_CHECKING:
    from robo_reward.engine import Engine
    from robo_reward.models.base import RewardModel

SCORES_FILE = "scores.parquet"
RUN_FILE = "run.json"
log = logging.getLogger(__name__)

__all__ = ["EpisodeLabels", "LabelConfig", "Sink", "check_views", "label_episode", "label_episodes"]


def check_views(episodes: Sequence[Episode]) -> None:
    """All episodes of a run must show the same cameras (one camera setup per run)."""
    first = episodes[0]
    for episode in episodes[1:]:
        if sorted(episode.view_names) != sorted(first.view_names):
            raise InputError(
                f"episode '{episode.name}' has {len(episode.view_names)} camera view(s) {episode.view_names}, "
                f"but episode '{first.name}' has {len(first.view_names)} {first.view_names}: "
                "label one camera setup per run"
            )


def label_episodes(
    model: RewardModel,
    episodes: Sequence[Episode],
    config: LabelConfig,
    out: str | Path,
    overwrite: bool = False,
    report: bool = True,
    resume: bool = False,
    sinks: Sequence[Sink] = (),
    engine: Engine | None = None,
) -> Path:
    """Label ``episodes`` and write ``<out>/scores.parquet``, ``metrics.json``, ``run.json``,
    (``report``) ``report.html`` with its plots, and whatever the ``sinks`` write.

    The output folder appears whole or not at all. Finished episodes are kept in a
    hidden work folder beside it, so an interrupted run continues with ``resume=True``
    without redoing them; ``overwrite=True`` replaces an existing output (and, without
    ``resume``, discards unfinished work). ``engine`` defaults to the local one.
    """
    if not episodes:
        raise InputError("nothing to label: no episodes")
    names = [e.name for e in episodes]
    if len(set(names)) != len(names):
        raise InputError(f"episode names must be unique, got duplicates in {names}")
    check_views(episodes)
    for sink in sinks:
        sink.check(config)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        hint = " (the run is already complete)" if resume and not WorkFolder.beside(out).exists() else ""
        raise InputError(f"output exists: {out}{hint}; choose another --out or pass --overwrite to replace it")
    run = {"model": model.describe(), "config": asdict(config), "episodes": names}
    work = WorkFolder.beside(out).prepare(run, resume=resume, discard=overwrite and not resume)
    todo = [(i, e) for i, e in enumerate(episodes) if not work.has(i)]
    try:
        for index, labels in (engine or LocalEngine()).run(model, todo, config):
            work.save(index, labels)
    except BaseException:  # an error or Ctrl-C: keep what is finished for --resume
        finished = work.count()
        if finished == 0:
            work.remove()
        else:
            log.warning("%d of %d episodes are finished and kept in %s: rerun with --resume to continue",
                        finished, len(episodes), work.path)
        raise
    results = [work.load(i) for i in range(len(episodes))]
    _write_outputs(model, results, run, out, overwrite, report, sinks)
    work.remove()
    return out


def _write_outputs(
    model: RewardModel,
    results: list[EpisodeLabels],
    run: dict,
    out: Path,
    overwrite: bool,
    report: bool,
    sinks: Sequence[Sink],
) -> None:
    from robo_reward.evaluation import compute_metrics, write_metrics

    with atomic_dir(out, overwrite=overwrite) as tmp:
        table = pd.concat([r.to_frame() for r in results], ignore_index=True)
        table.to_parquet(tmp / SCORES_FILE, index=False)
        metrics = compute_metrics(table)
        write_metrics(metrics, tmp)
        written = [path for sink in sinks for path in sink.write(results, tmp, run)]
        run = run | {"outputs": [str(p.relative_to(tmp)) for p in written]}
        (tmp / RUN_FILE).write_text(json.dumps(run, indent=2))
        if report:
            from robo_reward.data.report import write_report

            write_report(tmp, results, metrics, title=f"robo_reward labels — {model.describe()}")
