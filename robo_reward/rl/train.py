"""Train a stable-baselines3 agent in a camera-rendering simulator with a reward model
in the loop (CleanRL-style: read :func:`train` top to bottom).

Rewards (``reward``): ``sparse`` simulator success; ``dense`` the simulator's own
hand-designed reward; ``shaped`` sparse success plus potential shaping with the reward
model's progress Φ (Ng et al. 1999, policy-invariant); ``progress`` Φ(s') used raw
(VLM-RM, Rocamonde et al. 2023; changes the optimal policy).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from robo_reward.errors import ConfigError, require
from robo_reward.shaping import check_gamma
from robo_reward.types import Task


@dataclass
class TrainArgs:
    """Arguments of a training run; also the keys of a YAML config file."""

    backend: str = "metaworld"
    """simulator: 'metaworld' (MuJoCo) or 'panda' (PyBullet via panda-gym)"""
    task: str = "drawer-open-v3"
    """Meta-World task name or panda-gym id (e.g. PandaReach-v3)"""
    instruction: str = "open the drawer"
    """task text given to the reward model"""
    cameras: tuple[str, ...] = ("corner", "topview")
    """cameras rendered each step (their names must match the reward model's views)"""
    image_size: int = 64
    """square camera image side, pixels"""
    shadows: bool = True
    """render shadows (off: faster software rendering; match what the reward model was fitted on)"""
    max_episode_steps: int = 200
    """time limit (a truncation, never a termination)"""
    reward: str = "shaped"
    """sparse | dense | shaped | progress"""
    reward_model: str | None = None
    """reward model: registered name or checkpoint path (needed for shaped/progress)"""
    reward_model_options: dict[str, Any] = field(default_factory=dict)
    """config options when reward_model is a registered name (e.g. {arch: ViT-B-32})"""
    relabel: bool = False
    """score views after each rollout and rewrite the replay buffer (SAC only)"""
    algo: str = "sac"
    """sac | ppo"""
    total_steps: int = 20_000
    """environment steps to train for"""
    n_envs: int = 1
    """parallel environments (stepped in one process)"""
    gamma: float = 0.99
    """discount of the learner"""
    shaping_gamma: float | None = None
    """discount of the shaping; None means the learner's (they must be equal)"""
    learning_rate: float = 3e-4
    """optimiser step size"""
    batch_size: int = 256
    """minibatch size of gradient steps"""
    learning_starts: int = 1_000
    """SAC: random-action steps before learning"""
    train_freq: int = 1
    """SAC: environment steps between updates (use e.g. 200 with relabel)"""
    gradient_steps: int = 1
    """SAC: gradient steps per update (-1: as many as steps collected)"""
    eval_every: int = 5_000
    """environment steps between evaluations of the simulator's success rate"""
    eval_episodes: int = 5
    """episodes per evaluation"""
    record_video: bool = True
    """write a rollout video with the reward curve at each evaluation"""
    checkpoint_every: int = 10_000
    """environment steps between checkpoints (model and replay buffer)"""
    seed: int = 0
    """seed of the learner and the environments"""
    device: str = "auto"
    """torch device of the learner"""
    torch_threads: int = 1
    """CPU threads for torch (small networks run fastest on one; more only contend)"""
    out: str = "runs/train"
    """output folder: tensorboard logs, eval.csv, videos, checkpoints"""
    resume: bool = False
    """continue from the newest checkpoint in out/checkpoints"""
    progress_bar: bool = True
    """show a progress bar"""

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainArgs:
        data = yaml.safe_load(Path(path).read_text()) or {}
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"{path}: unknown keys {unknown}; see robo_reward.rl.train.TrainArgs")
        data.update(overrides)
        if "cameras" in data:
            data["cameras"] = tuple(data["cameras"])
        return cls(**data)


def make_camera_env(args: TrainArgs, seed: int, render: bool = True):
    """One env with a time limit; with ``render`` its camera views go to ``info["views"]``
    (rewards that need no model train without rendering).

    No ``Monitor`` here: it would log the simulator's reward. :func:`train` monitors the
    reward VecEnv instead (``VecMonitor`` outside :class:`VecRewardModel`), so episode
    returns are those of the rewards the learner receives."""
    import gymnasium as gym

    from robo_reward.rl.views import ViewsToInfo

    if args.backend == "metaworld":
        from robo_reward.envs.metaworld import make_metaworld_env, metaworld_task_env

        limit = args.max_episode_steps + 1  # our TimeLimit, not Meta-World's, truncates
        env = (ViewsToInfo(make_metaworld_env(args.task, args.cameras, args.image_size, max_path_length=limit,
                                              shadows=args.shadows))
               if render else metaworld_task_env(args.task, max_path_length=limit))
    elif args.backend == "panda":
        from robo_reward.envs.panda import check_task, make_panda_env

        env = (ViewsToInfo(make_panda_env(args.task, args.cameras, args.image_size, shadows=args.shadows))
               if render else gym.make(check_task(args.task)))
    else:
        raise ConfigError(f"unknown backend '{args.backend}': use 'metaworld' or 'panda'")
    env = gym.wrappers.TimeLimit(env, max_episode_steps=args.max_episode_steps)
    env.reset(seed=seed)
    return env


