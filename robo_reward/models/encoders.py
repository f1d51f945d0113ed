"""Pluggable image encoders for learned reward models.

An encoder works in two stages so that training can decode videos once:

1. ``prepare(images)`` — uint8 (B, H, W, 3) frames → the compact representation kept in
   the training cache (no gradients): for ``conv`` the frames resized to S×S, uint8
   (B, 3, S, S); for a frozen ``clip`` tower its float32 (B, E) image embeddings.
2. ``forward(prepared, generator)`` — the trainable part → float32 (B, dim) features.
   With a ``generator`` (training) the ``conv`` encoder applies random-shift
   augmentation (±``shift`` pixels, DrQ-style), drawn from that generator so training
   stays deterministic.

Encoders:

* ``conv`` — a small CNN trained from scratch (offline default): four stride-2 3×3
  convolutions with GroupNorm and SiLU on S×S input (S = 64 → a 4×4 map), flattened and
  projected to ``dim``. Shared across views; the model adds a learned per-view embedding.
* ``clip:ARCH:TAG`` — a frozen open_clip image tower (``TAG``: pretrained tag, local
  checkpoint, or ``none`` for random weights in tests) followed by a trainable linear
  projection.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robo_reward.errors import ConfigError
from robo_reward.models.base import as_float_tensor


class ConvEncoder(nn.Module):
    """Small CNN from scratch: uint8 (B, 3, S, S) → (B, dim); S must be divisible by 16."""

    def __init__(self, image_size: int, channels: tuple[int, ...], dim: int, shift: int) -> None:
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ConfigError(f"conv encoder: image_size must be a multiple of 16, got {image_size}")
        self.image_size, self.shift, self.dim = image_size, shift, dim
        layers: list[nn.Module] = []
        width = 3
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1), nn.GroupNorm(min(8, out), out), nn.SiLU()]
            width = out
        self.convs = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(width * side * side, dim), nn.LayerNorm(dim))

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) → uint8 (B, 3, S, S), area-resized."""
        if images.shape[1:3] == (self.image_size, self.image_size):
            return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        x = F.interpolate(as_float_tensor(images), size=(self.image_size, self.image_size), mode="area")
        return (x * 255.0).round().clamp(0, 255).to(torch.uint8)

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        pad = self.shift
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        offsets = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=generator)
        size = self.image_size
        return torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets.tolist())])

    def forward(self, prepared: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = prepared.float() / 255.0
        if generator is not None and self.shift > 0:
            x = self._augment(x, generator)
        return self.project(self.convs((x - 0.5) / 0.25))


@lru_cache(maxsize=4)
def clip_backbone(arch: str, pretrained: str):
    """One shared, frozen :class:`~robo_reward.models.clip.OpenClipBackbone` per (arch, tag) on CPU."""
    from robo_reward.models.clip import OpenClipBackbone

    return OpenClipBackbone(arch, pretrained, "cpu")


class ClipImageEncoder(nn.Module):
    """Frozen open_clip image tower + trainable projection: (B, E) embeddings → (B, dim)."""

    def __init__(self, arch: str, pretrained: str, dim: int) -> None:
        super().__init__()
        self.backbone = clip_backbone(arch, pretrained)
        self.dim = dim
        width = int(self.backbone.encode_images(np.zeros((1, 8, 8, 3), np.uint8)).shape[1])
        self.project = nn.Sequential(nn.Linear(width, dim), nn.LayerNorm(dim))

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W, 3) → float32 (B, E) unit image embeddings (frozen tower)."""
        return self.backbone.encode_images(images).float().cpu().clone()

    def forward(self, prepared: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.project(prepared)


ImageEncoder = ConvEncoder | ClipImageEncoder


def make_image_encoder(spec: str, image_size: int, channels: tuple[int, ...], dim: int, shift: int) -> ImageEncoder:
    """``conv`` or ``clip:ARCH:TAG`` (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "conv" and not rest:
        return ConvEncoder(image_size, tuple(channels), dim, shift)
    if kind == "clip":
        arch, _, pretrained = rest.partition(":")
        if arch and pretrained:
            return ClipImageEncoder(arch, pretrained, dim)
    raise ConfigError(f"unknown image encoder '{spec}': use 'conv' or 'clip:ARCH:TAG'")
