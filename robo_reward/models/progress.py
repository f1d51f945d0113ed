"""Learned multi-view, language-conditioned progress reward model.

After Robo-Dopamine's General Reward Model (GRM: step-aware progress with discretised
"hops", multi-perspective fusion, start/goal-anchored estimates), VLAC (pairwise
progress deltas between two observations of one episode, trained with reversed clips)
and RoboReward (negatives by temporal clipping and counterfactual instructions), scaled
down to a from-scratch CNN that trains on a CPU.

This module is the model — scoring, fitting and checkpoints; its parts live beside it:

* options: :class:`ProgressConfig` (:mod:`~robo_reward.models.progress_config`);
* network (:mod:`~robo_reward.models.progress_net`): image encoder plus view embedding,
  text projection, trunk → state s, absolute head (K progress bins + success logit,
  decoded to Σ softmax_k · c_k) and pairwise head Δ(a → b) ∈ [−1, 1];
* training data (:mod:`~robo_reward.models.progress_data`): demos decoded once, labels,
  the split, goal frames and the sampler of a step's frames and targets;
* training (:mod:`~robo_reward.models.progress_train`): the loop, the losses, validation.

**What is fused, per view** (Robo-Dopamine averages its estimates; each term is in
[0, 1] and the per-view progress is the mean of the available ones):

1. absolute:        Φ_abs(o)   = Σ_k softmax_k · c_k;
2. start-anchored:  Φ_start(o) = clip(Δ(o_0 → o), 0, 1), when the episode's first frame
   o_0 arrives as ``reference`` (labeling passes it, see ``wants_reference``);
3. goal-anchored:   Φ_goal(o)  = clip(1 − Δ(o → g), 0, 1), when a goal observation g
   exists: ``Task.goal_images`` for that view, else the goal frame stored at fit time for
   that instruction (the final frame of a training demo).

Dopamine's incremental estimate Φ_{t−1} + Δ(o_{t−1} → o_t) needs the previous potential
— hidden per-episode state the Scores contract rules out — so the absolute estimate
stands in for it. Views are then fused by :func:`robo_reward.fusion.fuse_views`: the
mean over present views, with uncertainty = view disagreement plus 1/12 per missing
view. Success probability is fused the same way. Scores: progress, success (B,),
per_view {view: (B,)} (NaN where missing), uncertainty (B,).

**Training** (:meth:`ProgressRewardModel.fit`) on successful demos, progress label
p_t = min(1, t / t_s) with t_s the first success frame (manifest ``success_from``, else
the last frame); success label t ≥ t_s. A step draws U (episode, view) units; per unit
F frames (the first frame, F − 2 random frames and a duplicate of one of them under a
different augmentation) plus a goal frame (final frame of another demo of the same task).
The losses — absolute, pairwise (reversed clips, temporal clipping, stagnation, start-
and goal-anchored pairs) and counterfactual instructions — are listed in
:mod:`~robo_reward.models.progress_train`.

Validation is split by episode; each epoch logs the loss and the validation VOC (GVL's
value-order correlation) of the fused progress. Seeded: same seed and data → identical
weights. Fitting an already fitted model (``fit progress --init model.pt``) fine-tunes it
for ``adapt_steps`` steps at ``adapt_lr``: few-shot adaptation from one demonstration.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from robo_reward.errors import ConfigError, InputError
from robo_reward.fusion import fuse_views
from robo_reward.models import register_model
from robo_reward.models.base import LearnedRewardModel
from robo_reward.models.progress_config import ProgressConfig
from robo_reward.models.progress_data import (
    DISTRACTORS,
    CachedEpisode,
    cache_episodes,
    goal_frames,
    split_episodes,
)
from robo_reward.models.progress_net import ProgressNet
from robo_reward.models.progress_train import train_progress
from robo_reward.models.text import TextEncoder, make_text_encoder
from robo_reward.types import Episode, EpisodeContext, FrameBatch, Scores, Task

__all__ = ["ProgressConfig", "ProgressRewardModel"]


@register_model("progress")
class ProgressRewardModel(LearnedRewardModel):
    """Multi-view, language-conditioned, step-aware progress model (GRM / VLAC / RoboReward)."""

    config_class = ProgressConfig
    uses_context = True
    #: Fields that fix the network's shape: adapting a checkpoint (``--init``) keeps them.
    architecture_fields = ("image_encoder", "text_encoder", "image_size", "channels", "dim", "bins")

    def __init__(self, config: ProgressConfig) -> None:
        super().__init__(config)
        self.text_encoder: TextEncoder = make_text_encoder(config.text_encoder)
        self.net: ProgressNet | None = None
        self.views: list[str] = []
        self.fitted_views: list[str] = []  # those of the latest fit's demos: the views it scores
        self.instructions: list[str] = []
        self.goals: dict[str, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, float]] = []
        self._version = 0  # bumped by fit: keys the encodings cached from contexts and goals
        self._stored_goal_states: dict[tuple[str, str], torch.Tensor | None] = {}

    @property
    def expected_views(self) -> tuple[str, ...]:
        """The views of the latest fit: a model adapted (``fit --init``) on demos of fewer
        views than it was trained with scores, and expects, only those."""
        return tuple(self.fitted_views or self.views)

    # ---------------------------------------------------------------- scoring

    def _text(self, instructions: Sequence[str]) -> torch.Tensor:
        return torch.from_numpy(self.text_encoder.encode(list(instructions)))

    def _prepare(self, images: np.ndarray) -> torch.Tensor:
        size = self.config.batch_size
        return torch.cat([self.net.encoder.prepare(images[i : i + size]) for i in range(0, len(images), size)])

    def _states(self, prepared: torch.Tensor, view: str, text: torch.Tensor) -> torch.Tensor:
        size = self.config.batch_size
        feats = torch.cat([self.net.features(prepared[i : i + size], view) for i in range(0, len(prepared), size)])
        return self.net.state(feats, text)

    def _goal_state(self, task: Task, view: str, text: torch.Tensor,
                    contexts: Sequence[EpisodeContext]) -> torch.Tensor | None:
        """(1, D) state of the goal observation of ``view``: ``Task.goal_images``, else the
        goal frame stored at fit time for the instruction; None when there is neither."""
        if view in task.goal_images:
            key = (id(self), self._version, "goal", view, task.instruction)
            cache = contexts[0].cache
            if key not in cache:
                cache[key] = self._states(self._prepare(np.asarray(task.goal_images[view], np.uint8)[None]), view, text)
            return cache[key]
        key = (task.instruction, view)
        if key not in self._stored_goal_states:
            goal = self.goals.get(task.instruction, {}).get(view)
            self._stored_goal_states[key] = None if goal is None else self._states(goal, view, text)
        return self._stored_goal_states[key]

    def _start_state(self, context: EpisodeContext, view: str, text: torch.Tensor,
                     instruction: str) -> torch.Tensor | None:
        """(D,) state of the episode's first set in ``view`` (cached in the context); None if absent."""
        key = (id(self), self._version, "start", view, instruction)
        if key not in context.cache:
            first = context.first
            usable = view in first.views and bool(first.valid_mask(view)[0])
            context.cache[key] = self._states(self._prepare(first.views[view]), view, text)[0] if usable else None
        return context.cache[key]

    def _estimates(self, state: torch.Tensor, start: torch.Tensor | None, start_ok: torch.Tensor | None,
                   goal: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One view's (progress (B,), success (B,)) from its states (B, D): the mean of the
        absolute, start-anchored (``start`` (B, D) where ``start_ok`` (B,)) and goal-anchored
        (``goal`` (1, D)) estimates that are available."""
        logits, success_logit = self.net.absolute_heads(state)
        estimates = [self.net.decode(logits)]
        if start is not None:
            estimates.append(torch.where(start_ok, self.net.delta(start, state).clamp(0, 1), torch.nan))
        if goal is not None:
            estimates.append((1.0 - self.net.delta(state, goal.expand_as(state))).clamp(0, 1))
        return torch.stack(estimates).nanmean(dim=0), torch.sigmoid(success_logit)

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        if self.net is None:
            raise ConfigError("progress model is not fitted: run `robo-reward fit progress` or load a checkpoint")
        if not set(self.expected_views) & set(batch.views):
            raise InputError(
                f"{batch.source or 'batch'}: the progress model was trained on views {list(self.expected_views)}; the batch has "
                f"{batch.view_names}. Fit a progress model on a demo recorded with your own cameras (about a minute "
                "on a CPU): robo-reward fit progress --view NAME=demo.mp4 … --task TEXT --out models/mine.pt, "
                "then label with --model models/mine.pt (README: 'Your own cameras')"
            )
        self.net.eval()
        text = self._text([task.instruction])[0]
        size = len(batch)
        per_view, success_views, valid = {}, {}, {}
        scored = self.expected_views
        for view in self.views:
            present = view in batch.views and view in scored
            valid[view] = batch.valid_mask(view) if present else np.zeros(size, dtype=bool)
            if not valid[view].any():
                per_view[view] = success_views[view] = np.full(size, np.nan)
                continue
            state = self._states(self._prepare(batch.views[view]), view, text)
            starts = [self._start_state(c, view, text, task.instruction) for c in contexts]
            start_ok = torch.tensor([s is not None for s in starts])
            start = None
            if start_ok.any():
                blank = torch.zeros(state.shape[1])
                start = torch.stack([blank if s is None else s for s in starts])
            progress, success = self._estimates(state, start, start_ok, self._goal_state(task, view, text, contexts))
            per_view[view] = np.where(valid[view], progress.double().numpy(), np.nan)
            success_views[view] = np.where(valid[view], success.double().numpy(), np.nan)
        progress, uncertainty = fuse_views(per_view, valid, source=batch.source, frame_index=batch.frame_index)
        success, _ = fuse_views(success_views, valid, source=batch.source, frame_index=batch.frame_index)
        return Scores(progress=progress, success=success, per_view=per_view, uncertainty=uncertainty)

    # ---------------------------------------------------------------- fitting

    def fit(self, episodes: Sequence[Episode]) -> ProgressRewardModel:
        """Train on successful demos (from scratch, or fine-tune a fitted model); returns self."""
        if not episodes:
            raise InputError("progress model: no demonstrations to fit from")
        config = self.config
        adapting = self.net is not None
        self._version += 1
        self._stored_goal_states.clear()
        torch.manual_seed(config.seed)
        rng = random.Random(config.seed)
        generator = torch.Generator().manual_seed(config.seed)
        if not adapting:
            self.views = list(dict.fromkeys(v for e in episodes for v in e.view_names))
            self.net = ProgressNet(config, self.views, self.text_encoder.dim)
        cached = cache_episodes(episodes, self.net.encoder.prepare, self.views, config.batch_size)
        self.fitted_views = [v for v in self.views if any(v in c.frames for c in cached)]
        train, val = split_episodes(cached, config.val_fraction, rng)
        self.instructions = list(dict.fromkeys([*self.instructions, *(c.instruction for c in cached)]))
        self.goals.update(goal_frames(train))
        texts = list(dict.fromkeys([*self.instructions, *DISTRACTORS]))
        text_table = self._text(texts)  # before any thread change: embeddings must not depend on it
        train_progress(self.net, config, train, val, texts, text_table, rng, generator, adapting,
                       self._demo_progress, self.history)
        return self

    def _demo_progress(self, demo: CachedEpisode) -> dict[str, np.ndarray]:
        """Per-view progress (T,) of a cached demo, its first frame as the start (validation)."""
        text = self._text([demo.instruction])[0]
        per_view = {}
        for view, frames in demo.frames.items():
            state = self._states(frames, view, text)
            goal = self.goals.get(demo.instruction, {}).get(view)
            goal_state = None if goal is None else self._states(goal, view, text)
            start_ok = torch.ones(len(state), dtype=torch.bool)
            per_view[view] = self._estimates(state, state[:1].expand_as(state), start_ok, goal_state)[0].numpy()
        return per_view

    # ---------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        if self.net is None:
            raise ConfigError("progress model is not fitted: nothing to save")
        return {
            "views": self.views,
            "fitted_views": self.fitted_views,
            "instructions": self.instructions,
            "weights": {k: v.clone() for k, v in self.net.state_dict().items()},
            "goals": self.goals,
            "history": self.history,
        }

    @classmethod
    def from_state(cls, config: ProgressConfig, state: dict[str, Any]) -> ProgressRewardModel:
        model = cls(config)
        model.views = list(state["views"])
        model.fitted_views = list(state.get("fitted_views", model.views))
        model.instructions = list(state["instructions"])
        model.net = ProgressNet(config, model.views, model.text_encoder.dim)
        model.net.load_state_dict(state["weights"])
        model.net.eval()
        model.goals = state["goals"]
        model.history = list(state["history"])
        return model
