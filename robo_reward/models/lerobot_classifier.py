"""LeRobot's reward classifier (``lerobot.policies.sac.reward_model``, the success detector
of LeRobot's HIL-SERL) behind the :class:`~robo_reward.models.base.RewardModel` interface.

What this wrapper relies on, as found in lerobot 0.4.4:

* ``Classifier.predict(xs)`` takes one float tensor (B, 3, H, W) per image key, in the order
  of the keys of ``config.input_features`` that start with ``observation.image``, and
  returns probabilities: ``sigmoid(logit)`` of shape (B,) when ``num_classes == 2``, else a
  softmax (B, C). Its head takes ``num_cameras`` image embeddings, so ``num_cameras`` must
  equal the number of image keys.
* ``Classifier.predict_reward`` is broken: it calls ``self.normalize_inputs`` and
  ``self.normalize_targets``, which no longer exist since normalisation moved into processor
  pipelines (AttributeError). So lerobot's own inference step
  (``RewardClassifierProcessorStep`` in ``lerobot/processor/hil_processor.py``) cannot run;
  this wrapper calls ``predict``.
* Training (``lerobot/scripts/lerobot_train.py``) feeds images as a LeRobotDataset yields
  them: float32 CHW in [0, 1] (``lerobot/datasets/video_utils.py``: ``frames / 255``) at the
  recorded resolution, which is the ``input_features`` shape, through the pre-processor
  ``make_classifier_processor`` builds (``processor_classifier.py``): a MEAN_STD
  normaliser of the VISUAL features with the dataset's statistics, then the device. The
  pipeline is saved next to the weights as ``classifier_preprocessor.json`` (+ its
  ``.safetensors`` statistics); this wrapper loads and applies it. A checkpoint without
  it (``Classifier.save_pretrained`` alone) gets unnormalised [0, 1] images, as lerobot's
  env pipeline hands them to the classifier, and a warning.
* Frames of another size are resized as ``ImageCropResizeProcessorStep`` (the step that
  produces the recorded frames) does: torchvision ``resize`` (bilinear, antialiased), then
  clamped to [0, 1].
* ``Classifier.__init__`` builds its encoder with ``AutoModel.from_pretrained(config.model_name,
  trust_remote_code=True)`` (default ``helper2424/resnet10``, whose code lives on the Hub)
  before the checkpoint's weights replace the encoder's. So loading a saved classifier
  always needs ``model_name`` reachable: a local model directory, or a Hub id already in
  the Hugging Face cache (offline), else a download. The ``encoder`` option points
  ``model_name`` at a local copy.

Views map to the classifier's image keys (the key → view rule of
:func:`robo_reward.interfaces.lerobot.view_names`, so a LeRobot dataset read by robo_reward
matches by name): the ``views`` option, in key order, if given; else by name
(``observation.images.front`` → view ``front``) when the batch has every such view; else,
when the batch has none of them but exactly as many views as the classifier has image
keys, in order (key i ← the batch's view i, with a warning); anything else is an error
naming the missing views.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robo_reward.errors import ConfigError, InputError, require
from robo_reward.interfaces.lerobot import view_names
from robo_reward.models import register_model
from robo_reward.models.base import RewardModel, as_float_tensor
from robo_reward.models.clip import resolve_device
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

IMAGE_PREFIX = "observation.image"  # lerobot.utils.constants.OBS_IMAGE; also prefixes "observation.images.*"
PREPROCESSOR_CONFIG = "classifier_preprocessor.json"  # make_classifier_processor's pipeline name + .json
WEIGHTS = "model.safetensors"


@dataclass
class LeRobotClassifierConfig:
    """Options of the ``lerobot-classifier`` model.

    Attributes:
        path: local directory of a saved classifier (``config.json``, ``model.safetensors``,
            and ``classifier_preprocessor.json`` from lerobot-train), e.g. a training run's
            ``checkpoints/last/pretrained_model``. Required.
        views: robo_reward views to feed the classifier's image keys, in key order
            (empty: by name, see the module docstring).
        encoder: local directory (or cached Hub id) of the encoder to build the classifier
            on, replacing the checkpoint's ``model_name`` (empty: keep it).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda:0"``…
    """

    path: str = ""
    views: tuple[str, ...] = ()
    encoder: str = ""
    device: str = "auto"


@register_model("lerobot-classifier")
class LeRobotClassifierRewardModel(RewardModel):
    """A LeRobot reward classifier: success probability per synchronised set, all cameras jointly."""

    config_class = LeRobotClassifierConfig

    def __init__(self, config: LeRobotClassifierConfig) -> None:
        super().__init__(config)
        if not config.path:
            raise ConfigError("the lerobot-classifier model needs a checkpoint directory: --option path=DIR")
        self.device = resolve_device(config.device)
        self.path = Path(config.path)
        self.classifier = load_classifier(self.path, config.encoder, self.device)
        features = self.classifier.config.input_features
        self.image_keys = [key for key in features if key.startswith(IMAGE_PREFIX)]
        self.sizes = {key: tuple(features[key].shape[-2:]) for key in self.image_keys}
        self.key_views = {key: view for view, key in view_names(self.image_keys).items()}
        cameras = self.classifier.config.num_cameras
        if cameras != len(self.image_keys):
            raise ConfigError(
                f"{self.path / 'config.json'}: num_cameras is {cameras} but input_features has "
                f"{len(self.image_keys)} image key(s) {self.image_keys}; the classifier cannot run"
            )
        if config.views and len(config.views) != len(self.image_keys):
            raise ConfigError(
                f"views={','.join(config.views)} names {len(config.views)} view(s); the classifier at {self.path} "
                f"takes {len(self.image_keys)} image(s), {self.image_keys}"
            )
        self.preprocessor = load_preprocessor(self.path, self.device)

    @property
    def expected_views(self) -> tuple[str, ...]:
        return tuple(self.config.views) or tuple(self.key_views[key] for key in self.image_keys)

    def describe(self) -> str:
        classes = self.classifier.config.num_classes
        what = "success (sigmoid)" if classes == 2 else f"the last of {classes} classes (softmax)"
        norm = "its saved normaliser" if self.preprocessor is not None else "unnormalised [0, 1]"
        return (
            f"{super().describe()} [success = probability of {what}; progress = success, a classifier "
            f"gives no progress; images: {norm}]"
        )

    def views_for(self, batch: FrameBatch) -> list[str]:
        """The batch's view feeding each image key, in key order (the rule in the module docstring)."""
        if self.config.views:
            wanted = list(self.config.views)
        else:
            wanted = [self.key_views[key] for key in self.image_keys]
            if not set(wanted) & set(batch.views) and len(batch.views) == len(wanted):
                mapping = dict(zip(self.image_keys, batch.view_names))
                warnings.warn(f"lerobot-classifier: no view is named after an image key; in order: {mapping}",
                              stacklevel=4)
                return batch.view_names
        missing = [v for v in wanted if v not in batch.views]
        if missing:
            raise InputError(
                f"{batch.source or 'batch'}: the classifier at {self.path} needs view(s) {missing} "
                f"(for {self.image_keys}); the batch has {batch.view_names}; map them with --option views=A,B"
            )
        return wanted

    def images(self, batch: FrameBatch, views: Sequence[str]) -> list[torch.Tensor]:
        """The classifier's input tensors: one (B, 3, H, W) per image key, as lerobot's training feeds them."""
        from torchvision.transforms.functional import resize

        observation = {}
        for key, view in zip(self.image_keys, views):
            x = as_float_tensor(batch.views[view], self.device)
            if tuple(x.shape[-2:]) != self.sizes[key]:
                x = resize(x, list(self.sizes[key])).clamp(0.0, 1.0)
            observation[key] = x
        if self.preprocessor is not None:
            observation = self.preprocessor(observation)
        return [observation[key] for key in self.image_keys]

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        views = self.views_for(batch)
        for view in views:
            invalid = ~batch.valid_mask(view)
            # The classifier sees all its cameras jointly and cannot leave one out; the live
            # stream retries a failing batch set by set, so only these sets go unscored.
            if invalid.any():
                raise InputError(
                    f"{batch.source or 'batch'}: view '{view}' is missing for frame(s) "
                    f"{batch.frame_index[invalid][:5].tolist()}; the lerobot classifier needs all of {views}"
                )
        probabilities = self.classifier.predict(self.images(batch, views)).probabilities
        if probabilities.ndim == 2:
            probabilities = probabilities[:, -1]
        success = probabilities.float().cpu().numpy().astype(np.float64)
        return Scores(progress=success, success=success, per_view={view: success for view in views})


