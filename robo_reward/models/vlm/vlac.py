"""VLAC (InternRobotics/VLAC; "A Vision-Language-Action-Critic model for robotic real-world
reinforcement learning"): a pairwise progress critic accumulated into a value, and a done
check, with the prompts of ``GAC_model`` (its ``v3`` critic template and ``task_done``).

* **critic**: Image-1 = the episode's previous sample, Image-2 = this one; the answer is
  a signed number c (percent; + means the second image is closer to done). The value as
  ``critic_to_value_simple``: v₀ = 0, v ← v + (100 − v)·c/100 for every c, negative
  ones included; progress = v / 100, clipped to [0, 1] (v itself is kept unclipped).
  The episode's first set has v = 0 and is not asked about.
* **rich** (``top_logprobs``): every digit token of the answer is replaced by its
  expectation over the digit alternatives with p > 0.1·p_max (VLAC's ``results_format``).
* **done** (``done_check``): "The 1 means yes, the 0 means no. Check if the robot has
  completed its task…" on the current image; success = d if d > ``done_threshold``
  (VLAC's README uses 0.9 with rich output) else 0. Without it, success = progress.

Single view in VLAC's own code; here one critic per view, fused like every model. The
reference-trajectory (in-context) prompts are not used. Images are sent at 448×448 in
VLAC's code: set ``image_size=448``. Sequential: samples in playing order.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from robo_reward.models.vlm.client import ChatRequest, Completion, Message, TokenLogprob, expected_value
from robo_reward.models.vlm.protocol import Plan, Protocol, Question, ViewScores, first_image, span
from robo_reward.types import EpisodeContext, FrameBatch, Task

SYSTEM = (
    "You are a visual-language assistant designed to interpret spatial and task-related information from images "
    "and text. Provide precise, context-aware responses and actionable guidance to assist in achieving task "
    "objectives."
)
CRITIC = (
    "Compare two images and evaluate whether the second image is closer to achieving task objectives compared to "
    "the first image. + score means the second image is closer, - score means the first image is closer\n"
    "Response the relative progressing of target task follow <score>. The target task is: <task> {task} </task> "
    "<score>"
)
DONE = "The 1 means yes, the 0 means no. Check if the robot has completed its task: <task> {task} </task> <done>"
NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")
DIGITS = {str(d): float(d) for d in range(10)}
RICH_MIN_RATIO = 0.1


def parse_number(text: str) -> float:
    """A bare signed number, as VLAC reads it (``float(answer)``)."""
    if not NUMBER.match(text or ""):
        raise ValueError("the answer is not a bare number")
    return float(text)


def expected_number(tokens: tuple[TokenLogprob, ...]) -> float:
    """The answer's number with every single-digit token replaced by its expected digit."""
    if not tokens:
        raise ValueError("the server returned no logprobs (needed with top_logprobs)")
    sign, whole, fraction, in_fraction = 1.0, [], [], False
    for token in tokens:
        text = token.token.strip()
        if text in DIGITS:
            digits = [expected_value(token.top or ((token.token, token.logprob),), DIGITS, RICH_MIN_RATIO)]
        else:
            digits = []
            for char in text:
                if char == "-" and not whole and not fraction:
                    sign = -1.0
                elif char == ".":
                    in_fraction = True
                elif char.isdigit():
                    digits.append(float(char))
                elif char != "+":
                    raise ValueError(f"token {token.token!r} is not part of a number")
        (fraction if in_fraction else whole).extend(digits)
    if not whole and not fraction:
        raise ValueError("the answer holds no digits")
    value = sum(d * 10.0 ** (len(whole) - 1 - k) for k, d in enumerate(whole))
    value += sum(d * 10.0 ** -(k + 1) for k, d in enumerate(fraction))
    return sign * value


def accumulate(value: float, critic: float) -> float:
    """VLAC's ``critic_to_value_simple`` step (both in percent)."""
    return value + (100.0 - value) * critic / 100.0


class VlacProtocol(Protocol):
    """VLAC's pairwise critic and done check, one critic chain per view."""

    name = "vlac"
    sequential = True
    success_note = "success = the done check (d if d > done_threshold else 0)"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if not config.done_check:
            self.success_note = "success = progress (done_check off)"

    def read(self, answer: Completion) -> float:
        return expected_number(answer.logprobs) if self.config.top_logprobs else parse_number(answer.text)

    def read_done(self, answer: Completion) -> float:
        if self.config.top_logprobs:
            if not answer.logprobs:
                raise ValueError("the server returned no logprobs (needed with top_logprobs)")
            first = answer.logprobs[0]
            done = expected_value(first.top or ((first.token, first.logprob),), {"0": 0.0, "1": 1.0})
        else:
            done = parse_number(answer.text)
            if done not in (0.0, 1.0):
                raise ValueError(f"the done check answered {done:g}, not 0 or 1")
        return done if done > self.config.done_threshold else 0.0

    def request(self, parts: tuple, where: str) -> ChatRequest:
        return ChatRequest(messages=(Message("system", (SYSTEM,)), Message("user", parts)), where=where,
                           max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                           top_logprobs=self.config.top_logprobs or None)

    def plan(self, task: Task, context: EpisodeContext, batch: FrameBatch, where: str) -> Plan:
        questions: list[Question] = []
        steps: list[tuple[str, int, int | None, int | None]] = []  # view, sample, critic question, done question
        chains = {}
        for view, images in batch.views.items():
            state = self.state(context, view, dict)
            previous = state.get("image", first_image(context, view, where))
            started = "image" in state
            for i in np.flatnonzero(batch.valid_mask(view)):
                at = f"{where} view '{view}' frame {span(batch.frame_index[i:i + 1])}"
                critic = done = None
                is_start = not started and batch.frame_index[i] == context.first.frame_index[0] and (
                    batch.timestamps_ns[i] == context.first.timestamps_ns[0])
                if not is_start:
                    critic = len(questions)
                    questions.append(Question(self.request(
                        ("Image-1: ", previous, "\nImage-2: ", images[i], "\n" + CRITIC.format(task=task.instruction)),
                        at + " (critic)"), self.read))
                if self.config.done_check:
                    done = len(questions)
                    questions.append(Question(self.request((images[i], DONE.format(task=task.instruction)),
                                                           at + " (done)"), self.read_done))
                steps.append((view, int(i), critic, done))
                previous, started = images[i], True
            chains[view] = (state, previous if started else None)

        def finish(values: list[Any]) -> ViewScores:
            progress = {view: np.full(len(batch), np.nan) for view in batch.views}
            success = {view: np.full(len(batch), np.nan) for view in batch.views}
            value = {view: state.get("value", 0.0) for view, (state, _) in chains.items()}
            for view, i, critic, done in steps:
                if critic is not None:
                    value[view] = accumulate(value[view], values[critic])
                progress[view][i] = float(np.clip(value[view] / 100.0, 0.0, 1.0))
                success[view][i] = values[done] if done is not None else progress[view][i]
            for view, (state, image) in chains.items():
                if image is not None:
                    state.update(image=image, value=value[view])
            return ViewScores(progress, success)

        return Plan(questions, finish)
