"""Measure the ``keypoint`` reward on scripted Meta-World episodes: tracking error against the
simulator's ground truth, and VOC / reversed VOC of the reward on successful episodes.

For each task, ``--episodes`` successful scripted episodes (seeds drawn by
:func:`robo_reward.envs.metaworld_search.find_scripted_episode` on a state-only env) are
replayed in a camera env at ``--size`` pixels with depth (:class:`DepthViews`); an episode
is its reset observation and the observation after each step.

* **tracking** — :class:`~robo_reward.models.keypoints.track.PointTracker` (the model's
  default settings) follows the object keypoint of the episode's ground-truth spec
  (:func:`robo_reward.envs.keypoints.ground_truth_spec`: drawn on the object's visible
  surface) in each view. Ground truth per frame: the projection of the surface point
  attached to the object's body (:class:`SurfaceAnchor`). Errors count the frames where
  that point is visible (the depth image at its projection within 1 cm of its own depth)
  and the tracker reports it; the share of visible frames it flags lost and the share of
  frames the point is visible are reported beside them.
* **reward** — the ``keypoint`` model scores each episode through a
  :class:`~robo_reward.scoring.Scorer`, forward (spec of its first set) and reversed (the
  frames played backwards, spec of its last set), in two modes: ``3d`` (depth images,
  calibrated cameras and the robot state: the end effector from proprioception) and
  ``2d`` (pixels only, as from recorded video: the gripper tracked too). VOC is
  :func:`robo_reward.metrics.voc` (Spearman ρ of progress against frame index).

Results go to ``--json`` and, with ``--docs``, into the file's generated block
(``<!-- keypoints-eval:begin -->`` … ``end``); ``--render`` rewrites that block from the
JSON without measuring again::

    nice -n 19 python sim/eval_keypoints.py --json sim/results/keypoints_eval.json --docs docs/keypoints.md
    python sim/eval_keypoints.py --render sim/results/keypoints_eval.json --docs docs/keypoints.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.atomic import atomic_path, write_marked_block
from robo_reward.geometry import depth_at
from robo_reward.keypoint_spec import KeypointSpec
from robo_reward.metrics import voc
from robo_reward.models import load_model
from robo_reward.models.keypoints.model import KeypointConfig
from robo_reward.models.keypoints.track import PointTracker
from robo_reward.scoring import Scorer
from robo_reward.types import FrameBatch, Task

FORMAT = "robo_reward.keypoints_eval/v1"
TASKS = ("drawer-open-v3", "pick-place-v3", "push-v3", "button-press-topdown-v3")
VIEWS = ("corner", "corner4")
MODES = ("3d", "2d")
VISIBLE_M = 0.01  # a surface point is visible where the depth image is within this of its depth
DOCS_BLOCK = "keypoints-eval"  # the generated block of docs/keypoints.md


@dataclass
class Recording:
    """One replayed episode: per-frame views, depth, state; the ground-truth specs of its first
    and last frame; the object surface point each view tracks, per frame, per spec."""

    task: str
    seed: int
    views: dict[str, np.ndarray]
    depth: dict[str, np.ndarray]
    state: np.ndarray
    specs: dict[str, KeypointSpec]          # "forward" / "reversed"
    truth: dict[str, dict[str, np.ndarray]]  # direction → view → (T, 2) pixels of the tracked surface point
    visible: dict[str, dict[str, np.ndarray]]  # direction → view → (T,) bool


def record(task: str, count: int, views: tuple[str, ...], size: int) -> list[Recording]:
    """``count`` successful scripted episodes of ``task``, replayed with depth and ground truth."""
    from robo_reward.envs.depth import DepthViews
    from robo_reward.envs.keypoints import ground_truth_spec, keypoint_bodies, surface_anchor
    from robo_reward.envs.metaworld import find_scripted_episode, make_metaworld_env, metaworld_task_env

    search = metaworld_task_env(task)
    seeds, rng = iter(range(10_000)), np.random.default_rng(0)
    plans = [find_scripted_episode(search, task, "success", seeds, rng) for _ in range(count)]
    search.close()
    env = DepthViews(make_metaworld_env(task, cameras=views, image_size=size))
    out = []
    try:
        for plan in plans:
            frames, poses, specs, anchors = [], [], {}, {}
            for obs, direction in _observations(env, task, plan):
                frames.append(obs)
                body = keypoint_bodies(env)["object"][0]
                poses.append((env.unwrapped.data.xpos[body].copy(), env.unwrapped.data.xmat[body].copy()))
                if direction is not None:
                    specs[direction] = ground_truth_spec(env, task)
                    anchors[direction] = {
                        view: surface_anchor(env, body, specs[direction].cameras[view], uv, obs["depth"][view])
                        for view, uv in specs[direction].keypoints["object"].pixels.items()}
            cameras = specs["forward"].cameras
            truth: dict[str, dict[str, np.ndarray]] = {}
            visible: dict[str, dict[str, np.ndarray]] = {}
            for direction, per_view in anchors.items():
                truth[direction], visible[direction] = {}, {}
                for view, anchor in per_view.items():
                    if anchor is None:
                        continue
                    world = np.array([x + r.reshape(3, 3) @ anchor.local for x, r in poses])
                    uv, z = cameras[view].project(world)
                    seen = np.array([abs(depth_at(f["depth"][view], p, 0)[0] - d) < VISIBLE_M
                                     for f, p, d in zip(frames, uv, z)])
                    truth[direction][view], visible[direction][view] = uv, seen
            out.append(Recording(
                task, plan.seed,
                views={v: np.stack([f["views"][v] for f in frames]) for v in views},
                depth={v: np.stack([f["depth"][v] for f in frames]) for v in views},
                state=np.stack([np.asarray(f["state"], dtype=np.float64) for f in frames]),
                specs=specs, truth=truth, visible=visible))
    finally:
        env.close()
    return out


def _observations(env: Any, task: str, plan: Any) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The observations of one scripted episode, each while the env is in its state: the reset
    observation ("forward": the spec of the first set), then the one after each step (the
    last one "reversed")."""
    from robo_reward.envs.metaworld import scripted_rollout

    first, _ = env.reset(seed=plan.seed)
    yield first, "forward"
    for i, step in enumerate(scripted_rollout(env, task, plan.spec, plan.seed, plan.steps)):  # resets again
        if i == 0 and not np.array_equal(step.obs["state"], first["state"]):
            raise RuntimeError(f"{task} seed {plan.seed}: a second reset with the seed gave another state")
        yield step.next_obs, "reversed" if i == plan.steps - 1 else None


