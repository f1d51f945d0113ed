"""Learned multi-view, language-conditioned progress reward model.

After Robo-Dopamine's General Reward Model (GRM: step-aware progress with discretised
"hops", multi-perspective fusion, start/goal-anchored estimates), VLAC (pairwise
progress deltas between two observations of one episode, trained with reversed clips)
and RoboReward (negatives by temporal clipping and counterfactual instructions), scaled
down to a from-scratch CNN that trains on a CPU.

**Network** (shapes for N images of one view, D = ``dim``):

* image encoder (:mod:`robo_reward.models.encoders`): ``conv`` CNN or frozen open_clip
  tower → h (N, D), plus a learned embedding of the view's name (views are named);
* text encoder (:mod:`robo_reward.models.text`, frozen, cached per instruction):
  ``minilm`` or open_clip → (E,) → linear → t (D,);
* trunk: MLP([h, t, h ⊙ t]) → state s (N, D), the observation read against the task;
* absolute head: s → K progress-bin logits + 1 success logit. Progress is discretised
  into K bins with centres c_k = k/(K−1); the target p ∈ [0, 1] is a two-hot
  distribution on its neighbouring centres, and the decoded progress is the expectation
  Σ softmax(logits)_k · c_k ∈ [0, 1]. Success probability σ(success logit).
* pairwise head: MLP([s_a, s_b, s_b − s_a]) → tanh → Δ(a→b) ∈ [−1, 1], the progress
  change from observation a to observation b of the same episode.

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
Losses, summed:

* absolute: two-hot cross-entropy on p_t and binary cross-entropy on success;
* pairwise: smooth-L1 of Δ(i → j) against p_j − p_i over all ordered frame pairs. This
  holds the generated negatives of a stateless model: **reversed clips** (j before i:
  progress falls), **temporal clipping** (start → an intermediate frame: partial
  progress, success 0 for every frame before t_s), **stagnation** (a frame and its
  duplicate: Δ = 0), start- and goal-anchored pairs;
* **counterfactual instructions**: the same frames under another task's instruction (or
  a generic distractor) must show progress 0, success 0 and Δ = 0, weighted
  ``counterfactual_weight``.

Validation is split by episode; each epoch logs the loss and the validation VOC (GVL's
value-order correlation) of the fused progress. Seeded: same seed and data → identical
weights. Fitting an already fitted model (``fit progress --init model.pt``) fine-tunes it
for ``adapt_steps`` steps at ``adapt_lr``: few-shot adaptation from one demonstration.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from robo_reward.errors import ConfigError, InputError
from robo_reward.fusion import fuse_views
from robo_reward.metrics import voc
from robo_reward.models import register_model
from robo_reward.models.base import LearnedRewardModel
from robo_reward.models.encoders import make_image_encoder
from robo_reward.models.text import TextEncoder, make_text_encoder
from robo_reward.types import Episode, EpisodeContext, FrameBatch, Sampling, Scores, Task

#: Distractor instructions for counterfactual negatives when the demos show fewer tasks.
DISTRACTORS = (
    "open the drawer", "close the door", "press the button", "pick up the cube and lift it",
    "push the block to the left", "turn the faucet on", "stack the red block on the blue block",
    "wipe the table", "pour water into the cup", "put the lid on the pot",
)


@dataclass
class ProgressConfig:
    """Options of the ``progress`` model.

    Attributes:
        image_encoder: ``conv`` (small CNN from scratch) or ``clip:ARCH:TAG`` (frozen tower).
        text_encoder: ``minilm`` (offline all-MiniLM-L6-v2) or ``clip:ARCH:TAG``.
        image_size: S, the conv encoder's input side in pixels (multiple of 16).
        channels: conv encoder output channels, one stride-2 layer each.
        dim: D, width of features, states and MLPs.
        bins: K, progress bins (step-wise discretisation); centres k/(K−1).
        epochs: training epochs; one epoch draws every (episode, view) unit once on average.
        units_per_step: U, (episode, view) units per optimisation step.
        frames_per_unit: F, frames drawn per unit per step (>= 3).
        lr: AdamW learning rate when training from scratch.
        weight_decay: AdamW weight decay.
        shift: random-shift augmentation in pixels (conv encoder).
        counterfactual_weight: weight of the counterfactual-instruction losses.
        pair_weight: weight of the pairwise Δ loss.
        val_fraction: fraction of episodes held out for validation (none below 4 episodes).
        adapt_steps: optimisation steps when fine-tuning a fitted model on new demos.
        adapt_lr: learning rate when fine-tuning.
        seed: seeds initialisation, the split, sampling and augmentation.
        batch_size: images per forward pass when scoring and caching.
        threads: torch CPU threads while fitting (0: leave torch's default).
    """

    image_encoder: str = "conv"
    text_encoder: str = "minilm"
    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 64, 128)
    dim: int = 128
    bins: int = 10
    epochs: int = 60
    units_per_step: int = 16
    frames_per_unit: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shift: int = 4
    counterfactual_weight: float = 0.5
    pair_weight: float = 2.0
    val_fraction: float = 0.1
    adapt_steps: int = 150
    adapt_lr: float = 5e-4
    seed: int = 0
    batch_size: int = 64
    threads: int = 0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.bins < 2:
            raise ConfigError(f"bins must be >= 2, got {self.bins}")
        if self.frames_per_unit < 3:
            raise ConfigError(f"frames_per_unit must be >= 3, got {self.frames_per_unit}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


class ProgressNet(nn.Module):
    """Encoder, text projection, trunk and the absolute / pairwise heads (see module docstring)."""

    def __init__(self, config: ProgressConfig, views: Sequence[str], text_dim: int) -> None:
        super().__init__()
        d = config.dim
        self.encoder = make_image_encoder(config.image_encoder, config.image_size, config.channels, d, config.shift)
        self.view_index = {v: i for i, v in enumerate(views)}
        self.view_embedding = nn.Embedding(len(views), d)
        self.text = nn.Linear(text_dim, d)
        self.trunk = nn.Sequential(nn.Linear(3 * d, d), nn.SiLU(), nn.Linear(d, d), nn.SiLU(), nn.LayerNorm(d))
        self.absolute = nn.Linear(d, config.bins + 1)
        self.pair = nn.Sequential(nn.Linear(3 * d, d), nn.SiLU(), nn.Linear(d, 1))
        self.register_buffer("centres", torch.linspace(0.0, 1.0, config.bins), persistent=False)

    def features(self, prepared: torch.Tensor, view: str, generator: torch.Generator | None = None) -> torch.Tensor:
        """Prepared images of one view (N, …) → (N, D) view-tagged image features."""
        return self.encoder(prepared, generator) + self.view_embedding.weight[self.view_index[view]]

    def state(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(…, D) image features and (…, E) or (E,) text embeddings → (…, D) task-conditioned states."""
        t = self.text(text).expand_as(features)
        return self.trunk(torch.cat([features, t, features * t], dim=-1))

    def absolute_heads(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States (…, D) → (bin logits (…, K), success logit (…))."""
        out = self.absolute(state)
        return out[..., :-1], out[..., -1]

    def delta(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Progress change Δ(a → b) ∈ [−1, 1] between states (…, D) → (…)."""
        return torch.tanh(self.pair(torch.cat([a, b, b - a], dim=-1)).squeeze(-1))

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """Bin logits (…, K) → expected progress (…) in [0, 1]."""
        return logits.softmax(dim=-1) @ self.centres


def two_hot(progress: torch.Tensor, bins: int) -> torch.Tensor:
    """Progress (…) in [0, 1] → (…, K) distribution on its two neighbouring bin centres."""
    position = progress.clamp(0, 1) * (bins - 1)
    low = position.floor().clamp(max=bins - 2)
    upper = position - low
    target = torch.zeros(*progress.shape, bins)
    target.scatter_(-1, low.long().unsqueeze(-1), (1 - upper).unsqueeze(-1))
    target.scatter_add_(-1, (low.long() + 1).unsqueeze(-1), upper.unsqueeze(-1))
    return target


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
        self.instructions: list[str] = []
        self.goals: dict[str, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, float]] = []
        self._version = 0  # bumped by fit: keys the encodings cached from contexts and goals
        self._stored_goal_states: dict[tuple[str, str], torch.Tensor | None] = {}

    @property
    def expected_views(self) -> tuple[str, ...]:
        return tuple(self.views)

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
        if not set(self.views) & set(batch.views):
            raise InputError(
                f"{batch.source or 'batch'}: the progress model was trained on views {self.views}; the batch has "
                f"{batch.view_names}. Fit a progress model on a demo recorded with your own cameras (about a minute "
                "on a CPU): robo-reward fit progress --view NAME=demo.mp4 … --task TEXT --out models/mine.pt, "
                "then label with --model models/mine.pt (README: 'Your own cameras')"
            )
        self.net.eval()
        text = self._text([task.instruction])[0]
        size = len(batch)
        per_sample = list(contexts) if len(contexts) == size else list(contexts) * size
        per_view, success_views, valid = {}, {}, {}
        for view in self.views:
            valid[view] = batch.valid_mask(view) if view in batch.views else np.zeros(size, dtype=bool)
            if not valid[view].any():
                per_view[view] = success_views[view] = np.full(size, np.nan)
                continue
            state = self._states(self._prepare(batch.views[view]), view, text)
            starts = [self._start_state(c, view, text, task.instruction) for c in per_sample]
            start_ok = torch.tensor([s is not None for s in starts])
            start = None
            if start_ok.any():
                blank = torch.zeros(state.shape[1])
                start = torch.stack([blank if s is None else s for s in starts])
            progress, success = self._estimates(state, start, start_ok, self._goal_state(task, view, text, per_sample))
            per_view[view] = np.where(valid[view], progress.double().numpy(), np.nan)
            success_views[view] = np.where(valid[view], success.double().numpy(), np.nan)
        progress, uncertainty = fuse_views(per_view, valid, source=batch.source, frame_index=batch.frame_index)
        success, _ = fuse_views(success_views, valid, source=batch.source, frame_index=batch.frame_index)
        return Scores(progress=progress, success=success, per_view=per_view, uncertainty=uncertainty)

    # ---------------------------------------------------------------- fitting

    def _cache(self, episodes: Sequence[Episode]) -> list[CachedEpisode]:
        cached = []
        for episode in tqdm(episodes, desc="decode", unit="episode", leave=False):
            chunks: dict[str, list[torch.Tensor]] = {}
            for batch in episode.iter_batches(self.config.batch_size, Sampling()):
                for view in batch.view_names:
                    if view in self.net.view_index:
                        chunks.setdefault(view, []).append(self.net.encoder.prepare(batch.views[view]))
            if not chunks:
                raise InputError(f"demo '{episode.name}' has none of the model's views {self.views}")
            frames = {view: torch.cat(parts) for view, parts in chunks.items()}
            length = len(next(iter(frames.values())))
            if length < 2:
                raise InputError(f"demo '{episode.name}' has {length} frame(s); at least 2 are needed")
            progress, success = progress_labels(episode, length)
            cached.append(CachedEpisode(episode.name, episode.task.instruction, frames, progress, success))
        return cached

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
        cached = self._cache(episodes)
        order = list(range(len(cached)))
        rng.shuffle(order)
        n_val = round(config.val_fraction * len(cached)) if len(cached) >= 4 else 0
        val = [cached[i] for i in sorted(order[:n_val])]
        train = [cached[i] for i in sorted(order[n_val:])]
        self.instructions = list(dict.fromkeys([*self.instructions, *(c.instruction for c in cached)]))
        fresh: dict[str, dict[str, torch.Tensor]] = {}
        for demo in train:  # the first demo of each instruction provides its goal frame
            for view, frames in demo.frames.items():
                fresh.setdefault(demo.instruction, {}).setdefault(view, frames[-1:].clone())
        self.goals.update(fresh)
        texts = list(dict.fromkeys([*self.instructions, *DISTRACTORS]))
        text_table = self._text(texts)  # before any thread change: embeddings must not depend on it
        previous_threads = torch.get_num_threads()
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        try:
            self._train(train, val, texts, text_table, rng, generator, adapting)
        finally:
            torch.set_num_threads(previous_threads)
        return self

    def _train(self, train: list[CachedEpisode], val: list[CachedEpisode], texts: list[str],
               text_table: torch.Tensor, rng: random.Random, generator: torch.Generator, adapting: bool) -> None:
        config, net = self.config, self.net
        units = [(e, v) for e in train for v in e.frames]
        steps_per_epoch = max(1, math.ceil(len(units) / config.units_per_step))
        total = config.adapt_steps if adapting else config.epochs * steps_per_epoch
        epochs = max(1, math.ceil(total / steps_per_epoch))
        lr = config.adapt_lr if adapting else config.lr
        trainable = [p for p in net.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total, pct_start=0.1)
        text_row = {t: i for i, t in enumerate(texts)}
        by_task: dict[str, list[CachedEpisode]] = {}
        for demo in train:
            by_task.setdefault(demo.instruction, []).append(demo)
        step = 0
        with tqdm(total=total, desc="fit progress", unit="step") as bar:
            for epoch in range(epochs):
                net.train()
                losses = []
                for _ in range(min(steps_per_epoch, total - step)):
                    picked = [units[rng.randrange(len(units))] for _ in range(config.units_per_step)]
                    loss = self._loss(picked, by_task, text_table, text_row, texts, rng, generator)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(trainable, 1.0)
                    optimiser.step()
                    schedule.step()
                    losses.append(float(loss.detach()))
                    step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
                record = {"epoch": epoch + 1, "step": step, "loss": float(np.mean(losses))}
                record["val_voc"] = self._validate(val) if val else float("nan")
                self.history.append(record)
                bar.write(f"epoch {epoch + 1}/{epochs}  loss {record['loss']:.4f}  val VOC {record['val_voc']:.3f}")
        net.eval()

    def _loss(self, picked: list[tuple[CachedEpisode, str]], by_task: dict[str, list[CachedEpisode]],
              text_table: torch.Tensor, text_row: dict[str, int], texts: list[str], rng: random.Random,
              generator: torch.Generator) -> torch.Tensor:
        """The summed losses of one step over U units (see the module docstring)."""
        config, net = self.config, self.net
        f = config.frames_per_unit
        losses = []
        for view in dict.fromkeys(v for _, v in picked):
            group = [e for e, v in picked if v == view]
            images, progress, success, true_rows, cf_rows = [], [], [], [], []
            for demo in group:
                length = len(demo.progress)
                idx = [0, *sorted(rng.randrange(length) for _ in range(f - 2))]
                idx.append(idx[rng.randrange(1, f - 1)])  # stagnation: a duplicate, augmented differently
                mates = [d for d in by_task.get(demo.instruction, [demo]) if d is not demo and view in d.frames]
                goal_demo = rng.choice(mates) if mates else demo
                images.append(torch.cat([demo.frames[view][idx], goal_demo.frames[view][-1:]]))
                progress.append(torch.cat([demo.progress[idx], torch.ones(1)]))
                success.append(torch.cat([demo.success[idx], torch.ones(1)]))
                true_rows.append(text_row[demo.instruction])
                cf_rows.append(text_row[rng.choice([t for t in texts if t != demo.instruction])])
            n = len(group)
            feats = net.features(torch.cat(images), view, generator).view(n, f + 1, -1)
            p, s = torch.stack(progress), torch.stack(success)  # (n, F + 1)
            for rows, counterfactual in ((true_rows, False), (cf_rows, True)):
                state = net.state(feats, text_table[rows][:, None, :])
                logits, success_logit = net.absolute_heads(state)
                target_p = torch.zeros_like(p) if counterfactual else p
                target_s = torch.zeros_like(s) if counterfactual else s
                absolute = -(two_hot(target_p, config.bins) * logits.log_softmax(-1)).sum(-1).mean()
                succ = F.binary_cross_entropy_with_logits(success_logit, target_s)
                a = state[:, :, None, :].expand(-1, -1, f + 1, -1)
                b = state[:, None, :, :].expand(-1, f + 1, -1, -1)
                target_d = target_p[:, None, :] - target_p[:, :, None]
                pair = F.smooth_l1_loss(net.delta(a, b), target_d, beta=0.1)
                total = absolute + 0.5 * succ + config.pair_weight * pair
                losses.append(total * (config.counterfactual_weight if counterfactual else 1.0) * n)
        return torch.stack(losses).sum() / len(picked)

    def _validate(self, val: list[CachedEpisode]) -> float:
        """Mean VOC of the fused progress over validation demos (their first frame as the start)."""
        self.net.eval()
        values = []
        with torch.inference_mode():
            for demo in val:
                text = self._text([demo.instruction])[0]
                per_view = {}
                for view, frames in demo.frames.items():
                    state = self._states(frames, view, text)
                    goal = self.goals.get(demo.instruction, {}).get(view)
                    goal_state = None if goal is None else self._states(goal, view, text)
                    start_ok = torch.ones(len(state), dtype=torch.bool)
                    per_view[view] = self._estimates(state, state[:1].expand_as(state), start_ok, goal_state)[0].numpy()
                values.append(voc(fuse_views(per_view)[0]))
        self.net.train()
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    # ---------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        if self.net is None:
            raise ConfigError("progress model is not fitted: nothing to save")
        return {
            "views": self.views,
            "instructions": self.instructions,
            "weights": {k: v.clone() for k, v in self.net.state_dict().items()},
            "goals": self.goals,
            "history": self.history,
        }

    @classmethod
    def from_state(cls, config: ProgressConfig, state: dict[str, Any]) -> ProgressRewardModel:
        model = cls(config)
        model.views = list(state["views"])
        model.instructions = list(state["instructions"])
        model.net = ProgressNet(config, model.views, model.text_encoder.dim)
        model.net.load_state_dict(state["weights"])
        model.net.eval()
        model.goals = state["goals"]
        model.history = list(state["history"])
        return model
