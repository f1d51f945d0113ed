"""What one agent step of camera-reward RL costs: simulator, rendering, reward model and
learner update, as fractions of the step, and agent steps/s against the same learner
without rendering (a simulator reward), in one run.

    python bench/sim_step.py                              # Meta-World, the sweep's settings (~2 min)
    python bench/sim_step.py --backend panda --task PandaReach-v3 --cameras front
    python bench/sim_step.py --size 128 --steps 300

The agent step is the sweep's (sim/experiments.py): ``action_repeat`` simulator steps, the
views rendered once (no shadows), scored by the reward model through a ``Scorer`` with
the episode's context (batch of one, as in the loop), and ``utd_ratio`` RLPD updates
(batch 256). Each part is timed on its own over the same seeded random-action rollout,
best of 3 repetitions; "no rendering" is the simulator plus the update, what a run with
the simulator's dense reward pays. The machine's load average is printed: the figures
are only comparable at the same load.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch

import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco is imported)
from robo_reward.assets import DEFAULT_MODEL
from robo_reward.models import load_model
from robo_reward.rl.rlpd import RLPD
from robo_reward.rl.train import TrainArgs, make_camera_env
from robo_reward.scoring import Scorer, stack_views
from robo_reward.types import Task


def best_of(repeats: int, run: Callable[[], float]) -> float:
    """The smallest of ``repeats`` timings (seconds) of ``run``, which returns its own timing."""
    return min(run() for _ in range(repeats))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="metaworld", choices=["metaworld", "panda"])
    parser.add_argument("--task", default="drawer-open-v3")
    parser.add_argument("--instruction", default="open the drawer")
    parser.add_argument("--cameras", nargs="+", default=["corner"])
    parser.add_argument("--size", type=int, default=64, help="square image side in pixels")
    parser.add_argument("--action-repeat", type=int, default=2)
    parser.add_argument("--utd-ratio", type=int, default=1)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="reward model (name or checkpoint)")
    parser.add_argument("--steps", type=int, default=200, help="timed agent steps per part")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = TrainArgs(backend=args.backend, task=args.task, instruction=args.instruction,
                       cameras=tuple(args.cameras), image_size=args.size, shadows=False,
                       action_repeat=args.action_repeat, max_episode_steps=100)
    rendering, plain = make_camera_env(config, 0, render=True), make_camera_env(config, 0, render=False)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (args.steps, *plain.action_space.shape)).astype(np.float32)

    def step_time(env) -> tuple[float, list[dict[str, np.ndarray]]]:
        """Seconds to step ``env`` through the actions (resets untimed), and the views it rendered."""
        _, info = env.reset(seed=0)
        views, elapsed = [info.get("views")], 0.0
        for action in actions:
            start = time.perf_counter()
            _, _, terminated, truncated, info = env.step(action)
            elapsed += time.perf_counter() - start
            views.append(info.get("views"))
            if terminated or truncated:
                env.reset()
        return elapsed, views

    simulator = best_of(3, lambda: step_time(plain)[0])
    _, views = step_time(rendering)  # the frames the reward model scores below
    render = max(best_of(3, lambda: step_time(rendering)[0]) - simulator, 0.0)

    model, task = load_model(args.model), Task(args.instruction)

    def score_time() -> float:
        scorer = Scorer(model, task)
        scorer.score(stack_views(views[:1], [0]), starts=[True])
        start = time.perf_counter()
        for index, frame in enumerate(views[1:], 1):
            scorer.score(stack_views([frame], [index]))
        return time.perf_counter() - start

    scoring = best_of(3, score_time)

    learner = RLPD(plain, utd_ratio=args.utd_ratio, policy_kwargs={"n_critics": 2}, learning_starts=0,
                   batch_size=256, device="cpu", seed=0, verbose=0)
    learner.learn(300)  # fills the buffer past a batch and builds the optimisers

    def update_time() -> float:
        start = time.perf_counter()
        for _ in range(args.steps):
            learner.train(gradient_steps=args.utd_ratio, batch_size=256)
        return time.perf_counter() - start

    update = best_of(3, update_time)
    parts = {"simulator": simulator, "render": render, "reward model": scoring, "learner update": update}
    total = sum(parts.values())
    print(f"{args.backend} {args.task}, views {', '.join(args.cameras)} at {args.size}x{args.size} (no shadows), "
          f"MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}, action repeat {args.action_repeat}, "
          f"UTD {args.utd_ratio}, {args.steps} agent steps per part, best of 3, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    for name, seconds in parts.items():
        print(f"  {name:15s} {1000 * seconds / args.steps:7.2f} ms per agent step  {seconds / total:6.1%}")
    camera_rate, plain_rate = args.steps / total, args.steps / (simulator + update)
    print(f"agent steps/s: camera reward {camera_rate:.1f}, no rendering (simulator reward) {plain_rate:.1f} "
          f"= {camera_rate / plain_rate:.2f}x")
    rendering.close()
    plain.close()


if __name__ == "__main__":
    main()