def tracking_errors(recording: Recording, config: KeypointConfig) -> dict[str, dict[str, np.ndarray]]:
    """View → {"error": (n,) pixels on visible reported frames, "lost": (m,) bool on visible frames,
    "visible": (T,) bool} of the object point tracked forward from the first frame."""
    out = {}
    for view, truth in recording.truth["forward"].items():
        frames = recording.views[view]
        tracker = PointTracker(frames[0], truth[:1], config.tracker())
        uv, lost = [truth[0]], [False]
        for image in frames[1:]:
            points = tracker.update(image)
            uv.append(points.uv[0])
            lost.append(bool(points.lost[0]))
        uv, lost, seen = np.array(uv), np.array(lost), recording.visible["forward"][view]
        error = np.linalg.norm(uv - truth, axis=1)
        out[view] = {"error": error[seen & ~lost], "lost": lost[seen], "visible": seen}
    return out


def score(recording: Recording, mode: str, direction: str) -> np.ndarray:
    """(T,) progress of the keypoint model on the episode played ``direction`` in ``mode``."""
    order = slice(None) if direction == "forward" else slice(None, None, -1)
    spec = recording.specs[direction]
    if mode == "2d":  # pixels only: no calibration, no depth, no state (the gripper is tracked)
        keypoints = {n: replace(k, state=None, offset=(0.0, 0.0, 0.0), world=None)
                     for n, k in spec.keypoints.items()}
        spec = replace(spec, keypoints=keypoints, cameras={})
    length = len(recording.state)
    batch = FrameBatch(
        views={v: images[order] for v, images in recording.views.items()},
        timestamps_ns=np.arange(length) * 12_500_000, frame_index=np.arange(length)[order],
        state=recording.state[order] if mode == "3d" else None,
        depth={v: d[order] for v, d in recording.depth.items()} if mode == "3d" else None,
        source=f"{recording.task} seed {recording.seed} ({direction})")
    scorer = Scorer(load_model("keypoint"), Task(recording.task, keypoints=spec), batch_size=64)
    return scorer.score(batch).progress


def summarise(values: list[float]) -> dict[str, float | None]:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return {"mean": float(np.mean(finite)) if finite else None, "min": float(np.min(finite)) if finite else None,
            "max": float(np.max(finite)) if finite else None}


