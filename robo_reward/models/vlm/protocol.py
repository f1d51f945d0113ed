"""What every VLM reward protocol shares: questions, plans, asking with parse retries, and
the per-episode state that sequential protocols keep in the episode context.

A protocol turns the samples of one episode in a batch into a :class:`Plan`: the
questions to ask (all of them in flight at once, across episodes and views) and how to
turn their parsed answers into per-view progress and success. Protocols whose scores
depend on earlier frames of the episode (a pairwise critic, a growing clip) are
``sequential``: they keep what they need in :attr:`EpisodeContext.cache` and must see an
episode's samples in playing order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from robo_reward.errors import InputError
from robo_reward.models.vlm.client import ChatBackend, ChatRequest, Clip, Completion
from robo_reward.types import EpisodeContext, FrameBatch, Task


@dataclass(frozen=True)
class Question:
    """One request and how to read its answer.

    ``read`` returns the parsed value or raises ValueError saying what is wrong with the
    answer; then the question is asked again, hotter, unless ``retry`` is False (an answer
    read from logprobs, which the temperature does not change)."""

    request: ChatRequest
    read: Callable[[Completion], Any]
    retry: bool = True


@dataclass
class ViewScores:
    """One episode's samples in a batch (n of them), as a protocol scores them.

    Attributes:
        progress: view name → progress (n,), NaN where the view was not scored.
        success: view name → success probability (n,); empty: success = progress.
        joint: progress (n,) judged from all views at once (a protocol whose requests hold
            every view); then ``progress`` is empty, as no value comes from one view alone.
    """

    progress: dict[str, np.ndarray]
    success: dict[str, np.ndarray] = field(default_factory=dict)
    joint: np.ndarray | None = None


@dataclass
class Plan:
    """The questions about one episode's samples and how their answers become scores.

    ``finish`` receives the parsed answers in question order; a sequential protocol
    advances its episode state there (never while planning, so a failed request leaves
    the state as it was)."""

    questions: list[Question]
    finish: Callable[[list[Any]], ViewScores]


class Protocol(ABC):
    """How one published VLM reward model is asked about frames and its answers read.

    Attributes:
        name: the ``protocol=`` option value.
        sequential: scores depend on the episode's earlier samples (see module docs).
        success_note: what the success output is, for ``describe()``.
    """

    name: ClassVar[str]
    sequential: ClassVar[bool] = False
    success_note: ClassVar[str] = "success = progress"

    def __init__(self, config: Any) -> None:
        self.config = config

    @abstractmethod
    def plan(self, task: Task, context: EpisodeContext, batch: FrameBatch, where: str) -> Plan:
        """The plan for ``batch``: samples of one episode, in playing order, whose context is ``context``."""

    def state(self, context: EpisodeContext, key: str, make: Callable[[], Any]) -> Any:
        """This protocol's per-episode state ``key`` in the episode context (made on first use)."""
        slot = (id(self), key)
        if slot not in context.cache:
            context.cache[slot] = make()
        return context.cache[slot]


def ask(backend: ChatBackend, questions: Sequence[Question], parse_retries: int, temperature_step: float,
        protocol: str) -> list[Any]:
    """Parsed answers to ``questions``, all in flight at once; a malformed answer is asked
    again ``parse_retries`` times (hotter by ``temperature_step`` each time), then raises an
    InputError naming the request's episode and frames and showing the raw answer."""
    values: list[Any] = [None] * len(questions)
    failures: dict[int, tuple[str, Completion]] = {}
    pending = list(range(len(questions)))
    failed: list[int] = []
    for attempt in range(parse_retries + 1):
        requests = [replace(questions[j].request, temperature=questions[j].request.temperature + attempt * temperature_step)
                    for j in pending]
        failed = []
        for j, answer in zip(pending, backend.complete_many(requests)):
            try:
                values[j] = questions[j].read(answer)
            except ValueError as exc:
                failures[j] = (str(exc), answer)
                failed.append(j)
        pending = [j for j in failed if questions[j].retry]
        if not pending:
            break
    if not failed:
        return values
    reason, answer = failures[failed[0]]
    question = questions[failed[0]]
    if answer.finish_reason == "length":
        reason += f"; the answer was cut at max_tokens={question.request.max_tokens}, raise it"
    shown = answer.text if len(answer.text) <= 400 else answer.text[:400] + "…"
    asked = parse_retries + 1 if question.retry else 1
    raise InputError(
        f"{question.request.where}: {protocol} answer unusable after {asked} request(s) "
        f"({reason}); raw answer: {shown!r}"
    )


def first_image(context: EpisodeContext, view: str, where: str) -> np.ndarray:
    """The episode's first image of ``view`` (H, W, 3)."""
    if view not in context.first.views:
        raise InputError(f"{where}: the episode's first set has no view '{view}'")
    return context.first.views[view][0]