def check_args(args: TrainArgs) -> None:
    """Everything that can be wrong with a configuration, before any simulator starts."""
    from robo_reward.rl.vec_reward import REWARDS

    if args.reward not in REWARDS:
        raise ConfigError(f"unknown reward '{args.reward}'; choose from {', '.join(REWARDS)}")
    if args.algo not in ("sac", "ppo"):
        raise ConfigError(f"unknown algo '{args.algo}'; choose sac or ppo")
    if args.reward in ("shaped", "progress") and not args.reward_model:
        raise ConfigError(f"reward '{args.reward}' needs reward_model (a registered name or a checkpoint path)")
    if args.relabel and args.algo != "sac":
        raise ConfigError("relabel needs an off-policy learner: set algo: sac or relabel: false")
    if args.shaping_gamma is not None:
        check_gamma(args.shaping_gamma, args.gamma)


def latest_checkpoint(folder: Path) -> tuple[Path, int] | None:
    found = [(p, int(m.group(1))) for p in folder.glob("model_*_steps.zip")
             if (m := re.fullmatch(r"model_(\d+)_steps\.zip", p.name))]
    return max(found, key=lambda item: item[1]) if found else None


def train(args: TrainArgs) -> Path:
    """Train; returns the output folder (eval.csv, tb/, videos/, checkpoints/, final model)."""
    require("stable_baselines3", "sim", "RL training")
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from robo_reward.models import load_model
    from robo_reward.rl.callbacks import SuccessEvalCallback
    from robo_reward.rl.relabel import RelabelCallback
    from robo_reward.rl.vec_reward import VecRewardModel

    # 1. Check the configuration; the simulators check the task and camera names.
    check_args(args)
    torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    task = Task(args.instruction)
    render = args.reward in ("shaped", "progress")
    eval_env = make_camera_env(args, args.seed + 10_000, render=args.record_video)
    venv = DummyVecEnv([lambda i=i: make_camera_env(args, args.seed + i, render) for i in range(args.n_envs)])
    venv.seed(args.seed)

    # 2. The reward model in the loop of the N training envs; it must see only rendered views.
    #    VecMonitor goes outside it: rollout/ep_rew_mean is the return of the rewards the
    #    learner receives (shaped, progress…), not the simulator's.
    model = load_model(args.reward_model, **args.reward_model_options) if render else None
    reward_env = VecRewardModel(venv, model, task, args.shaping_gamma or args.gamma, args.reward,
                                relabel=args.relabel, rendered_views=args.cameras)
    learner_env = VecMonitor(reward_env)

    # 3. The learner, new or resumed from the newest checkpoint.
    checkpoints = out / "checkpoints"
    resumed = latest_checkpoint(checkpoints) if args.resume else None
    algo = {"sac": SAC, "ppo": PPO}[args.algo]
    if resumed:
        learner = algo.load(resumed[0], env=learner_env, device=args.device)
        buffer = checkpoints / f"model_replay_buffer_{resumed[1]}_steps.pkl"
        if args.algo == "sac" and buffer.is_file():
            learner.load_replay_buffer(buffer)
    else:
        policy = "MultiInputPolicy" if isinstance(venv.observation_space, dict) or hasattr(
            venv.observation_space, "spaces") else "MlpPolicy"
        common = dict(gamma=args.gamma, learning_rate=args.learning_rate, batch_size=args.batch_size,
                      seed=args.seed, device=args.device, tensorboard_log=str(out / "tb"), verbose=0)
        if args.algo == "sac":
            learner = SAC(policy, learner_env, learning_starts=args.learning_starts, train_freq=args.train_freq,
                          gradient_steps=args.gradient_steps, **common)
        else:
            learner = PPO(policy, learner_env, **common)
    reward_env.check_learner(learner.gamma)

    # 4. Callbacks: success-rate evaluation (+ videos), checkpoints, relabeling.
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(args), indent=2))
    callbacks = [
        SuccessEvalCallback(eval_env, model, task, args.eval_every, args.eval_episodes, out,
                            record_video=args.record_video),
        CheckpointCallback(max(args.checkpoint_every // args.n_envs, 1), str(checkpoints), name_prefix="model",
                           save_replay_buffer=args.algo == "sac"),
    ]
    if args.relabel:
        callbacks.append(RelabelCallback(reward_env))

    # 5. Learn.
    done = resumed[1] if resumed else 0
    learner.learn(total_timesteps=max(args.total_steps - done, 0), callback=CallbackList(callbacks),
                  reset_num_timesteps=not resumed, progress_bar=args.progress_bar, tb_log_name=args.algo)
    learner.save(out / "final_model")
    learner_env.close()
    eval_env.close()
    return out


def read_eval_log(out: str | Path) -> list[dict[str, float]]:
    """Rows of ``eval.csv``: steps, wall_clock_s, success_rate, mean_return (the last row per step)."""
    with open(Path(out) / "eval.csv") as handle:
        rows = {float(row["steps"]): {k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)}
    return [rows[step] for step in sorted(rows)]


def final_success(out: str | Path) -> float:
    rows = read_eval_log(out)
    return float(np.mean([r["success_rate"] for r in rows[-2:]])) if rows else float("nan")

