"""A VLM picks an episode's keypoints from marked candidates (KAGI's first step; the marks
and the JSON answer follow MOKA, Liu et al. 2024, ``moka-manipulation/moka``).

Per view of the episode's first set, one request through the shared chat client
(:mod:`robo_reward.models.vlm.client`; every request of a batch in flight at once):

* **candidates** — up to ``candidates`` Shi–Tomasi corners (``cv2.goodFeaturesToTrack``,
  at least 6 % of the image diagonal apart: points the tracker can follow), sorted top to
  bottom then left to right, drawn as red dots labelled ``P1…Pn`` (1-based);
* **grid** — ``grid``×``grid`` tiles for free-space targets, named ``a1…`` by column
  (a, b, … left to right) and row (1, 2, … bottom to top), as MOKA's;
* **answer** — one JSON object, in a fenced ```json block or bare: ``gripper`` and
  ``grasp`` name candidates, ``target`` a candidate or a tile, ``pre_contact`` and
  ``post_contact`` a tile or null; ``reasoning`` may come first. ``//`` comments are
  stripped (as MOKA's parser does). Anything else — an empty reply, no JSON, an unknown
  key, a label not on the image, the gripper and grasp the same point — is malformed:
  the request is asked again (``parse_retries`` times, hotter by
  ``retry_temperature_step``), then the run stops with an InputError naming the
  episode, the view and the raw answer (:func:`robo_reward.models.vlm.protocol.ask`).
  Never a silent default.

The views' answers make one spec: keypoints ``gripper``, ``grasp`` and ``target`` (tracked
when every view names a candidate for it, else a fixed place), ``pre_contact`` and
``post_contact`` (fixed places, kept when every view gives one); waypoints gripper → grasp,
then grasp → pre_contact → target → post_contact. The views are asked separately, so
nothing forces their answers onto the same physical point; a proposal is 2D (pixels), for
3D write a spec with cameras. The context's cache keeps the proposal for the episode, the
client's cache the answers for reruns.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError, InputError
from robo_reward.keypoint_spec import Keypoint, KeypointSpec, Waypoint
from robo_reward.models.keypoints.track import gray, opencv
from robo_reward.models.vlm.client import ChatRequest, Completion, Message
from robo_reward.models.vlm.protocol import Question, ask
from robo_reward.types import FrameBatch, Task

PROMPT = (
    "You are choosing keypoints for a robot arm whose task is: {instruction}. The image is from the '{view}' "
    "camera. Red dots labelled P1 to P{count} mark candidate points. A white grid divides the image into tiles "
    "named by a column letter (a to {last_column}, left to right) and a row number (1 to {rows}, bottom to "
    "top); a1 is the bottom-left tile.\n"
    "Pick:\n"
    "- gripper: the candidate on the robot's gripper;\n"
    "- grasp: the candidate on the object the gripper must take hold of, press or push;\n"
    "- target: where that point must end up: a candidate if it is on another object, else a tile;\n"
    "- pre_contact: a tile the grasped point passes through just before the target, or null;\n"
    "- post_contact: a tile it moves to after reaching the target, or null.\n"
    "Answer with one JSON object in a ```json block, reasoning first, for example:\n"
    '```json\n{{"reasoning": "...", "gripper": "P2", "grasp": "P5", "target": "c2", "pre_contact": null, '
    '"post_contact": null}}\n```'
)
ROLES = ("gripper", "grasp", "target", "pre_contact", "post_contact")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_CANDIDATE = re.compile(r"^[Pp](\d+)$")


def find_candidates(image: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` trackable points (N, 2) of a uint8 RGB image, top to bottom, left to right."""
    height, width = image.shape[:2]
    corners = opencv().goodFeaturesToTrack(gray(image), maxCorners=count, qualityLevel=0.01,
                                         minDistance=0.06 * float(np.hypot(width, height)), blockSize=3)
    points = np.zeros((0, 2)) if corners is None else corners.reshape(-1, 2).astype(np.float64)
    return points[np.lexsort((points[:, 0], points[:, 1]))]


def grid_tiles(width: int, height: int, size: int) -> dict[str, np.ndarray]:
    """Tile name → centre (u, v) pixels of a ``size``×``size`` grid (columns a… left to right,
    rows 1… bottom to top)."""
    tiles = {}
    for column in range(size):
        for row in range(size):
            centre = ((column + 0.5) * width / size - 0.5, (size - row - 0.5) * height / size - 0.5)
            tiles[f"{string.ascii_lowercase[column]}{row + 1}"] = np.array(centre)
    return tiles


