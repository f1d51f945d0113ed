"""Training of the ``progress`` model (:mod:`robo_reward.models.progress`): the
optimisation loop, the losses of a step and validation.

Each step draws its units from :class:`~robo_reward.models.progress_data.StepSampler`.
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

AdamW with a one-cycle schedule; gradients clipped to norm 1. Each epoch logs the loss
and the validation VOC (GVL's value-order correlation) of the fused progress. From
scratch: ``epochs`` epochs at ``lr``; fine-tuning a fitted model: ``adapt_steps`` steps at
``adapt_lr``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from robo_reward.fusion import fuse_views
from robo_reward.metrics import voc
from robo_reward.models.progress_config import ProgressConfig
from robo_reward.models.progress_data import CachedEpisode, StepSampler, UnitGroup
from robo_reward.models.progress_net import ProgressNet, two_hot

#: A validation demo → per-view progress (T,) over its frames (the model's estimates).
DemoProgress = Callable[[CachedEpisode], dict[str, np.ndarray]]


def train_progress(net: ProgressNet, config: ProgressConfig, train: list[CachedEpisode], val: list[CachedEpisode],
                   texts: list[str], text_table: torch.Tensor, rng: random.Random, generator: torch.Generator,
                   adapting: bool, demo_progress: DemoProgress, history: list[dict[str, Any]]) -> None:
    """Optimise ``net`` in place on ``train``, appending one record per epoch to ``history``.

    ``texts`` are the rows of ``text_table`` (their embeddings, computed before any thread
    change); ``rng`` draws the steps, ``generator`` the augmentation; ``demo_progress``
    scores a validation demo. Torch runs on ``config.threads`` threads meanwhile.
    """
    previous_threads = torch.get_num_threads()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    try:
        _optimise(net, config, train, val, texts, text_table, rng, generator, adapting, demo_progress, history)
    finally:
        torch.set_num_threads(previous_threads)


def _optimise(net: ProgressNet, config: ProgressConfig, train: list[CachedEpisode], val: list[CachedEpisode],
              texts: list[str], text_table: torch.Tensor, rng: random.Random, generator: torch.Generator,
              adapting: bool, demo_progress: DemoProgress, history: list[dict[str, Any]]) -> None:
    sampler = StepSampler(train, texts, config.frames_per_unit, rng)
    steps_per_epoch = max(1, math.ceil(len(sampler.units) / config.units_per_step))
    total = config.adapt_steps if adapting else config.epochs * steps_per_epoch
    epochs = max(1, math.ceil(total / steps_per_epoch))
    lr = config.adapt_lr if adapting else config.lr
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=total, pct_start=0.1)
    step = 0
    with tqdm(total=total, desc="fit progress", unit="step") as bar:
        for epoch in range(epochs):
            net.train()
            losses = []
            for _ in range(min(steps_per_epoch, total - step)):
                loss = step_loss(net, config, sampler.draw(config.units_per_step), text_table, generator)
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
            record["val_voc"] = validation_voc(net, val, demo_progress) if val else float("nan")
            history.append(record)
            bar.write(f"epoch {epoch + 1}/{epochs}  loss {record['loss']:.4f}  val VOC {record['val_voc']:.3f}")
    net.eval()


def step_loss(net: ProgressNet, config: ProgressConfig, groups: Sequence[UnitGroup], text_table: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:
    """The summed losses of one step over its units (see the module docstring), per unit."""
    f = config.frames_per_unit
    losses = []
    for group in groups:
        n = group.units
        feats = net.features(group.images, group.view, generator).view(n, f + 1, -1)
        p, s = group.progress, group.success  # (n, F + 1)
        for rows, counterfactual in ((group.true_rows, False), (group.counterfactual_rows, True)):
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
    return torch.stack(losses).sum() / sum(group.units for group in groups)


def validation_voc(net: ProgressNet, val: Sequence[CachedEpisode], demo_progress: DemoProgress) -> float:
    """Mean VOC of the fused progress over validation demos (``demo_progress`` scores each)."""
    net.eval()
    values = []
    with torch.inference_mode():
        for demo in val:
            values.append(voc(fuse_views(demo_progress(demo))[0]))
    net.train()
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
