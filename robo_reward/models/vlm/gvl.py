"""GVL: generative value learning (Ma et al. 2024, "Vision Language Models are In-Context
Value Learners"), with OpenGVL's prompt phrases (budzianowski/opengvl,
``configs/prompts/default.yaml``, ``configs/prompt_phrases/default.yaml``).

One request per (episode, view) holds, in order: the base prompt, "Initial robot scene:",
the episode's first frame, "In the initial robot scene, the task completion percentage
is 0%.", the batch's frames **shuffled** (a fixed permutation seeded by the frames'
indices, so a rerun asks the same question and hits the cache), each after
``Frame {i}:`` (i = 1…N in shuffled order), and the instruction line (OpenGVL's code
puts that line before the frames instead: ``instruction_first``). The answer must
hold ``Frame {i}: Task Completion Percentages:{p}%`` for every i exactly once with p in
[0, 100]; it is un-shuffled and progress = p / 100. Unlike OpenGVL, fractional values are
**not** rescaled to sum to 100 (that would turn completion percentages into shares).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from robo_reward.models.vlm.client import ChatRequest, Message, Part
from robo_reward.models.vlm.protocol import Plan, Protocol, Question, ViewScores, first_image, span
from robo_reward.types import EpisodeContext, FrameBatch, Task

BASE_PROMPT = (
    "You are an expert roboticist tasked to predict task completion percentages for frames of a robot for the "
    "task of {instruction}. The task completion percentages are between 0 and 100, where 100 corresponds to full "
    "task completion. The frames may be in random order; reason about each frame independently when estimating "
    "completion."
)
INITIAL_SCENE = "Initial robot scene:"
INITIAL_COMPLETION = "In the initial robot scene, the task completion percentage is 0%."
FRAME_LABEL = "Frame {i}:"
INSTRUCTION = (
    "Now, for the task of {instruction}, output the task completion percentage for the following frames that are "
    "presented in random order. For each frame, format your response as follow: "
    "Frame {{i}}: Task Completion Percentages:{{}}%"
)
VIEW_NOTE = "All images below are from the '{view}' camera view."
ANSWER = re.compile(r"Frame\s*(\d+)\s*:\s*Task\s+Completion\s+Percentages?\s*:\s*(-?\d+(?:\.\d+)?)\s*%", re.IGNORECASE)


def shuffle_order(frame_index: np.ndarray) -> np.ndarray:
    """The fixed permutation of a batch: position k of the prompt shows sample ``order[k]``.

    Seeded by a hash of the frames' indices, so the same frames are always shown alike."""
    indices = np.ascontiguousarray(np.asarray(frame_index, dtype=np.int64))
    seed = int.from_bytes(hashlib.sha256(indices.tobytes()).digest()[:8], "little")
    return np.random.default_rng(seed).permutation(len(indices))


@dataclass(frozen=True)
class GvlQuery:
    """One GVL request and what is needed to read its answer."""

    request: ChatRequest
    order: np.ndarray  # prompt position k shows sample order[k] of the query's frames


def build_query(
    instruction: str,
    first: np.ndarray,
    frames: np.ndarray,
    frame_index: np.ndarray,
    where: str,
    view: str | None = None,
    max_tokens: int = 1024,
    temperature: float = 0.0,
    instruction_first: bool = False,
) -> GvlQuery:
    """The GVL request for ``frames`` (N, H, W, 3) of one view, after the episode's ``first`` frame.

    The instruction line comes after the frames, or, with ``instruction_first``, right
    before them (where OpenGVL's ``iter_prompt_events`` puts it)."""
    order = shuffle_order(frame_index)
    parts: list[Part] = [BASE_PROMPT.format(instruction=instruction)]
    if view is not None:
        parts.append(VIEW_NOTE.format(view=view))
    parts += [INITIAL_SCENE, first, INITIAL_COMPLETION]
    if instruction_first:
        parts.append(INSTRUCTION.format(instruction=instruction))
    for position, sample in enumerate(order, start=1):
        parts += [FRAME_LABEL.format(i=position), frames[sample]]
    if not instruction_first:
        parts.append(INSTRUCTION.format(instruction=instruction))
    request = ChatRequest(messages=(Message("user", tuple(parts)),), where=where, max_tokens=max_tokens,
                          temperature=temperature)
    return GvlQuery(request=request, order=order)


def parse_answer(text: str, count: int) -> np.ndarray:
    """Percentages in prompt order (count,) from a GVL answer; raises ValueError saying what is wrong.

    Every ``Frame {i}`` for i = 1…count must appear exactly once, with a value in [0, 100]."""
    found: dict[int, float] = {}
    for match in ANSWER.finditer(text or ""):
        position, value = int(match.group(1)), float(match.group(2))
        if position in found:
            raise ValueError(f"frame {position} is answered twice")
        if not 1 <= position <= count:
            raise ValueError(f"frame {position} is not one of frames 1..{count}")
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"frame {position} has {value}%, outside [0, 100]")
        found[position] = value
    missing = [i for i in range(1, count + 1) if i not in found]
    if missing:
        raise ValueError(f"no 'Frame i: Task Completion Percentages:p%' for frame(s) {missing[:10]}")
    return np.array([found[i] for i in range(1, count + 1)], dtype=np.float64)


def progress_from_answer(text: str, order: np.ndarray) -> np.ndarray:
    """Progress in [0, 1] per sample (in the batch's order) from an answer to a query shuffled by ``order``."""
    percent = parse_answer(text, len(order))
    progress = np.empty(len(order), dtype=np.float64)
    progress[order] = percent / 100.0
    return progress


class GvlProtocol(Protocol):
    """One request per view of an episode's samples in a batch (the batch is GVL's frame set)."""

    name = "gvl"
    success_note = "success = progress: GVL gives no success probability"

    def plan(self, task: Task, context: EpisodeContext, batch: FrameBatch, where: str) -> Plan:
        questions, targets = [], []
        for view, images in batch.views.items():
            samples = np.flatnonzero(batch.valid_mask(view))
            if len(samples) == 0:
                continue
            frames = batch.frame_index[samples]
            query = build_query(
                task.instruction, first_image(context, view, where), images[samples], frames,
                f"{where} view '{view}' frame(s) {span(frames)}", view=view if len(batch.views) > 1 else None,
                max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                instruction_first=self.config.instruction_first,
            )
            questions.append(Question(query.request, lambda answer, order=query.order: progress_from_answer(answer.text, order)))
            targets.append((view, samples))

        def finish(values: list[np.ndarray]) -> ViewScores:
            progress = {view: np.full(len(batch), np.nan) for view in batch.views}
            for (view, samples), value in zip(targets, values):
                progress[view][samples] = value
            return ViewScores(progress)

        return Plan(questions, finish)
