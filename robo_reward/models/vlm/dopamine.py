"""Robo-Dopamine's generative reward model (GRM; Tan et al. 2025, arXiv 2512.23703), as its
released code asks it (FlagOpen/Robo-Dopamine ``examples/inference.py``).

Every request holds 8 images between the chunks of the one released prompt (split at
``<image>``): REFERENCE START (the episode's first front image), REFERENCE END (the goal
image), BEFORE front / left wrist / right wrist, AFTER front / left wrist / right wrist.
The answer is ``<score>±NN%</score>``, a hop h ∈ [-1, 1] (clipped). Three estimates, as
``run_pipeline`` computes them (P is not clamped there):

* ``incremental`` — BEFORE = the previous sample: the first pair gives P = h, then
  P = P' + (1 − P')·h for h ≥ 0 and P = P' + P'·h for h < 0;
* ``forward`` — BEFORE = the episode's first set: P = h;
* ``backward`` — BEFORE = the goal image in all three slots: P = 1 + h (needs a goal).

The paper fuses the three ("multi-perspective"); the released code has no fusion, so
this takes **their mean**, clipped to [0, 1]. The episode's first sample has P = 0 in
``incremental`` and ``forward`` without a request (the released pairs start there).
Views fill the front, left-wrist, right-wrist slots in order; with fewer than three the
first view repeats (as Robometer's single-camera wrapper does); a view missing from a
sample is replaced by one the sample has. Without a goal image (``goal_image`` option, or
``Task.goal_images`` of the first view) REFERENCE END is a 224×224 grey image (Robometer's
fallback; the released code uses the recording's last frame, which a live stream does
not have) and ``backward`` cannot be used. Sampling as released: temperature 0.1,
top_p 0.9, top_k 50, max_tokens 1024. Sequential (incremental mode): an episode's
samples must be scored in playing order.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError
from robo_reward.models.vlm.client import ChatRequest, Message, Part
from robo_reward.models.vlm.protocol import Plan, Protocol, Question, ViewScores, span
from robo_reward.types import EpisodeContext, FrameBatch, Task

PROMPT = """
You are a rigorous, impartial vision evaluator for robot task progress. Your job is to judge whether the AFTER image set moves closer to the task objective than the BEFORE image set, using the provided reference examples only as anchors.

<Task>
`{task}`

REFERENCE EXAMPLES (for visual anchoring only; not necessarily this run's actual START/END):
- REFERENCE START — Robot Front Image (task just starting): <image>
- REFERENCE END — Robot Front Image (task fully completed): <image>
</Task>

BEFORE Robot Front Image: <image>
BEFORE Robot Left Wrist Image: <image>
BEFORE Robot Right Wrist Image: <image>

AFTER Robot Front Image: <image>
AFTER Robot Left Wrist Image: <image>
AFTER Robot Right Wrist Image: <image>

Goal
Compare the BEFORE and AFTER three-view sets and judge whether AFTER moves closer to accomplishing the task than BEFORE, using the REFERENCE START/END images as conceptual anchors.

Progress Estimation (no formulas)
1) Calibrate using the references:
   - REFERENCE START = “just beginning”; REFERENCE END = “fully completed.”
   - Visually estimate how far BEFORE and AFTER are along this START→END continuum.
2) Direction:
   - AFTER better than BEFORE → positive score.
   - AFTER worse than BEFORE → negative score.
   - Essentially the same → 0.
3) Normalize to an integer percentage in [-100%, +100%]:
   - For improvements, scale the improvement relative to what remained from BEFORE to END.
   - For regressions, scale the deterioration relative to how far BEFORE had progressed from START.
   - Clip to [-100%, +100%] and round to the nearest integer percent.

Evaluation Criteria (apply across all three views)
1) Task Alignment: Evidence directly tied to `{task}`.
2) Completeness & Accuracy: Correct pose, contact, placement, orientation, grasp quality, absence of collisions, stability, etc.
3) View-Specific Evidence & Consistency:
   - Use the **Front** view for global layout, object pose, approach path, end-state geometry, and scene-level constraints.
   - Use the **Left/Right Wrist** views to inspect **fine-grained gripper state** (finger closure, contact location/area, slippage, wedge/misalignment, object deformation, cable/wire/cloth entanglement, unintended contact, occluded collisions).
   - When views disagree, prioritize the view that provides **decisive cues** for the criterion at hand. In particular, wrist views often **override** for grasp/contact validity and safety.
   - If any single view shows a failure that invalidates success (e.g., mis-grasp, collision, unsafe/unstable pose), let that override when judging progress.
4) Ignore Irrelevant Factors: Lighting, color shifts, background clutter, or UI/watermarks that don't affect task success.
5) Ambiguity: If evidence is genuinely inconclusive or conflicting without decisive cues, treat progress as unchanged → 0%.

