"""Options of the ``progress`` model (:mod:`robo_reward.models.progress`).

Its own module so that the network (:mod:`~robo_reward.models.progress_net`), the
training data (:mod:`~robo_reward.models.progress_data`) and the training loop
(:mod:`~robo_reward.models.progress_train`) can read the options without importing the
model, which imports them. Import it from :mod:`robo_reward.models.progress`.
"""

from __future__ import annotations

from dataclasses import dataclass

from robo_reward.errors import ConfigError


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
