"""Training data of the ``progress`` model (:mod:`robo_reward.models.progress`).

* :func:`cache_episodes` decodes each successful demo once at model resolution
  (:class:`CachedEpisode`) with its labels (:func:`progress_labels`): progress
  p_t = min(1, t / t_s) with t_s the first success frame (manifest ``success_from``, else
  the first 1 of ``sim_success``, else the last frame); success label t ≥ t_s.
* :func:`split_episodes` holds out validation demos by episode; :func:`goal_frames`
  keeps the final frame of the first training demo of each instruction as its goal.
* :class:`StepSampler` draws one optimisation step: U (episode, view) units; per unit F
  frames (the first frame, F − 2 random frames and a duplicate of one of them, which the
  encoder augments differently) plus a goal frame (final frame of another demo of the
  same task), and a counterfactual instruction (another task's, or a generic
  :data:`DISTRACTORS` one) — grouped by view as :class:`UnitGroup`.

Every random draw comes from the one ``random.Random`` the fit seeds, in a fixed order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from robo_reward.errors import InputError
from robo_reward.types import Episode, Sampling

#: Distractor instructions for counterfactual negatives when the demos show fewer tasks.
DISTRACTORS = (
    "open the drawer", "close the door", "press the button", "pick up the cube and lift it",
    "push the block to the left", "turn the faucet on", "stack the red block on the blue block",
    "wipe the table", "pour water into the cup", "put the lid on the pot",
)


@dataclass
class CachedEpisode:
    """One demo decoded once at model resolution: view → prepared frames (T, …), labels (T,)."""

    name: str
    instruction: str
    frames: dict[str, torch.Tensor]
    progress: torch.Tensor
    success: torch.Tensor


def progress_labels(episode: Episode, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(progress (T,), success (T,)) labels of a T-frame demo: p_t = min(1, t / t_s) and
    success t >= t_s, with t_s the first frame showing success: the manifest's
    ``success_from``, else the first 1 of its per-frame ``sim_success``, else T − 1."""
    flags = episode.metadata.get("sim_success")
    first = int(np.argmax(flags)) if flags is not None and len(flags) == length and any(flags) else length - 1
    success_from = min(max(int(episode.metadata.get("success_from", first)), 1), length - 1)
    t = torch.arange(length, dtype=torch.float32)
    return (t / success_from).clamp(max=1.0), (t >= success_from).float()


def cache_episodes(episodes: Sequence[Episode], prepare: Callable[[np.ndarray], torch.Tensor],
                   views: Sequence[str], batch_size: int) -> list[CachedEpisode]:
    """Decode each demo once: its frames of ``views`` through the encoder's ``prepare``
    (``batch_size`` frames at a time), with their labels."""
    cached = []
    for episode in tqdm(episodes, desc="decode", unit="episode", leave=False):
        chunks: dict[str, list[torch.Tensor]] = {}
        for batch in episode.iter_batches(batch_size, Sampling()):
            for view in batch.view_names:
                if view in views:
                    chunks.setdefault(view, []).append(prepare(batch.views[view]))
        if not chunks:
            raise InputError(f"demo '{episode.name}' has none of the model's views {views}")
        frames = {view: torch.cat(parts) for view, parts in chunks.items()}
        length = len(next(iter(frames.values())))
        if length < 2:
            raise InputError(f"demo '{episode.name}' has {length} frame(s); at least 2 are needed")
        progress, success = progress_labels(episode, length)
        cached.append(CachedEpisode(episode.name, episode.task.instruction, frames, progress, success))
    return cached


def split_episodes(cached: list[CachedEpisode], val_fraction: float,
                   rng: random.Random) -> tuple[list[CachedEpisode], list[CachedEpisode]]:
    """(train, validation) demos, split by episode (no validation below 4 demos), each in input order."""
    order = list(range(len(cached)))
    rng.shuffle(order)
    n_val = round(val_fraction * len(cached)) if len(cached) >= 4 else 0
    val = [cached[i] for i in sorted(order[:n_val])]
    train = [cached[i] for i in sorted(order[n_val:])]
    return train, val


def goal_frames(train: Sequence[CachedEpisode]) -> dict[str, dict[str, torch.Tensor]]:
    """Instruction → view → its goal frame (1, …): the final frame of the instruction's first demo."""
    fresh: dict[str, dict[str, torch.Tensor]] = {}
    for demo in train:
        for view, frames in demo.frames.items():
            fresh.setdefault(demo.instruction, {}).setdefault(view, frames[-1:].clone())
    return fresh


@dataclass
class UnitGroup:
    """The units of one view drawn for a training step (n units, F frames each).

    Attributes:
        view: the view.
        images: prepared frames (n·(F + 1), …): per unit its F frames, then its goal frame.
        progress: progress targets (n, F + 1); the goal frame's is 1.
        success: success targets (n, F + 1); the goal frame's is 1.
        true_rows: per unit, the row of its instruction in the step's text table.
        counterfactual_rows: per unit, the row of another instruction.
    """

    view: str
    images: torch.Tensor
    progress: torch.Tensor
    success: torch.Tensor
    true_rows: list[int]
    counterfactual_rows: list[int]

    @property
    def units(self) -> int:
        return len(self.true_rows)


class StepSampler:
    """Draws the frames and targets of training steps from the training demos.

    Args:
        train: the training demos.
        texts: the instructions of the text table (rows in this order), distractors included.
        frames_per_unit: F.
        rng: the fit's seeded generator (every draw, in order).
    """

    def __init__(self, train: Sequence[CachedEpisode], texts: Sequence[str], frames_per_unit: int,
                 rng: random.Random) -> None:
        self.units = [(e, v) for e in train for v in e.frames]
        self.by_task: dict[str, list[CachedEpisode]] = {}
        for demo in train:
            self.by_task.setdefault(demo.instruction, []).append(demo)
        self.texts = list(texts)
        self.text_row = {t: i for i, t in enumerate(self.texts)}
        self.frames_per_unit = frames_per_unit
        self.rng = rng

    def draw(self, units_per_step: int) -> list[UnitGroup]:
        """One step: ``units_per_step`` random (episode, view) units, grouped by view in order of first draw."""
        rng = self.rng
        picked = [self.units[rng.randrange(len(self.units))] for _ in range(units_per_step)]
        return [self._group(view, [e for e, v in picked if v == view]) for view in dict.fromkeys(v for _, v in picked)]

    def _group(self, view: str, group: list[CachedEpisode]) -> UnitGroup:
        rng, f = self.rng, self.frames_per_unit
        images, progress, success, true_rows, cf_rows = [], [], [], [], []
        for demo in group:
            length = len(demo.progress)
            idx = [0, *sorted(rng.randrange(length) for _ in range(f - 2))]
            idx.append(idx[rng.randrange(1, f - 1)])  # stagnation: a duplicate, augmented differently
            mates = [d for d in self.by_task.get(demo.instruction, [demo]) if d is not demo and view in d.frames]
            goal_demo = rng.choice(mates) if mates else demo
            images.append(torch.cat([demo.frames[view][idx], goal_demo.frames[view][-1:]]))
            progress.append(torch.cat([demo.progress[idx], torch.ones(1)]))
            success.append(torch.cat([demo.success[idx], torch.ones(1)]))
            true_rows.append(self.text_row[demo.instruction])
            cf_rows.append(self.text_row[rng.choice([t for t in self.texts if t != demo.instruction])])
        return UnitGroup(view, torch.cat(images), torch.stack(progress), torch.stack(success), true_rows, cf_rows)
