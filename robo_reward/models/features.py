"""Frozen image features for few-shot reward models.

* ``pixels[:N]`` — the image area-downsampled to N×N RGB (default 16), then a 3×3
  box-blurred copy's horizontal and vertical gradients of the grey level: position and
  shape of what moves, with no weights at all, so it runs offline anywhere.
* ``clip:ARCH:TAG`` — an open_clip image tower (e.g. ``clip:ViT-B-32:laion2b_s34b_b79k``)
  where its weights can be had; ``TAG`` may be a local checkpoint path.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from robo_reward.errors import ConfigError
from robo_reward.models.base import as_float_tensor


class FeatureExtractor(Protocol):
    spec: str
    reproducible: bool  # False for random weights: a fitted model on them cannot be saved

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W, 3) → float32 (B, D)."""
        ...


class PixelFeatures:
    """Downsampled colour plus grey-level gradients; D = 3·N² + 2·N²."""

    def __init__(self, size: int = 16) -> None:
        if size < 2:
            raise ConfigError(f"pixel feature size must be >= 2, got {size}")
        self.size = size
        self.spec = f"pixels:{size}"
        self.reproducible = True

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = F.interpolate(as_float_tensor(images), size=(self.size, self.size), mode="area")
        grey = x.mean(dim=1, keepdim=True)
        blurred = F.avg_pool2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        grad_x = F.pad(blurred[..., :, 1:] - blurred[..., :, :-1], (0, 1))
        grad_y = F.pad(blurred[..., 1:, :] - blurred[..., :-1, :], (0, 0, 0, 1))
        return torch.cat([x.flatten(1), grad_x.flatten(1), grad_y.flatten(1)], dim=1).numpy()


class ClipImageFeatures:
    """Unit-norm open_clip image embeddings; D = the model's embedding width."""

    def __init__(self, arch: str, pretrained: str, device: str = "auto") -> None:
        from robo_reward.models.clip import OpenClipBackbone

        self.backbone = OpenClipBackbone(arch, pretrained, device)
        self.spec = f"clip:{arch}:{pretrained}"
        self.reproducible = not self.backbone.random_weights

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.backbone.encode_images(images).cpu().numpy()


def make_features(spec: str) -> FeatureExtractor:
    """Build a feature extractor from its spec string (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "pixels":
        return PixelFeatures(int(rest) if rest else 16)
    if kind == "clip":
        arch, _, pretrained = rest.partition(":")
        if not arch or not pretrained:
            raise ConfigError(f"clip features need 'clip:ARCH:TAG', e.g. clip:ViT-B-32:laion2b_s34b_b79k; got '{spec}'")
        return ClipImageFeatures(arch, pretrained)
    raise ConfigError(f"unknown features '{spec}': use 'pixels[:N]' or 'clip:ARCH:TAG'")
