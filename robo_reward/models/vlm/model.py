"""``vlm``: vision-language reward models behind the same interface as the others (issue 12),
served over an OpenAI-compatible API (vLLM) or loaded locally with transformers.

Protocols (each a small module that builds the requests and reads the answers):
``gvl`` (:mod:`.gvl`), ``dopamine`` (:mod:`.dopamine`), ``roboreward`` (:mod:`.roboreward`),
``vlac`` (:mod:`.vlac`), ``topreward`` (:mod:`.topreward`). Every request of a batch (all
episodes, all views) is in flight at once, up to ``concurrency``; per-view progress and
success are fused with :func:`robo_reward.fusion.fuse_views`. A malformed answer is asked
again (``parse_retries`` times, the temperature raised by ``retry_temperature_step`` each
time), then stops with an InputError naming the episode, frames and raw answer — never a
silent 0. Protocols whose scores depend on earlier frames are ``sequential``: labeling
scores a reversed episode by playing it backwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.fusion import fuse_views
from robo_reward.models import register_model
from robo_reward.models.base import RewardModel
from robo_reward.models.vlm.client import ChatBackend, ChatClient
from robo_reward.models.vlm.dopamine import DopamineProtocol
from robo_reward.models.vlm.gvl import GvlProtocol
from robo_reward.models.vlm.protocol import Protocol, ask
from robo_reward.models.vlm.roboreward import RoboRewardProtocol
from robo_reward.models.vlm.topreward import TopRewardProtocol
from robo_reward.models.vlm.vlac import VlacProtocol
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

PROTOCOLS: dict[str, type[Protocol]] = {
    p.name: p for p in (GvlProtocol, DopamineProtocol, RoboRewardProtocol, VlacProtocol, TopRewardProtocol)
}
#: Each protocol's values of the options left unset (None), as its released code uses them.
DEFAULTS: dict[str, dict[str, object]] = {
    "gvl": {"max_tokens": 1024, "temperature": 0.0, "image_size": 224},
    "dopamine": {"max_tokens": 1024, "temperature": 0.1, "image_size": 224},
    "roboreward": {"max_tokens": 128, "temperature": 0.0, "image_size": 224, "clip_fps": 1.0, "max_frames": 32},
    "vlac": {"max_tokens": 16, "temperature": 0.0, "image_size": 448},
    "topreward": {"max_tokens": 1, "temperature": 0.0, "image_size": 224, "clip_fps": 2.0, "max_frames": 16},
}
BACKENDS = ("http", "transformers")


@dataclass
class VlmConfig:
    """Options of the ``vlm`` model (None: the protocol's default, see ``DEFAULTS``).

    Attributes:
        protocol: one of ``gvl``, ``dopamine``, ``roboreward``, ``vlac``, ``topreward``.
        backend: ``http`` (an OpenAI-compatible server at ``base_url``) or
            ``transformers`` (``model`` loaded locally on ``device``).
        base_url: the server's endpoint, e.g. a vLLM server's ``http://HOST:PORT/v1``.
        model: the served model name, or (transformers) a hub id or local directory.
        device: transformers backend only: ``cpu`` or ``cuda``.
        image_size: images and clip frames are resized to this square size before sending.
        max_tokens, temperature: sampling of every request.
        concurrency: most requests in flight (http).
        timeout_s, max_retries, backoff_s: per HTTP call; retries on 429/5xx/timeouts.
        parse_retries: further requests after a malformed answer.
        retry_temperature_step: temperature added on each of those.
        cache_dir: on-disk answer cache (None: in memory only; http).
        api_key_env: environment variable holding the API key (else OPENAI_API_KEY).
        instruction_first: gvl: the instruction line before the frames (OpenGVL's code).
        modes: dopamine: estimates to fuse, of ``incremental``, ``forward``, ``backward``.
        goal_image: dopamine: the REFERENCE END image file (``backward`` needs it).
        clip_fps, max_frames: roboreward / topreward: the clip's frame rate and length.
        stride: roboreward / topreward: ask every stride-th sample, hold the answer between.
        top_logprobs: ask for this many alternatives per token and use expectations
            (roboreward, vlac ``rich``); topreward always asks (default 20).
        done_check, done_threshold: vlac: ask the done question; success threshold.
    """

    protocol: str = "gvl"
    backend: str = "http"
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    device: str = "cpu"
    image_size: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    parse_retries: int = 2
    retry_temperature_step: float = 0.3
    cache_dir: str | None = None
    api_key_env: str = "ROBO_REWARD_API_KEY"
    instruction_first: bool = False
    modes: str = "incremental,forward"
    goal_image: str | None = None
    clip_fps: float | None = None
    max_frames: int | None = None
    stride: int = 1
    top_logprobs: int = 0
    done_check: bool = True
    done_threshold: float = 0.9


@register_model("vlm")
class VlmRewardModel(RewardModel):
    """A vision-language model asked about each episode's frames by one of the protocols."""

    config_class = VlmConfig
    uses_context = True

    def __init__(self, config: VlmConfig) -> None:
        if config.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown VLM protocol '{config.protocol}'; available: {', '.join(PROTOCOLS)}")
        if config.backend not in BACKENDS:
            raise ConfigError(f"unknown VLM backend '{config.backend}'; available: {', '.join(BACKENDS)}")
        unset = {f.name for f in fields(config) if getattr(config, f.name) is None}
        config = replace(config, **{k: v for k, v in DEFAULTS[config.protocol].items() if k in unset})
        if config.image_size < 1 or config.max_tokens < 1 or config.parse_retries < 0 or config.stride < 1:
            raise ConfigError("image_size, max_tokens and stride must be >= 1 and parse_retries >= 0")
        if config.max_frames is not None and config.max_frames < 1 or config.clip_fps is not None and config.clip_fps <= 0:
            raise ConfigError("max_frames must be >= 1 and clip_fps > 0")
        super().__init__(config)
        self.protocol = PROTOCOLS[config.protocol](config)
        self.backend = make_backend(config)

    @property
    def sequential(self) -> bool:  # type: ignore[override]
        return self.protocol.sequential

    def describe(self) -> str:
        return f"{super().describe()} [{self.config.protocol} via {self.backend.describe()}; {self.protocol.success_note}]"

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        assert contexts is not None  # uses_context: RewardModel.score guarantees one
        groups: dict[int, list[int]] = {}  # the samples of one episode (context), in batch order
        for i, context in enumerate(contexts):
            groups.setdefault(id(context), []).append(i)
        where = batch.source or "batch"
        plans = []
        for members in groups.values():
            samples = np.array(members, dtype=np.int64)
            plans.append((samples, self.protocol.plan(task, contexts[members[0]], batch.select(samples), where)))
        questions = [q for _, plan in plans for q in plan.questions]
        answers = ask(self.backend, questions, self.config.parse_retries, self.config.retry_temperature_step,
                      self.config.protocol)
        size = len(batch)
        per_view = {view: np.full(size, np.nan) for view in batch.views}
        success_per_view = {view: np.full(size, np.nan) for view in batch.views}
        joint = np.full(size, np.nan)
        start = 0
        for samples, plan in plans:
            scored = plan.finish(answers[start:start + len(plan.questions)])
            start += len(plan.questions)
            if scored.joint is not None:
                joint[samples] = scored.joint
            for view, values in scored.progress.items():
                per_view[view][samples] = values
                success_per_view[view][samples] = scored.success.get(view, values)
        if np.isfinite(joint).all():
            return Scores(progress=joint, success=joint.copy(), per_view={}, uncertainty=np.zeros(size))
        valid = {view: np.isfinite(values) for view, values in per_view.items()}
        progress, uncertainty = fuse_views(per_view, valid, source=batch.source, frame_index=batch.frame_index)
        success, _ = fuse_views(success_per_view, valid, source=batch.source, frame_index=batch.frame_index)
        return Scores(progress=progress, success=success, per_view=per_view, uncertainty=uncertainty)


def make_backend(config: VlmConfig) -> ChatBackend:
    """The chat backend the options name."""
    if config.backend == "transformers":
        from robo_reward.models.vlm.local import TransformersBackend

        return TransformersBackend(config.model, device=config.device, image_size=config.image_size)
    return ChatClient(
        config.base_url, config.model, api_key_env=config.api_key_env, timeout_s=config.timeout_s,
        max_retries=config.max_retries, backoff_s=config.backoff_s, concurrency=config.concurrency,
        cache_dir=config.cache_dir, image_size=config.image_size,
    )
