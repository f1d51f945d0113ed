"""Record scripted Meta-World v3 demonstrations of the ML45 benchmark as an episode manifest.

ML45 (Yu et al. 2019, "Meta-World") splits Meta-World's 50 tasks into 45 TRAIN tasks and
5 TEST tasks (bin-picking, box-close, door-lock, door-unlock, hand-insert). This recipe
writes, for the learned progress reward model (``robo-reward fit progress``):

* split ``train`` — ``--demos`` successful expert demonstrations of every TRAIN task;
* split ``adapt`` — one successful demonstration per TEST task (few-shot adaptation);
* split ``eval`` — per TEST task ``--eval-success`` successes, ``--eval-partial`` partial
  episodes (the expert stops part-way and holds still) and ``--eval-failure`` failures
  (a smooth random walk of the arm), with outcomes ``success`` / ``partial`` / ``failure``.

Every episode is ``--frames`` frames long (default 32) per camera, one H.264 mp4 per view,
at ``--size`` pixels (default 64). A successful episode's frames are spaced evenly over the
expert's steps up to its first success step S (``--frames`` − 2 frames), followed by two
frames after S; its manifest entry carries ``success_from`` (the index of the first frame
showing success). Partial and failure episodes span the same number of steps as the task's
expert would need. The cameras are those of the shipped sample
(``robo_reward/assets/metaworld_sample``): ``corner`` and ``topview``.

Each episode is simulated twice with the same seed: once without rendering to find S, then
again rendering only the frames kept (software rendering dominates the cost).

    MUJOCO_GL=osmesa nice -n 10 python datasets/metaworld_ml45/record.py --out runs/metaworld_ml45
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from robo_reward.atomic import atomic_path
from robo_reward.data.video import write_video
from robo_reward.envs.metaworld import MujocoCameraRig, metaworld_task_env
from robo_reward.envs.metaworld_experts import expert_policy

CAMERAS = ("corner", "topview")
MAX_STEPS = 500
FPS = 10.0
TAIL_FRAMES = 2

#: One instruction per Meta-World v3 task (Meta-World ships names, not sentences).
INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "put the ring on the peg",
    "basketball-v3": "dunk the basketball into the basket",
    "bin-picking-v3": "pick the puck from one bin and place it into the other bin",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button from the top, behind the wall",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "push the button on the coffee machine",
    "coffee-pull-v3": "pull the mug from the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "rotate the dial 180 degrees",
    "disassemble-v3": "pick the ring off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door by rotating the lock clockwise",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door by rotating the lock counter-clockwise",
    "drawer-close-v3": "push and close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-close-v3": "rotate the faucet clockwise",
    "faucet-open-v3": "rotate the faucet counter-clockwise",
    "hammer-v3": "hammer the nail into the wall",
    "hand-insert-v3": "insert the gripper into the hole",
    "handle-press-side-v3": "press the handle down sideways",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up sideways",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever down 90 degrees",
    "peg-insert-side-v3": "insert the peg sideways into the hole",
    "peg-unplug-side-v3": "unplug the peg sideways",
    "pick-out-of-hole-v3": "pick the puck out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "pick-place-wall-v3": "pick up the puck and place it at the goal behind the wall",
    "plate-slide-back-side-v3": "slide the plate back sideways into the cabinet",
    "plate-slide-back-v3": "slide the plate back into the cabinet",
    "plate-slide-side-v3": "slide the plate sideways into the cabinet",
    "plate-slide-v3": "slide the plate into the cabinet",
    "push-back-v3": "push the puck back to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck to the goal behind the wall",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach the goal position behind the wall",
    "shelf-place-v3": "pick up the puck and place it onto the shelf",
    "soccer-v3": "kick the soccer ball into the goal",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "stick-push-v3": "grasp the stick and push the box with it",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-close-v3": "push and close the window",
    "window-open-v3": "push and open the window",
}


def ml45_tasks() -> tuple[list[str], list[str]]:
    """(train, test) task names of ML45 in the installed Meta-World (v3 names)."""
    from metaworld.env_dict import ML45_V3

    return sorted(ML45_V3["train"]), sorted(ML45_V3["test"])


def first_success(task: str, seed: int) -> int | None:
    """The step index (0-based) at which the expert first succeeds, or None within MAX_STEPS."""
    env = metaworld_task_env(task, max_path_length=MAX_STEPS)
    policy = expert_policy(task)
    state, _ = env.reset(seed=seed)
    try:
        for step in range(MAX_STEPS):
            state, _, _, truncated, info = env.step(policy.get_action(state))
            if info["success"]:
                return step
            if truncated:
                return None
        return None
    finally:
        env.close()


def rollout(task: str, seed: int, kind: str, keep: np.ndarray, stop_step: int, size: int,
            render: bool = True) -> tuple[dict, bool]:
    """Simulate one episode and render the steps in ``keep`` (sorted step indices, −1 = reset).

    ``kind``: ``success`` (expert throughout), ``partial`` (expert until ``stop_step``, then
    hold position and gripper) or ``failure`` (smooth random walk). Returns the frames
    ``{camera: (T, size, size, 3) uint8}`` (empty without ``render``) and whether the final
    step shows success.
    """
    env = metaworld_task_env(task, max_path_length=MAX_STEPS + 10)
    rig = MujocoCameraRig(env.unwrapped.model, env.unwrapped.data, CAMERAS, size, size) if render else None
    policy = expert_policy(task)
    rng = np.random.default_rng(seed + 7919)
    frames: dict[str, list[np.ndarray]] = {c: [] for c in CAMERAS}
    try:
        state, _ = env.reset(seed=seed)
        wanted = list(keep)
        action = np.zeros(4)
        success = False
        for step in range(-1, int(keep[-1]) + 1):
            if step >= 0:
                if kind == "success" or (kind == "partial" and step < stop_step):
                    action = policy.get_action(state)
                elif kind == "partial":
                    action = np.array([0.0, 0.0, 0.0, action[3]])
                else:
                    action = np.clip(0.8 * action + 0.3 * rng.standard_normal(4), -1, 1)
                state, _, _, _, info = env.step(action)
                success = bool(info["success"])
            while render and wanted and wanted[0] == step:
                wanted.pop(0)
                for camera in CAMERAS:
                    frames[camera].append(rig.render(camera))
        return ({c: np.stack(f) for c, f in frames.items()} if render else {}), success
    finally:
        if rig is not None:
            rig.close()
        env.close()


def frame_steps(success_step: int, frames: int) -> np.ndarray:
    """Steps to render for an episode whose expert succeeds at ``success_step``: ``frames``
    − TAIL_FRAMES steps spaced over [−1 (reset), S], then TAIL_FRAMES steps after S."""
    body = np.round(np.linspace(-1, success_step, frames - TAIL_FRAMES)).astype(int)
    gap = max(1, (success_step + 1) // (frames - TAIL_FRAMES - 1))
    return np.concatenate([body, success_step + gap * np.arange(1, TAIL_FRAMES + 1)])


def record(out: Path, demos: int, eval_success: int, eval_partial: int, eval_failure: int,
           frames: int, size: int, tasks: list[str] | None, resume: bool = False) -> Path:
    """Record the episodes into ``out`` and merge them into ``out/episodes.json``; returns its path.

    Entries of an existing manifest with other names are kept, so several runs with
    different ``tasks`` / ``demos`` build one manifest. With ``resume``, an episode whose
    videos exist is simulated again (no rendering) only to pick the same seed.
    """
    train, test = ml45_tasks()
    if tasks:
        train, test = [t for t in train if t in tasks], [t for t in test if t in tasks]
    plan = [(t, "train", "success") for t in train for _ in range(demos)]
    for task in test:
        plan += [(task, "adapt", "success")]
        plan += [(task, "eval", o) for o, n in (("success", eval_success), ("partial", eval_partial),
                                                ("failure", eval_failure)) for _ in range(n)]
    (out / "videos").mkdir(parents=True, exist_ok=True)
    entries, counters, started = [], {}, time.time()
    seed = 1000
    for index, (task, split, outcome) in enumerate(plan):
        n = counters.get((task, split, outcome), 0)
        name = f"{task.removesuffix('-v3')}_{split}_{outcome}{n}"
        views = {camera: f"videos/{name}_{camera}.mp4" for camera in CAMERAS}
        render = not (resume and all((out / rel).is_file() for rel in views.values()))
        while True:  # next seed until the expert succeeds and the outcome is what was asked
            seed += 1
            success_step = first_success(task, seed)
            if success_step is None:
                continue
            keep = frame_steps(success_step, frames)
            stop = int(np.random.default_rng(seed).uniform(0.3, 0.7) * success_step)
            images, succeeded = rollout(task, seed, outcome, keep, stop, size, render)
            if succeeded == (outcome == "success"):
                break
        for camera, video in images.items():
            write_video(out / views[camera], video, FPS)
        counters[(task, split, outcome)] = n + 1
        entry = {"name": name, "task": {"instruction": INSTRUCTIONS[task]}, "views": views,
                 "outcome": outcome, "split": split, "env": task, "seed": seed,
                 "steps": [int(s) + 1 for s in keep]}
        if outcome == "success":
            entry["success_from"] = frames - TAIL_FRAMES - 1
        entries.append(entry)
        elapsed = time.time() - started
        print(f"[{index + 1}/{len(plan)}] {name}: S={success_step} {outcome}{'' if render else ' (kept)'} "
              f"({elapsed:.0f} s)", flush=True)
    path = out / "episodes.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {
        "format": "robo_reward.episodes/v1", "cameras": list(CAMERAS), "image_size": size, "runs": [],
        "episodes": []}
    names = {e["name"] for e in entries}
    manifest["episodes"] = [e for e in manifest["episodes"] if e["name"] not in names] + entries
    manifest["runs"].append({"demos": demos, "tasks": sorted({t for t, _, _ in plan}), "episodes": len(entries),
                             "seconds": round(time.time() - started, 1)})
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for videos/ and episodes.json")
    parser.add_argument("--demos", type=int, default=5, help="successful demos per TRAIN task")
    parser.add_argument("--eval-success", type=int, default=3)
    parser.add_argument("--eval-partial", type=int, default=2)
    parser.add_argument("--eval-failure", type=int, default=2)
    parser.add_argument("--frames", type=int, default=32, help="frames per episode and camera")
    parser.add_argument("--size", type=int, default=64, help="image height = width, pixels")
    parser.add_argument("--tasks", nargs="*", help="only these task names (default: all 50)")
    parser.add_argument("--resume", action="store_true", help="keep episodes whose videos already exist")
    args = parser.parse_args()
    path = record(args.out, args.demos, args.eval_success, args.eval_partial, args.eval_failure,
                  args.frames, args.size, args.tasks, args.resume)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