def span(frames: np.ndarray) -> str:
    """Frame indices, shortened for a message."""
    values = [int(f) for f in frames]
    return f"{values[:3]}…{values[-1]} ({len(values)} frames)" if len(values) > 8 else str(values)


class ClipHistory:
    """An episode's frames of one view, kept at about ``fps`` for growing clips, in bounded memory.

    ``keep="spread"`` keeps at most ``2·max_frames`` frames spread over the whole episode
    (when full, every other one is dropped and the keeping rate halves), so a clip of the
    episode so far can always be drawn evenly from it; ``keep="recent"`` keeps the last
    ``max_frames`` (TOPReward's window)."""

    def __init__(self, fps: float, max_frames: int, keep: str) -> None:
        self.period_ns = int(1e9 / fps)
        self.max_frames = max_frames
        self.keep = keep
        self.frames: list[np.ndarray] = []
        self.stamps: list[int] = []

    def copy(self) -> ClipHistory:
        twin = ClipHistory.__new__(ClipHistory)
        twin.__dict__.update(self.__dict__, frames=list(self.frames), stamps=list(self.stamps))
        return twin

    def clip_with(self, frame: np.ndarray) -> np.ndarray:
        """The clip ending at ``frame`` (T, H, W, 3): the kept frames, then ``frame``, at most
        ``max_frames`` (evenly drawn for ``spread``, the latest for ``recent``); a clip of
        one frame shows it twice (Qwen-VL video patches span 2 frames; Qwen3-VL refuses 1)."""
        frames = self.frames + [frame] if self.frames else [frame, frame]
        if len(frames) > self.max_frames:
            if self.keep == "recent":
                frames = frames[-self.max_frames:]
            else:
                picks = np.unique(np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int))
                frames = [frames[i] for i in picks]
        return np.stack(frames)

    def add(self, frame: np.ndarray, stamp_ns: int) -> None:
        """Keep ``frame`` if it is at least a period after the last kept one."""
        if self.stamps and abs(stamp_ns - self.stamps[-1]) < self.period_ns:  # abs: an episode played backwards
            return
        self.frames.append(frame)
        self.stamps.append(stamp_ns)
        if self.keep == "recent" and len(self.frames) > self.max_frames:
            del self.frames[0], self.stamps[0]
        elif self.keep == "spread" and len(self.frames) > 2 * self.max_frames:
            self.frames, self.stamps = self.frames[::2], self.stamps[::2]
            self.period_ns *= 2


class ClipProtocol(Protocol):
    """A protocol asking about the clip of the episode so far, one request per view and sample.

    Subclasses give the history's ``keep`` rule and :meth:`question`, whose ``read`` returns
    (progress, success). With ``config.stride`` k only every k-th sample of the episode is
    asked; the samples between hold the last answer (causal, so a live stream can use it)."""

    sequential = True
    keep: ClassVar[str]

    @abstractmethod
    def question(self, task: Task, clip: Clip, where: str) -> Question:
        """The question about ``clip``, whose ``read`` gives (progress, success)."""

    def plan(self, task: Task, context: EpisodeContext, batch: FrameBatch, where: str) -> Plan:
        config = self.config
        questions: list[Question] = []
        steps: list[tuple[str, int, bool]] = []  # view, sample, asked
        states = {}
        for view, images in batch.views.items():
            state = self.state(context, view, lambda: {
                "history": ClipHistory(config.clip_fps, config.max_frames, self.keep), "seen": 0, "last": None})
            history, seen = state["history"].copy(), state["seen"]
            for i in np.flatnonzero(batch.valid_mask(view)):
                asked = seen % config.stride == 0
                if asked:
                    clip = Clip(history.clip_with(images[i]), config.clip_fps)
                    questions.append(self.question(task, clip, f"{where} view '{view}' frame "
                                                               f"{span(batch.frame_index[i:i + 1])}"))
                steps.append((view, int(i), asked))
                history.add(images[i], int(batch.timestamps_ns[i]))
                seen += 1
            states[view] = (state, history, seen)

        def finish(values: list[tuple[float, float]]) -> ViewScores:
            progress = {view: np.full(len(batch), np.nan) for view in batch.views}
            success = {view: np.full(len(batch), np.nan) for view in batch.views}
            answers = iter(values)
            last = {view: state["last"] for view, (state, _, _) in states.items()}
            for view, i, asked in steps:
                if asked:
                    last[view] = next(answers)
                progress[view][i], success[view][i] = last[view]
            for view, (state, history, seen) in states.items():
                state.update(history=history, seen=seen, last=last[view])
            return ViewScores(progress, success)

        return Plan(questions, finish)
