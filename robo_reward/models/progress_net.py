"""The network of the ``progress`` model (:mod:`robo_reward.models.progress`).

Shapes for N images of one view, D = ``dim``:

* image encoder (:mod:`robo_reward.models.encoders`): ``conv`` CNN or frozen open_clip
  tower → h (N, D), plus a learned embedding of the view's name (views are named);
* text encoder (:mod:`robo_reward.models.text`, frozen, cached per instruction, owned by
  the model): ``minilm`` or open_clip → (E,) → linear → t (D,);
* trunk: MLP([h, t, h ⊙ t]) → state s (N, D), the observation read against the task;
* absolute head: s → K progress-bin logits + 1 success logit. Progress is discretised
  into K bins with centres c_k = k/(K−1); the target p ∈ [0, 1] is a two-hot
  distribution on its neighbouring centres (:func:`two_hot`), and the decoded progress
  is the expectation Σ softmax(logits)_k · c_k ∈ [0, 1] (:meth:`ProgressNet.decode`).
  Success probability σ(success logit).
* pairwise head: MLP([s_a, s_b, s_b − s_a]) → tanh → Δ(a→b) ∈ [−1, 1], the progress
  change from observation a to observation b of the same episode.

The attribute names of :class:`ProgressNet` are the keys of a checkpoint's ``weights``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from robo_reward.models.encoders import make_image_encoder
from robo_reward.models.progress_config import ProgressConfig


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