Output Format (STRICT)
Return ONLY one line containing the score wrapped in <score> tags, as an integer percentage with a percent sign:
<score>+NN%</score>  or  <score>-NN%</score>  or  <score>0%</score>
"""
MODES = ("incremental", "forward", "backward")
SAMPLING = (("top_p", 0.9), ("top_k", 50))
TEMPERATURE = 0.1
MAX_TOKENS = 1024
SCORE = re.compile(r"<score>(.*?)</score>", re.DOTALL)
NO_GOAL = np.full((224, 224, 3), 128, dtype=np.uint8)


def parse_hop(text: str) -> float:
    """The hop h ∈ [-1, 1] of a ``<score>±NN%</score>`` answer (clipped to ±100 % as released)."""
    found = SCORE.findall(text or "")
    if not found:
        raise ValueError("no <score>…</score> in the answer")
    value = found[-1].replace("%", "").strip()
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"<score> holds {value!r}, not a percentage") from None
    if not np.isfinite(number):
        raise ValueError(f"<score> holds {value!r}")
    return max(-100.0, min(100.0, number)) / 100.0


def incremental_progress(previous: float | None, hop: float) -> float:
    """Progress after a hop, as released: the first pair (``previous`` None) gives ``hop``;
    then improvements scale what remained and regressions what was reached."""
    if previous is None:
        return hop
    return previous + (1.0 - previous) * hop if hop >= 0 else previous + previous * hop


def fuse_modes(estimates: dict[str, float]) -> float:
    """The mean of the modes' progress, clipped to [0, 1] (the released code has no fusion)."""
    return float(np.clip(np.mean(list(estimates.values())), 0.0, 1.0))


def build_request(task: str, images: list[np.ndarray], where: str, temperature: float = TEMPERATURE,
                  max_tokens: int = MAX_TOKENS) -> ChatRequest:
    """The released request: the prompt's 9 chunks around the 8 images, in order."""
    chunks = PROMPT.format(task=task).split("<image>")
    parts: list[Part] = [chunks[0]]
    for image, chunk in zip(images, chunks[1:]):
        parts += [image, chunk]
    return ChatRequest(messages=(Message("user", tuple(parts)),), where=where, max_tokens=max_tokens,
                       temperature=temperature, sampling=SAMPLING)


class DopamineProtocol(Protocol):
    """Robo-Dopamine GRM hops over a reference start and goal, up to three views, fused modes."""

    name = "dopamine"
    sequential = True
    success_note = "success = fused progress: the GRM gives no success probability"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.modes = tuple(m.strip() for m in config.modes.split(",") if m.strip())
        unknown = [m for m in self.modes if m not in MODES]
        if not self.modes or unknown:
            raise ConfigError(f"dopamine modes must be among {', '.join(MODES)}; got {config.modes!r}")
        self.goal: np.ndarray | None = None
        if config.goal_image:
            from PIL import Image

            try:
                self.goal = np.asarray(Image.open(config.goal_image).convert("RGB"))
            except OSError as exc:
                raise ConfigError(f"goal_image {config.goal_image}: cannot read it ({exc})") from exc

    def goal_for(self, task: Task, view: str) -> np.ndarray | None:
        return self.goal if self.goal is not None else task.goal_images.get(view)

    def plan(self, task: Task, context: EpisodeContext, batch: FrameBatch, where: str) -> Plan:
        views = batch.view_names
        if len(views) > 3:
            raise ConfigError(f"{where}: dopamine takes up to three views (front, left wrist, right wrist), "
                              f"got {len(views)}: {views}; choose them with --view")
        goal = self.goal_for(task, views[0])
        if "backward" in self.modes and goal is None:
            raise ConfigError("dopamine mode 'backward' needs a goal image: --option goal_image=PATH")
        reference_end = goal if goal is not None else NO_GOAL
        start = slot_images(context.first, 0)
        state = self.state(context, "incremental", dict)  # previous images and progress, once a sample is scored
        is_start = (batch.frame_index == context.first.frame_index[0]) & (
            batch.timestamps_ns == context.first.timestamps_ns[0])
        questions: list[Question] = []
        asked: list[dict[str, int]] = []  # per sample: mode → question number
        previous = state.get("images", start)
        for i in range(len(batch)):
            after = slot_images(batch, i)
            before = {"incremental": previous, "forward": start, "backward": [reference_end] * 3}
            numbers = {}
            for mode in self.modes:
                if mode != "backward" and is_start[i] and "images" not in state:
                    continue  # the episode's first set: P = 0 without asking
                numbers[mode] = len(questions)
                request = build_request(task.instruction, [start[0], reference_end, *before[mode], *after],
                                        f"{where} frame {span(batch.frame_index[i:i + 1])} ({mode})",
                                        self.config.temperature, self.config.max_tokens)
                questions.append(Question(request, lambda answer: parse_hop(answer.text)))
            asked.append(numbers)
            previous = after

        def finish(hops: list[float]) -> ViewScores:
            progress = np.empty(len(batch))
            reached = state.get("progress")
            for i, numbers in enumerate(asked):
                estimates = {}
                for mode in self.modes:
                    if mode not in numbers:
                        estimates[mode] = 0.0
                    elif mode == "incremental":
                        reached = incremental_progress(reached, hops[numbers[mode]])
                        estimates[mode] = reached
                    elif mode == "forward":
                        estimates[mode] = hops[numbers[mode]]
                    else:
                        estimates[mode] = 1.0 + hops[numbers[mode]]
                if "incremental" in self.modes and "incremental" not in numbers:
                    reached = None  # the first set: the next pair is the first pair
                progress[i] = fuse_modes(estimates)
            state.update(images=slot_images(batch, len(batch) - 1), progress=reached)
            return ViewScores(progress={}, joint=progress)

        return Plan(questions, finish)


def slot_images(batch: FrameBatch, i: int) -> list[np.ndarray]:
    """Sample ``i``'s front, left-wrist and right-wrist images: views in order, the first
    repeated where there are fewer than three, a view the sample lacks replaced by one it has."""
    views = batch.view_names
    have = [v for v in views if batch.valid_mask(v)[i]] or views
    images = []
    for slot in range(3):
        view = views[slot] if slot < len(views) else views[0]
        images.append(batch.views[view if view in have else have[0]][i])
    return images