def draw_marks(image: np.ndarray, candidates: np.ndarray, grid: int, size: int) -> np.ndarray:
    """The image scaled to ``size`` pixels on its longer side, with the grid, tile names and
    numbered candidates drawn on it (uint8 RGB)."""
    cv2 = opencv()
    height, width = image.shape[:2]
    scale = size / max(height, width)
    out = cv2.resize(np.ascontiguousarray(image), (round(width * scale), round(height * scale)),
                     interpolation=cv2.INTER_CUBIC)
    font, white, black, red = cv2.FONT_HERSHEY_SIMPLEX, (255, 255, 255), (0, 0, 0), (230, 30, 30)
    text = max(size / 1400, 0.3)
    rows, cols = out.shape[:2]
    for k in range(1, grid):
        cv2.line(out, (round(k * cols / grid), 0), (round(k * cols / grid), rows - 1), white, 1)
        cv2.line(out, (0, round(k * rows / grid)), (cols - 1, round(k * rows / grid)), white, 1)
    for name, (u, v) in grid_tiles(width, height, grid).items():
        corner = (round((u + 0.5) * scale - 0.5 * cols / grid) + 3, round((v + 0.5) * scale - 0.5 * rows / grid) + 14)
        cv2.putText(out, name, corner, font, text, black, 3, cv2.LINE_AA)
        cv2.putText(out, name, corner, font, text, white, 1, cv2.LINE_AA)
    radius = max(round(size / 110), 3)
    for k, (u, v) in enumerate(candidates):
        centre = (round((u + 0.5) * scale - 0.5), round((v + 0.5) * scale - 0.5))
        cv2.circle(out, centre, radius + 1, white, -1, cv2.LINE_AA)
        cv2.circle(out, centre, radius, red, -1, cv2.LINE_AA)
        label = (centre[0] + radius + 2, centre[1] - radius)
        cv2.putText(out, f"P{k + 1}", label, font, 1.2 * text, white, 3, cv2.LINE_AA)
        cv2.putText(out, f"P{k + 1}", label, font, 1.2 * text, red, 1, cv2.LINE_AA)
    return out


