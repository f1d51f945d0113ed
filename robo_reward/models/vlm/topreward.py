"""TOPReward (token probabilities as zero-shot rewards; LeRobot 0.6 ``lerobot.rewards.topreward``):
the log-probability that a VLM continues a statement about the video with "True".

The request is LeRobot's default (``add_chat_template=False``): one user message holding
the clip (the episode's last ``max_frames`` frames at about ``clip_fps``; LeRobot: 16 at
2 fps), then "The above video shows a robot manipulation trajectory that completes the
following task: {instruction} Decide whether the above statement is True or not. The
answer is:", **continued** rather than answered (``continue_final_message``), asking for
one token with ``top_logprobs``. The reward is log P("True") of that next token (tokens
compared without surrounding spaces). If "True" is not among the alternatives the server
returned, its probability is below the last one's, which is used as the bound (the answer
then says how many alternatives came back). A server that returns no logprobs is an
error (vLLM returns them up to ``--max-logprobs``, 20 by default).

progress = success = P("True") = exp(reward), in [0, 1] (LeRobot's ``success_threshold``
on the log-probability corresponds to ``label --success-threshold`` on exp of it).
One request per view. Sequential (the clip grows): samples in playing order.
"""

from __future__ import annotations

import math

import numpy as np

from robo_reward.models.vlm.client import ChatRequest, Clip, Completion, Message
from robo_reward.models.vlm.protocol import ClipProtocol, Question
from robo_reward.types import Task

PREFIX = "The above video shows a robot manipulation trajectory that completes the following task: "
SUFFIX = "{instruction} Decide whether the above statement is True or not. The answer is:"
TRUE = "True"


def true_logprob(answer: Completion) -> float:
    """log P("True") of the answer's first token, from its alternatives (a bound when absent)."""
    if not answer.logprobs:
        raise ValueError("the server returned no logprobs; TOPReward needs top_logprobs (vLLM: --max-logprobs)")
    first = answer.logprobs[0]
    alternatives = first.top or ((first.token, first.logprob),)
    matches = [logprob for token, logprob in alternatives if token.strip() == TRUE]
    if matches:
        return float(np.logaddexp.reduce(matches))
    return min(logprob for _, logprob in alternatives)


class TopRewardProtocol(ClipProtocol):
    """log P("True") after a statement that the clip completes the task, one request per view."""

    name = "topreward"
    keep = "recent"
    success_note = "success = progress = P('True')"

    def question(self, task: Task, clip: Clip, where: str) -> Question:
        request = ChatRequest(messages=(Message("user", (clip, PREFIX + SUFFIX.format(instruction=task.instruction))),),
                              max_tokens=1, temperature=0.0, top_logprobs=self.config.top_logprobs or 20,
                              continue_final=True, where=where)
        return Question(request, read_answer, retry=False)


def read_answer(answer: Completion) -> tuple[float, float]:
    """(progress, success) = P("True") twice."""
    probability = math.exp(true_logprob(answer))
    return probability, probability
