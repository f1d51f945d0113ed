"""Seed search for scripted Meta-World datasets: :func:`find_scripted_episode` draws
env seeds until the scripted expert, as is or perturbed
(:class:`~robo_reward.envs.metaworld_experts.ScriptedPolicy`), gives an episode of the
wanted outcome — success, partial or failure — and returns its checked plan
(:class:`ScriptedEpisode`); simulation only, nothing is rendered.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robo_reward.envs.metaworld_experts import scripted_rollout
from robo_reward.errors import ConfigError


@dataclass
class ScriptedEpisode:
    """A checked plan for one scripted episode: replaying ``spec`` from ``seed`` for
    ``steps`` steps gives ``success`` (per step) and the labelled ``outcome``."""

    seed: int
    steps: int
    spec: dict[str, Any]
    outcome: str
    success: list[bool]
    progress: list[float]


def find_scripted_episode(
    env: gym.Env,
    task: str,
    outcome: str,
    seeds: Iterator[int],
    rng: np.random.Generator,
    variant: int = 0,
    tail: int = 5,
    max_steps: int = 300,
    max_tries: int = 50,
) -> ScriptedEpisode:
    """Draw seeds until a scripted episode comes out as ``outcome``; simulate only.

    The expert first runs from the seed's initial state: seeds where it does not succeed
    within ``max_steps`` are skipped. Its success step ``S`` fixes the length, ``S + tail``
    steps, for every outcome:

    * ``success`` — the expert, ending ``tail`` steps after its first success;
    * ``partial`` — even ``variant``: stop after a random 30–70 % of ``S`` steps; odd:
      stop once the object covered a random 25–50 % of its way (where the task measures
      it, else as even); never a success, and the object ends below 80 % of its way;
    * ``failure`` — even ``variant``: aim 15 cm beside the object and goal; odd: noise
      σ = 1; never a success, and the object never covers half of its way (where the
      task measures it).

    Args:
        env: a Meta-World env for ``task`` (cameras are not needed), optionally in
            :class:`~robo_reward.envs.action_repeat.ActionRepeat`: steps (``max_steps``,
            ``tail``, ``S``) are then agent steps.
        task: Meta-World v3 task name.
        outcome: ``success``, ``partial`` or ``failure``.
        seeds: env seeds to try, in order (consumed).
        rng: draws the stop points, offsets' sign and noise seeds.
        variant: which perturbation of the outcome (alternates the two kinds).
        tail: steps kept after the expert's first success.
        max_steps: the expert's step budget.
        max_tries: seeds to try before giving up with a :class:`ConfigError`.
    """
    if outcome not in ("success", "partial", "failure"):
        raise ConfigError(f"outcome must be success, partial or failure, got {outcome!r}")
    for seed in itertools.islice(seeds, max_tries):
        expert = list(scripted_rollout(env, task, {"kind": "expert"}, seed, max_steps, stop_on_success=True))
        if not expert or not expert[-1].success:
            continue
        success_step = len(expert)
        measured = not np.isnan(expert[-1].progress)
        spec = _perturbation(outcome, variant, success_step, rng, measured)
        run = list(scripted_rollout(env, task, spec, seed, success_step + tail))
        success = [t.success for t in run]
        progress = [t.progress for t in run]
        furthest = max((p for p in progress if not np.isnan(p)), default=0.0)
        intended = {
            "success": len(run) == success_step + tail and success[-1],
            "partial": not any(success) and not progress[-1] >= 0.8,
            "failure": not any(success) and furthest < 0.5,
        }[outcome]
        if intended:
            return ScriptedEpisode(seed, len(run), spec, outcome, success, progress)
    raise ConfigError(
        f"{task}: none of {max_tries} seeds gave a {outcome} episode (variant {variant}); the scripted expert "
        f"or its perturbation does not fit this task: record fewer {outcome} episodes of it"
    )


def _perturbation(
    outcome: str, variant: int, success_step: int, rng: np.random.Generator, measured: bool
) -> dict[str, Any]:
    if outcome == "success":
        return {"kind": "expert"}
    if outcome == "partial":
        if variant % 2 == 0 or not measured:
            return {"kind": "stop_step", "stop_step": round(rng.uniform(0.3, 0.7) * success_step)}
        return {"kind": "stop_progress", "fraction": round(float(rng.uniform(0.25, 0.5)), 3)}
    if variant % 2 == 0:
        return {"kind": "beside", "offset": 0.15 if rng.uniform() < 0.5 else -0.15}
    return {"kind": "noise", "sigma": 1.0, "noise_seed": int(rng.integers(2**31))}