def parse_answer(text: str, count: int, tiles: Sequence[str]) -> dict[str, tuple[str, int | str] | None]:
    """Read a proposal answer strictly → role → ("candidate", index 0-based) | ("tile", name) | None.

    Raises ValueError saying what is wrong (the question is then asked again)."""
    if not text.strip():
        raise ValueError("empty answer")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text[text.find("{"):text.rfind("}") + 1]
    body = re.sub(r"(?m)//[^\n\"]*$", "", body)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"no JSON object in the answer ({exc.msg})") from None
    if not isinstance(data, dict):  # ValueError, as for every malformed answer: ask() asks again
        raise ValueError(f"the JSON is a {type(data).__name__}, not an object")  # noqa: TRY004
    unknown = sorted(set(data) - {*ROLES, "reasoning"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; the keys are {', '.join(ROLES)} (and reasoning)")
    out: dict[str, tuple[str, int | str] | None] = {}
    for role in ROLES:
        value = data.get(role)
        if value is None:
            if role in ("gripper", "grasp", "target"):
                raise ValueError(f"'{role}' is missing")
            out[role] = None
            continue
        if not isinstance(value, str):
            raise ValueError(f"'{role}' must be a label such as P3 or c2, got {value!r}")  # noqa: TRY004
        label = value.strip()
        match = _CANDIDATE.match(label)
        if match and role in ("gripper", "grasp", "target"):
            index = int(match.group(1))
            if not 1 <= index <= count:
                raise ValueError(f"'{role}': {label} is not on the image (candidates P1 to P{count})")
            out[role] = ("candidate", index - 1)
        elif label.lower() in tiles and role not in ("gripper", "grasp"):
            out[role] = ("tile", label.lower())
        else:
            kinds = f"a candidate (P1 to P{count})" if role in ("gripper", "grasp") else (
                "a candidate or a tile" if role == "target" else "a tile or null")
            raise ValueError(f"'{role}': {label!r} is not {kinds}")
    if out["gripper"] == out["grasp"]:
        raise ValueError("gripper and grasp name the same candidate")
    return out


#: Sampling of the proposal's requests where the ``vlm`` options leave it unset.
MAX_TOKENS, TEMPERATURE = 512, 0.0


class Proposer:
    """Asks a chat VLM for each episode's keypoints (see the module docstring).

    Args:
        config: the keypoint model's config (candidates, grid, mark_size, views, and ``vlm``:
            the chat backend's options, those of the ``vlm`` model).
    """

    def __init__(self, config: Any) -> None:
        from robo_reward.models.vlm.model import VlmConfig, make_backend

        try:
            chat = VlmConfig(**config.vlm)
        except TypeError as exc:
            known = ", ".join(f.name for f in fields(VlmConfig))
            raise ConfigError(f"keypoint: vlm={config.vlm!r}: {exc} (vlm options: {known})") from None
        # the marked images go as drawn, at mark_size
        self.chat = replace(chat, image_size=None, max_tokens=chat.max_tokens or MAX_TOKENS,
                            temperature=TEMPERATURE if chat.temperature is None else chat.temperature)
        self.config = config
        self.backend = make_backend(self.chat)

    def describe(self) -> str:
        return self.backend.describe()

    def propose(self, task: Task, firsts: Sequence[FrameBatch], where: str) -> list[KeypointSpec]:
        """One spec per episode whose first set is in ``firsts``; all requests in flight at once."""
        plans = [self._plan(task, first, where) for first in firsts]
        questions = [q for plan in plans for _, q, _ in plan]
        answers = iter(ask(self.backend, questions, self.chat.parse_retries, self.chat.retry_temperature_step,
                           "keypoint proposal"))
        specs = []
        for plan in plans:
            picks = {view: (next(answers), points) for view, _, points in plan}
            specs.append(_spec(picks, self.chat.model))
        return specs

    def _plan(self, task: Task, first: FrameBatch, where: str) -> list[tuple[str, Question, dict[str, Any]]]:
        views = [v for v in (self.config.views or first.view_names) if v in first.views]
        if not views:
            raise InputError(f"{where}: none of the views {list(self.config.views)} is in the frames "
                             f"({first.view_names})")
        plan = []
        for view in views:
            image = first.views[view][0]
            height, width = image.shape[:2]
            candidates = find_candidates(image, self.config.candidates)
            about = f"{where} (episode starting at frame {int(first.frame_index[0])}), view '{view}'"
            if len(candidates) < 2:
                raise InputError(f"{about}: fewer than 2 trackable candidate points in the first frame")
            tiles = grid_tiles(width, height, self.config.grid)
            prompt = PROMPT.format(instruction=task.instruction, view=view, count=len(candidates),
                                   last_column=string.ascii_lowercase[self.config.grid - 1], rows=self.config.grid)
            marked = draw_marks(image, candidates, self.config.grid, self.config.mark_size)
            request = ChatRequest(messages=(Message("user", (prompt, marked)),), where=about,
                                  max_tokens=self.chat.max_tokens, temperature=self.chat.temperature)

            def read(answer: Completion, count: int = len(candidates), names: tuple = tuple(tiles)) -> dict:
                return parse_answer(answer.text, count, names)

            plan.append((view, Question(request, read), {"candidates": candidates, "tiles": tiles}))
        return plan


def _spec(picks: dict[str, tuple[dict, dict[str, Any]]], model: str) -> KeypointSpec:
    """The spec the views' parsed answers make (see the module docstring)."""

    def position(choice: tuple[str, int | str], points: dict[str, Any]) -> tuple[float, float]:
        kind, key = choice
        uv = points["candidates"][key] if kind == "candidate" else points["tiles"][key]
        return float(uv[0]), float(uv[1])

    keypoints = {}
    for role in ROLES:
        chosen = {view: answer[role] for view, (answer, _) in picks.items() if answer[role] is not None}
        if len(chosen) < len(picks):
            continue  # an optional role some view left out
        pixels = {view: position(choice, picks[view][1]) for view, choice in chosen.items()}
        tracked = all(kind == "candidate" for kind, _ in chosen.values())
        keypoints[role] = Keypoint(role, pixels, track=tracked)
    movers = [("gripper", "grasp")] + [("grasp", r) for r in ("pre_contact", "target", "post_contact") if r in keypoints]
    waypoints = tuple(Waypoint(mover, target) for mover, target in movers)
    return KeypointSpec(keypoints, waypoints, source=f"VLM proposal by '{model}'")
