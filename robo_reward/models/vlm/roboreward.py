"""RoboReward (Lee et al. 2026, arXiv 2601.00675): an end-of-episode 1–5 progress score of a
rollout video, with the prompt of its model card (``teetone/RoboReward-4B`` / ``-8B``,
Qwen3-VL) and the content order of its HELM harness (the prompt text, then the video).

Dense progress comes from scoring **growing prefixes**: the clip of sample t holds the
episode so far at about ``clip_fps`` (HELM samples videos at 1 fps), at most
``max_frames`` frames drawn evenly, ending at sample t; with ``stride`` k only every k-th
sample of the episode is asked and the samples between hold the last score (causal, so
a live stream can use it). Answer: ``ANSWER: <1..5>`` (HELM's regex, then a number at the
start); anything else is malformed (HELM would count it as a miss, Robometer as 1).
progress = (s − 1) / 4. With ``top_logprobs`` the score is the expectation over the
tokens "1"–"5" at the answer position and success = P(5) among them; without it,
success = 1 when s = 5, else 0. One request per view; views fused like every model.
Sequential: an episode's samples must be scored in playing order.
"""

from __future__ import annotations

import re

from robo_reward.models.vlm.client import ChatRequest, Clip, Completion, Message, expected_value
from robo_reward.models.vlm.protocol import ClipProtocol, Question
from robo_reward.types import Task

PROMPT = """Given the task, assign a discrete progress score reward (1,2,3,4,5) for the robot in the video in the format: ANSWER: <score>
Rubric for end-of-episode progress (judge only the final state without time limits):
1 - No Success: Final state shows no goal-relevant change for the command.
2 - Minimal Progress: Final state shows a small but insufficient change toward the goal.
3 - Partial Completion: The final state shows good progress toward the goal but violates more than one requirement or a major requirement.
4 - Near Completion: Final state is correct in region and intent but misses a single minor requirement.
5 - Perfect Completion: Final state satisfies all requirements.

Task: {task}"""
ANSWER = re.compile(r"(?i)\banswer\b\s*:\s*(-?\d+(?:\.\d+)?)")
LEADING = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")
AFTER_ANSWER = re.compile(r"(?i)\banswer\b\s*:\s*$")
SCORES = {str(s): float(s) for s in range(1, 6)}


def parse_score(text: str) -> float:
    """The 1–5 score of an answer (``ANSWER: s``, else a number at the start)."""
    match = ANSWER.search(text or "") or LEADING.match(text or "")
    if match is None:
        raise ValueError("no 'ANSWER: <score>' in the answer")
    score = float(match.group(1))
    if score not in SCORES.values():
        raise ValueError(f"score {match.group(1)} is not one of 1, 2, 3, 4, 5")
    return score


def expected_score(answer: Completion) -> tuple[float, float]:
    """(expected score, P(5)) over the alternatives of the first digit token after ``ANSWER:``."""
    text = ""
    for token in answer.logprobs:
        if token.token.strip() in SCORES and AFTER_ANSWER.search(text):
            alternatives = token.top or ((token.token, token.logprob),)
            score = expected_value(alternatives, SCORES)
            probability_5 = expected_value(alternatives, {k: float(k == "5") for k in SCORES})
            return score, probability_5
        text += token.token
    raise ValueError("the answer's logprobs hold no score token after 'ANSWER:'")


def read_answer(answer: Completion, rich: bool) -> tuple[float, float]:
    """(progress, success) of one answer."""
    score, success = expected_score(answer) if rich else (parse_score(answer.text), 0.0)
    if not rich:
        success = float(score == 5.0)
    return (score - 1.0) / 4.0, success


class RoboRewardProtocol(ClipProtocol):
    """End-of-episode 1–5 scores of growing clips, one request per view."""

    name = "roboreward"
    keep = "spread"
    success_note = "success = P(score 5) (with top_logprobs) or score == 5"

    def question(self, task: Task, clip: Clip, where: str) -> Question:
        request = ChatRequest(messages=(Message("user", (PROMPT.format(task=task.instruction), clip)),), where=where,
                              max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                              top_logprobs=self.config.top_logprobs or None)
        return Question(request, lambda answer: read_answer(answer, bool(self.config.top_logprobs)))
