"""Env steps per second with 1, 2 and 3 rendered cameras, as ratios of the same env without rendering.

    python bench/sim_step.py                       # both simulators, 64x64, ~1 minute on 2 CPU cores
    python bench/sim_step.py --backend metaworld --size 128 --steps 100

Baseline: the simulator env alone (no camera wrapper, no rendering), stepped with the
same seeded random actions. MuJoCo renders with whatever ``MUJOCO_GL`` is in effect
(printed); on a CPU-only machine that is OSMesa, software rendering.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import gymnasium as gym

import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco is imported)

BACKENDS = {
    "metaworld": ("drawer-open-v3", ("corner", "topview", "corner3")),
    "panda": ("PandaPush-v3", ("front", "side", "corner")),
}


def steps_per_second(env: gym.Env, steps: int, seed: int = 0) -> float:
    """Step ``env`` with seeded random actions for ``steps`` steps (resetting when an episode
    ends, resets not timed) and return the stepping rate in steps/s."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.step(env.action_space.sample())  # warm-up: lazy GL contexts, caches
    elapsed = 0.0
    for _ in range(steps):
        action = env.action_space.sample()
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset()
    return steps / elapsed


def builders(backend: str, size: int) -> tuple[Callable[[], gym.Env], Callable[[tuple[str, ...]], gym.Env]]:
    """(no-render env factory, camera env factory) for ``backend``."""
    task, _ = BACKENDS[backend]
    if backend == "metaworld":
        from robo_reward.envs.metaworld import make_metaworld_env, metaworld_task_env

        return (lambda: metaworld_task_env(task)), (lambda cams: make_metaworld_env(task, cams, size))
    from robo_reward.envs.panda import make_panda_env

    return (lambda: gym.make(task, render_mode="rgb_array", renderer="Tiny")), (
        lambda cams: make_panda_env(task, cams, size)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", nargs="+", choices=sorted(BACKENDS), default=sorted(BACKENDS))
    parser.add_argument("--size", type=int, default=64, help="square image side in pixels")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per configuration")
    args = parser.parse_args(argv)
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}, images {args.size}x{args.size}, {args.steps} steps each")
    for backend in args.backend:
        task, cameras = BACKENDS[backend]
        plain, with_cameras = builders(backend, args.size)
        env = plain()
        # the baseline is cheap: time more steps for a stable rate
        base = steps_per_second(env, args.steps * 10)
        env.close()
        print(f"{backend} {task}: no render: {base:.0f} steps/s")
        for count in (1, 2, 3):
            env = with_cameras(cameras[:count])
            rate = steps_per_second(env, args.steps)
            env.close()
            label = f"{count} camera{'s' if count > 1 else ''} ({', '.join(cameras[:count])})"
            print(f"  {label}: {rate:.1f} steps/s = {rate / base:.3f}x of no-render "
                  f"({1000 * (1 / rate - 1 / base) / count:.1f} ms per view)")


if __name__ == "__main__":
    main()