def evaluate(tasks: tuple[str, ...], episodes: int, views: tuple[str, ...], size: int) -> dict[str, Any]:
    config = KeypointConfig()
    results: dict[str, Any] = {"tracking": {}, "reward": {}, "episodes": {}}
    started = time.monotonic()
    for task in tasks:
        recordings = record(task, episodes, views, size)
        results["episodes"][task] = [{"seed": r.seed, "frames": len(r.state)} for r in recordings]
        results["tracking"][task] = {}
        errors = [tracking_errors(r, config) for r in recordings]
        for view in views:
            error = np.concatenate([e[view]["error"] for e in errors if view in e] or [np.zeros(0)])
            lost = np.concatenate([e[view]["lost"] for e in errors if view in e] or [np.zeros(0, bool)])
            visible = np.concatenate([e[view]["visible"] for e in errors if view in e] or [np.zeros(0, bool)])
            results["tracking"][task][view] = {
                "median_px": float(np.median(error)) if len(error) else None,
                "p95_px": float(np.percentile(error, 95)) if len(error) else None,
                "frames": len(error), "lost_share": float(lost.mean()) if len(lost) else None,
                "visible_share": float(visible.mean()) if len(visible) else None,
                "episodes_tracked": sum(view in e for e in errors)}
        results["reward"][task] = {}
        for mode in MODES:
            rows = [{"seed": r.seed, "voc": voc(score(r, mode, "forward")),
                     "voc_reversed": voc(score(r, mode, "reversed"))} for r in recordings]
            results["reward"][task][mode] = {"per_episode": rows,
                                             "voc": summarise([row["voc"] for row in rows]),
                                             "voc_reversed": summarise([row["voc_reversed"] for row in rows])}
        print(f"{task}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    for mode in MODES:
        results["reward"].setdefault("all", {})[mode] = {
            key: summarise([row[key] for task in tasks for row in results["reward"][task][mode]["per_episode"]])
            for key in ("voc", "voc_reversed")}
    tracked = [s for task in tasks for s in results["tracking"][task].values() if s["median_px"] is not None]
    results["tracking_worst_median_px"] = max(s["median_px"] for s in tracked) if tracked else None
    return {
        "format": FORMAT,
        "settings": {"tasks": list(tasks), "episodes_per_task": episodes, "views": list(views), "image_size": size,
                     "tracker": asdict(config.tracker()), "visible_within_m": VISIBLE_M},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "seconds": round(time.monotonic() - started, 1),
        **results,
    }


def _cell(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(results: dict[str, Any]) -> str:
    """The markdown of the results section (what ``--docs`` writes between the markers)."""
    settings = results["settings"]
    lines = [
        (f"Measured by `sim/eval_keypoints.py` ({settings['episodes_per_task']} successful scripted episodes per "
         f"task, {settings['image_size']}×{settings['image_size']} pixels, views {', '.join(settings['views'])}; "
         f"{results['seconds']:.0f} s on 2 CPU cores); the numbers below are generated from "
         "`sim/results/keypoints_eval.json`."),
        "",
        "Tracking of the object keypoint against the simulator's ground truth (pixels):",
        "",
        "| task | view | median | p95 | frames | flagged lost | visible |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, per_view in results["tracking"].items():
        for view, s in per_view.items():
            lost = "n/a" if s["lost_share"] is None else f"{100 * s['lost_share']:.0f} %"
            seen = "n/a" if s["visible_share"] is None else f"{100 * s['visible_share']:.0f} %"
            lines.append(f"| {task} | {view} | {_cell(s['median_px'])} | {_cell(s['p95_px'])} | {s['frames']} | "
                         f"{lost} | {seen} |")
    lines += ["", "VOC of the reward on the successful episodes (mean over episodes, [min, max]):", "",
              "| task | mode | VOC | reversed VOC |", "|---|---|---|---|"]
    for task, per_mode in results["reward"].items():
        for mode, s in per_mode.items():
            cells = [f"{_cell(s[k]['mean'], 3)} [{_cell(s[k]['min'], 2)}, {_cell(s[k]['max'], 2)}]"
                     for k in ("voc", "voc_reversed")]
            lines.append(f"| {task} | {mode} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--episodes", type=int, default=5, help="successful episodes per task")
    parser.add_argument("--views", nargs="+", default=list(VIEWS))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--docs", type=Path, help="write the results section of this markdown file")
    parser.add_argument("--render", type=Path, help="only rewrite --docs from this results JSON")
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text())
    else:
        results = evaluate(tuple(args.tasks), args.episodes, tuple(args.views), args.size)
        if args.json:
            with atomic_path(args.json) as tmp:
                tmp.write_text(json.dumps(results, indent=2))
    if args.docs:
        write_marked_block(args.docs, DOCS_BLOCK, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