def load_classifier(path: Path, encoder: str, device: torch.device) -> Any:
    """``Classifier.from_pretrained(path)`` on ``device``, with errors that name what is missing."""
    policies = require("lerobot.configs.policies", "lerobot", "the lerobot-classifier model")
    modeling = require(
        "lerobot.policies.sac.reward_model.modeling_classifier", "lerobot", "the lerobot-classifier model"
    )
    for needed in (path / "config.json", path / WEIGHTS):
        if not needed.is_file():
            raise ConfigError(f"not a saved LeRobot reward classifier: {needed} does not exist")
    config = policies.PreTrainedConfig.from_pretrained(path)
    if not isinstance(config, modeling.RewardClassifierConfig):
        raise ConfigError(f"{path / 'config.json'}: a '{config.type}' policy, not a reward_classifier")
    from huggingface_hub.errors import HFValidationError  # a lerobot dependency

    if encoder:
        config.model_name = encoder
    config.device = str(device)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # lerobot prints a line while loading; stdout may be data
            classifier = modeling.Classifier.from_pretrained(path, config=config)
    # transformers' errors for a model name that is neither a model folder nor a cached Hub id
    # (HFValidationError: a path that does not exist and so is read as a malformed Hub id)
    except (OSError, HFValidationError) as exc:
        source = "--option encoder" if encoder else f"model_name in {path / 'config.json'}"
        raise ConfigError(
            f"{path}: building the classifier needs its encoder '{config.model_name}' ({source}) to be a local "
            f"model directory or a Hub id in the Hugging Face cache; loading it failed ({exc}). "
            "Point it at a local copy with --option encoder=DIR"
        ) from exc
    return classifier.to(device).eval()


def load_preprocessor(path: Path, device: torch.device) -> Any | None:
    """The pre-processor pipeline lerobot-train saved with the classifier, or None (with a warning)."""
    if not (path / PREPROCESSOR_CONFIG).is_file():
        warnings.warn(
            f"{path}: no {PREPROCESSOR_CONFIG}; images go to the classifier unnormalised in [0, 1]. If it was "
            "trained with lerobot-train, copy the pre-processor files of its checkpoint next to the weights",
            stacklevel=3,
        )
        return None
    processor = require("lerobot.processor", "lerobot", "the lerobot-classifier model")
    converters = require("lerobot.processor.converters", "lerobot", "the lerobot-classifier model")
    return processor.PolicyProcessorPipeline.from_pretrained(
        path,
        config_filename=PREPROCESSOR_CONFIG,
        overrides={"device_processor": {"device": str(device)}},
        to_transition=converters.batch_to_transition,
        to_output=converters.transition_to_batch,
    )
