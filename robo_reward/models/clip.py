"""VLM-RM: CLIP as a zero-shot reward model (Rocamonde et al. 2023, "Vision-Language
Models are Zero-Shot Reward Models for Reinforcement Learning").

With x the unit image embedding, g the mean of unit goal-prompt embeddings, b the mean
of unit baseline-prompt embeddings and d = g − b, the goal–baseline projection is
``P = α·d dᵀ/‖d‖² + (1 − α)·I`` and the reward ``R = 1 − ½‖(x − g)P‖²``. α = 0 gives
the cosine similarity (for a single goal prompt); α = 1 keeps only the component of
x − g along the baseline→goal direction.

Since ‖(x − g)P‖ ≤ ‖x − g‖ ≤ 2, R lies in [−1, 1]; progress is the affine map
``Φ = (R + 1)/2`` into [0, 1], which keeps the order of states. The success probability
is CLIP's own zero-shot classification between the goal and baseline prompts:
``σ(s·(x·ĝ − x·b̂))`` with CLIP's logit scale s. Scored per view, then fused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from robo_reward.errors import ConfigError, require
from robo_reward.fusion import fuse_views
from robo_reward.models import register_model
from robo_reward.models.base import RewardModel, as_float_tensor
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

RANDOM_WEIGHTS = "none"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class OpenClipBackbone:
    """An open_clip model by architecture and pretrained tag, local checkpoint, or random weights."""

    def __init__(self, arch: str, pretrained: str, device: str = "auto") -> None:
        open_clip = require("open_clip", "clip", "CLIP reward models")
        self.device = resolve_device(device)
        self.random_weights = pretrained == RANDOM_WEIGHTS
        source = None if self.random_weights else pretrained
        if arch not in open_clip.list_models():
            raise ConfigError(f"unknown open_clip architecture '{arch}'; e.g. ViT-B-32, ViT-B-16, ViT-L-14, RN50")
        if source and not Path(source).exists() and source not in open_clip.list_pretrained_tags_by_model(arch):
            raise ConfigError(
                f"'{source}' is neither a pretrained tag of {arch} "
                f"({', '.join(open_clip.list_pretrained_tags_by_model(arch)) or 'none'}) nor a local checkpoint file"
            )
        try:
            model = open_clip.create_model(arch, pretrained=source, device=self.device)
        except Exception as exc:  # network, cache and checkpoint errors come in many types
            raise ConfigError(
                f"could not load open_clip weights '{pretrained}' for {arch} ({type(exc).__name__}: {exc}). "
                "Without a network the weights must already be in the Hugging Face cache. Alternatives: "
                "--pretrained /path/to/checkpoint (a local open_clip checkpoint), or --pretrained none "
                "(random weights: tests the plumbing only, the rewards mean nothing)"
            ) from exc
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(arch)
        size = self.model.visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        cfg = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        self.mean = torch.tensor(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN), device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.get("std", open_clip.OPENAI_DATASET_STD), device=self.device).view(1, 3, 1, 1)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) → normalised (B, 3, h, w): resize the short side, centre crop (open_clip's own)."""
        x = as_float_tensor(images, self.device)
        height, width = x.shape[-2:]
        target_h, target_w = self.image_size
        scale = max(target_h / height, target_w / width)
        new_size = (max(target_h, round(height * scale)), max(target_w, round(width * scale)))
        x = F.interpolate(x, size=new_size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        top, left = (new_size[0] - target_h) // 2, (new_size[1] - target_w) // 2
        x = x[..., top : top + target_h, left : left + target_w]
        return (x - self.mean) / self.std

    @torch.inference_mode()
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) → unit embeddings (B, E)."""
        return F.normalize(self.model.encode_image(self.preprocess(images)).float(), dim=-1)

    @torch.inference_mode()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Prompts → unit embeddings (N, E)."""
        tokens = self.tokenizer(texts).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)


def vlmrm_reward(x: torch.Tensor, goal: torch.Tensor, baseline: torch.Tensor, alpha: float) -> torch.Tensor:
    """R = 1 − ½‖(x − g)P‖² for unit image embeddings x (B, E); g, b (E,) mean unit prompt embeddings."""
    direction = goal - baseline
    norm_sq = direction.dot(direction)
    if norm_sq <= 0:
        raise ConfigError("goal and baseline prompts embed identically: choose a baseline that differs from the goal")
    diff = x - goal
    along = (diff @ direction)[:, None] * direction[None, :] / norm_sq
    projected = alpha * along + (1.0 - alpha) * diff
    return 1.0 - 0.5 * (projected**2).sum(dim=-1)


@dataclass
class ClipConfig:
    """Options of the ``clip`` model.

    Attributes:
        arch: open_clip architecture name.
        pretrained: open_clip pretrained tag, a local checkpoint path, or ``"none"``
            for random weights (plumbing tests only).
        alpha: goal–baseline projection strength α in [0, 1].
        baselines: baseline prompts used when the task gives none.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda:0"``…
        batch_size: images per forward pass.
    """

    arch: str = "ViT-B-32"
    pretrained: str = "laion2b_s34b_b79k"
    alpha: float = 0.5
    baselines: tuple[str, ...] = ("a robot arm",)
    device: str = "auto"
    batch_size: int = 64


@register_model("clip")
class ClipRewardModel(RewardModel):
    """CLIP zero-shot reward with goal–baseline projection, per view then fused."""

    config_class = ClipConfig

    def __init__(self, config: ClipConfig) -> None:
        super().__init__(config)
        if not 0.0 <= config.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {config.alpha}")
        self.backbone = OpenClipBackbone(config.arch, config.pretrained, config.device)
        self._prompt_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def describe(self) -> str:
        note = " [RANDOM WEIGHTS: plumbing test only]" if self.backbone.random_weights else ""
        return super().describe() + note

    def prompt_embeddings(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        """(g, b): mean unit embeddings of the goal and baseline prompts, each (E,)."""
        baselines = task.baselines or tuple(self.config.baselines)
        key = (task.instruction, baselines)
        if key not in self._prompt_cache:
            goal = self.backbone.encode_texts([task.instruction]).mean(dim=0)
            base = self.backbone.encode_texts(list(baselines)).mean(dim=0)
            self._prompt_cache[key] = (goal, base)
        return self._prompt_cache[key]

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        goal, base = self.prompt_embeddings(task)
        goal_unit, base_unit = F.normalize(goal, dim=0), F.normalize(base, dim=0)
        per_view: dict[str, np.ndarray] = {}
        success_views: dict[str, np.ndarray] = {}
        for view, images in batch.views.items():
            embeddings = torch.cat(
                [
                    self.backbone.encode_images(images[i : i + self.config.batch_size])
                    for i in range(0, len(images), self.config.batch_size)
                ]
            )
            reward = vlmrm_reward(embeddings, goal, base, self.config.alpha)
            logits = self.backbone.logit_scale * (embeddings @ goal_unit - embeddings @ base_unit)
            progress_view = ((reward + 1.0) / 2.0).clamp(0, 1).cpu().numpy()
            per_view[view] = np.where(batch.valid_mask(view), progress_view, np.nan)
            success_views[view] = torch.sigmoid(logits).cpu().numpy()
        valid = {view: batch.valid_mask(view) for view in batch.views}
        progress, uncertainty = fuse_views(per_view, valid, source=batch.source, frame_index=batch.frame_index)
        success, _ = fuse_views(
            {v: np.where(valid[v], s, np.nan) for v, s in success_views.items()},
            valid,
            source=batch.source,
            frame_index=batch.frame_index,
        )
        return Scores(progress=progress, success=success, per_view=per_view, uncertainty=uncertainty)

