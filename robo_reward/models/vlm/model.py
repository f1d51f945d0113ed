"""``vlm``: a vision-language model served over an OpenAI-compatible API (vLLM) as a
reward model, behind the same interface as the others (issue 12).

Protocols: ``gvl`` (Ma et al. 2024, "Vision Language Models are In-Context Value
Learners"; see :mod:`robo_reward.models.vlm.gvl`). Each view of each episode in a batch
is one request (all in flight at once, up to ``concurrency``); per-view progress is fused
with :func:`robo_reward.fusion.fuse_views`. GVL gives no success probability, so
**success = progress**. A malformed answer is asked again (``parse_retries`` times, the
temperature raised by ``retry_temperature_step`` each time), then stops with an
InputError naming the episode, frames and raw answer — never a silent 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.fusion import fuse_views
from robo_reward.models import register_model
from robo_reward.models.base import RewardModel
from robo_reward.models.vlm import gvl
from robo_reward.models.vlm.client import ChatClient
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

PROTOCOLS = ("gvl",)


@dataclass
class VlmConfig:
    """Options of the ``vlm`` model.

    Attributes:
        protocol: how frames are asked about and answers read; only ``gvl`` for now.
        base_url: the OpenAI-compatible endpoint, e.g. a vLLM server's ``http://HOST:PORT/v1``.
        model: the served model name.
        image_size: images are resized to this square size before sending.
        max_tokens, temperature: sampling of every request (a GVL answer takes about 12
            tokens per frame: 1024 suffices for ~64 frames per request, i.e. ``--batch-size``).
        concurrency: most requests in flight.
        timeout_s, max_retries, backoff_s: per HTTP call; retries on 429/5xx/timeouts.
        parse_retries: further requests after a malformed answer.
        retry_temperature_step: temperature added on each of those.
        cache_dir: on-disk answer cache (None: in memory only).
        api_key_env: environment variable holding the API key (else OPENAI_API_KEY).
        instruction_first: GVL's instruction line before the frames (as OpenGVL's
            ``iter_prompt_events`` sends it) instead of after them.
    """

    protocol: str = "gvl"
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    image_size: int = 224
    max_tokens: int = 1024
    temperature: float = 0.0
    concurrency: int = 16
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    parse_retries: int = 2
    retry_temperature_step: float = 0.3
    cache_dir: str | None = None
    api_key_env: str = "ROBO_REWARD_API_KEY"
    instruction_first: bool = False


@register_model("vlm")
class VlmRewardModel(RewardModel):
    """A served VLM scoring each frame against its episode's first frame (GVL)."""

    config_class = VlmConfig
    uses_context = True

    def __init__(self, config: VlmConfig) -> None:
        super().__init__(config)
        if config.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown VLM protocol '{config.protocol}'; available: {', '.join(PROTOCOLS)}")
        if config.image_size < 1 or config.max_tokens < 1 or config.parse_retries < 0:
            raise ConfigError("image_size and max_tokens must be >= 1 and parse_retries >= 0")
        self.client = ChatClient(
            config.base_url, config.model, api_key_env=config.api_key_env, timeout_s=config.timeout_s,
            max_retries=config.max_retries, backoff_s=config.backoff_s, concurrency=config.concurrency,
            cache_dir=config.cache_dir, image_size=config.image_size,
        )

    def describe(self) -> str:
        return super().describe() + " [success = progress: GVL gives no success probability]"

    def _score(self, batch: FrameBatch, task: Task, contexts: Sequence[EpisodeContext] | None) -> Scores:
        assert contexts is not None  # uses_context: RewardModel.score guarantees one
        size = len(batch)
        groups: dict[int, list[int]] = {}  # samples of one episode (context) go in one request per view
        for i, context in enumerate(contexts):
            groups.setdefault(id(context), []).append(i)
        multi_view = len(batch.views) > 1
        jobs = []  # (view, samples, query)
        for view, images in batch.views.items():
            valid = batch.valid_mask(view)
            for members in groups.values():
                samples = np.array([i for i in members if valid[i]], dtype=np.int64)
                if len(samples) == 0:
                    continue
                first_views = contexts[members[0]].first.views
                if view not in first_views:
                    raise ConfigError(f"{batch.source or 'batch'}: the episode's first set has no view '{view}'")
                frames = batch.frame_index[samples]
                where = f"{batch.source or 'batch'} view '{view}' frame(s) {_span(frames)}"
                query = gvl.build_query(task.instruction, first_views[view][0], images[samples], frames, where,
                                        view=view if multi_view else None, max_tokens=self.config.max_tokens,
                                        temperature=self.config.temperature,
                                        instruction_first=self.config.instruction_first)
                jobs.append((view, samples, query))
        per_view = {view: np.full(size, np.nan) for view in batch.views}
        pending = list(range(len(jobs)))
        failures: dict[int, tuple[str, str]] = {}
        for attempt in range(self.config.parse_retries + 1):
            temperature = self.config.temperature + attempt * self.config.retry_temperature_step
            requests = [replace(jobs[j][2].request, temperature=temperature) for j in pending]
            answers = self.client.complete_many(requests)
            still = []
            for j, answer in zip(pending, answers):
                view, samples, query = jobs[j]
                try:
                    per_view[view][samples] = gvl.progress_from_answer(answer.text, query.order)
                except ValueError as exc:
                    reason = str(exc)
                    if answer.finish_reason == "length":
                        reason += f"; the answer was cut at max_tokens={self.config.max_tokens}, raise it"
                    failures[j] = (reason, answer.text)
                    still.append(j)
            pending = still
            if not pending:
                break
        if pending:
            view, samples, query = jobs[pending[0]]
            reason, text = failures[pending[0]]
            raise gvl.malformed_error(query.request.where, batch.frame_index[samples].tolist(), reason, text,
                                      self.config.parse_retries + 1)
        valid = {view: batch.valid_mask(view) for view in batch.views}
        progress, uncertainty = fuse_views(per_view, valid, source=batch.source, frame_index=batch.frame_index)
        return Scores(progress=progress, success=progress.copy(), per_view=per_view, uncertainty=uncertainty)


def _span(frames: np.ndarray) -> str:
    values = [int(f) for f in frames]
    return f"{values[:3]}…{values[-1]} ({len(values)} frames)" if len(values) > 8 else str(values)
