"""Train a stable-baselines3 agent in a camera-rendering simulator with a reward model
in the loop (CleanRL-style: read :func:`train` top to bottom).

Rewards (``reward``): ``sparse`` simulator success; ``dense`` the simulator's own
hand-designed reward; ``shaped`` sparse success plus potential shaping with the reward
model's progress Φ (Ng et al. 1999, policy-invariant); ``progress`` Φ(s') used raw
(VLM-RM, Rocamonde et al. 2023; changes the optimal policy).

Learners (``algo``): SB3's ``sac`` and ``ppo``, and ``rlpd`` (:class:`robo_reward.rl.rlpd.RLPD`,
Ball et al. 2023): SAC with LayerNorm critics, an ensemble with random-subset targets, an
update-to-data ratio and a demo buffer sampled symmetrically with the online data, filled
from a LeRobot dataset of demonstrations (``demos``) rewarded exactly like the online
transitions (:mod:`robo_reward.rl.demos`). Steps, episode lengths and γ count *agent*
steps; an agent step is ``action_repeat`` simulator steps.
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
from robo_reward.shaping import REWARD_MODES, check_gamma
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
    """time limit in agent steps (a truncation, never a termination)"""
    action_repeat: int = 1
    """simulator steps per agent step (the action held); views are rendered once per agent step"""
    reward: str = "shaped"
    """sparse | dense | shaped | a transform of robo_reward.shaping.TRANSFORMS (progress, kagi…)"""
    reward_model: str | None = None
    """reward model: registered name or checkpoint path (needed for shaped/progress)"""
    reward_model_options: dict[str, Any] = field(default_factory=dict)
    """config options when reward_model is a registered name (e.g. {arch: ViT-B-32})"""
    depth: bool = False
    """render each camera's depth too, for the reward model (the keypoint model lifts tracked
    points to 3D with it); demos then need recorded depth (the recipe's --keypoints)"""
    ground_truth_keypoints: bool = False
    """each episode's task holds the simulator's ground-truth keypoints at its first state
    (GroundTruthKeypoints; the demos' from the recipe's sidecar): the keypoint model's spec"""
    relabel: bool = False
    """score views after each rollout and rewrite the replay buffer (SAC only)"""
    algo: str = "sac"
    """sac | ppo | rlpd"""
    total_steps: int = 20_000
    """agent steps to train for"""
    n_envs: int = 1
    """parallel environments (stepped in one process)"""
    gamma: float = 0.99
    """discount of the learner, per agent step"""
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
    init_temperature: float = 1.0
    """sac/rlpd: the entropy temperature α's start value, auto-tuned from there (SB3's and
    RLPD's 1.0; SERL's 0.01 for sparse rewards, where α·log π outweighs a Q near 0 until α decays)"""
    demos: str | None = None
    """rlpd: LeRobot dataset of demonstrations for the demo buffer (its successful episodes;
    ``observation.environment_state`` is the learner's observation, recorded with the same action_repeat)"""
    demo_episodes: int = 10
    """rlpd: most successful demonstration episodes loaded"""
    demo_ratio: float = 0.5
    """rlpd: fraction of every batch drawn from the demonstrations (RLPD: 0.5)"""
    utd_ratio: int = 1
    """rlpd: critic updates per agent step (one actor and temperature update per utd_ratio)"""
    n_critics: int = 2
    """rlpd: critic ensemble size (RLPD: 10; each costs a forward and backward pass per update)"""
    num_min_qs: int = 2
    """rlpd: target critics the TD target takes the minimum over, drawn at random each update"""
    backup_entropy: bool = False
    """rlpd: the entropy term in the TD target (RLPD's configs turn it off for sparse rewards)"""
    bc_weight: float = 0.0
    """rlpd: β of a behaviour-cloning term on the demos in the actor's loss, β·mean|Q|·‖μ(s)−a‖²
    (TD3+BC's scaling; 0: none, as in RLPD)"""
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
    """One env with action repeat and a time limit in agent steps; with ``render`` its
    camera views go to ``info["views"]`` (rewards that need no model train without
    rendering). panda-gym's dict observation is flattened (``FlattenObservation``: keys
    sorted), the layout of the demo recipe's ``observation.environment_state``.

    No ``Monitor`` here: it would log the simulator's reward. :func:`train` monitors the
    reward VecEnv instead (``VecMonitor`` outside :class:`VecRewardModel`), so episode
    returns are those of the rewards the learner receives."""
    import gymnasium as gym

    from robo_reward.envs.action_repeat import ActionRepeat

    repeat = args.action_repeat
    if args.backend == "metaworld":
        from robo_reward.envs.metaworld import make_metaworld_env, metaworld_task_env

        limit = args.max_episode_steps * repeat + 1  # our TimeLimit, not Meta-World's, truncates
        env = (_for_the_reward_model(make_metaworld_env(args.task, args.cameras, args.image_size, max_path_length=limit,
                                                        shadows=args.shadows, action_repeat=repeat), args)
               if render else ActionRepeat(metaworld_task_env(args.task, max_path_length=limit), repeat))
    elif args.backend == "panda":
        from robo_reward.envs.panda import check_task, make_panda_env

        env = (_for_the_reward_model(make_panda_env(args.task, args.cameras, args.image_size, shadows=args.shadows,
                                                    action_repeat=repeat), args)
               if render else ActionRepeat(gym.make(check_task(args.task)), repeat))
        env = gym.wrappers.FlattenObservation(env)
    else:
        raise ConfigError(f"unknown backend '{args.backend}': use 'metaworld' or 'panda'")
    env = gym.wrappers.TimeLimit(env, max_episode_steps=args.max_episode_steps)
    env.reset(seed=seed)
    return env


def _for_the_reward_model(env: Any, args: TrainArgs) -> Any:
    """A camera env with its depth (``depth``) and each episode's ground-truth keypoints
    (``ground_truth_keypoints``) where asked, its views (and depth) moved to ``info``."""
    from robo_reward.envs.depth import DepthViews
    from robo_reward.envs.keypoints import GroundTruthKeypoints
    from robo_reward.rl.views import ViewsToInfo

    if args.depth:
        env = DepthViews(env)
    if args.ground_truth_keypoints:
        env = GroundTruthKeypoints(env, args.instruction, args.task, args.cameras)
    return ViewsToInfo(env)


def check_args(args: TrainArgs) -> None:
    """Everything that can be wrong with a configuration, before any simulator starts."""
    from robo_reward.rl.vec_reward import REWARDS

    if args.reward not in REWARDS:
        raise ConfigError(f"unknown reward '{args.reward}'; choose from {', '.join(REWARDS)}")
    if args.algo not in ALGOS:
        raise ConfigError(f"unknown algo '{args.algo}'; choose from {', '.join(ALGOS)}")
    if args.demos and args.algo != "rlpd":
        raise ConfigError("demos fill RLPD's demo buffer: set algo: rlpd (or drop demos)")
    if args.action_repeat < 1:
        raise ConfigError(f"action_repeat must be >= 1, got {args.action_repeat}")
    if args.init_temperature <= 0:
        raise ConfigError(f"init_temperature must be > 0, got {args.init_temperature}")
    if args.reward in REWARD_MODES and not args.reward_model:
        raise ConfigError(f"reward '{args.reward}' needs reward_model (a registered name or a checkpoint path)")
    if args.relabel and args.algo == "ppo":
        raise ConfigError("relabel needs an off-policy learner: set algo: sac or rlpd, or relabel: false")
    if args.shaping_gamma is not None:
        check_gamma(args.shaping_gamma, args.gamma)


ALGOS = ("sac", "ppo", "rlpd")


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
    from robo_reward.rl.rlpd import RLPD
    from robo_reward.rl.vec_reward import VecRewardModel

    # 1. Check the configuration; the simulators check the task and camera names.
    check_args(args)
    torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    task = Task(args.instruction)
    render = args.reward in REWARD_MODES
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
    algo = {"sac": SAC, "ppo": PPO, "rlpd": RLPD}[args.algo]
    if resumed:
        learner = algo.load(resumed[0], env=learner_env, device=args.device)
        buffer = checkpoints / f"model_replay_buffer_{resumed[1]}_steps.pkl"
        if args.algo != "ppo" and buffer.is_file():
            learner.load_replay_buffer(buffer)
    else:
        policy = "MultiInputPolicy" if isinstance(venv.observation_space, dict) or hasattr(
            venv.observation_space, "spaces") else "MlpPolicy"
        common = dict(gamma=args.gamma, learning_rate=args.learning_rate, batch_size=args.batch_size,
                      seed=args.seed, device=args.device, tensorboard_log=str(out / "tb"), verbose=0)
        temperature = {"ent_coef": f"auto_{args.init_temperature}"}
        if args.algo == "sac":
            learner = SAC(policy, learner_env, learning_starts=args.learning_starts, train_freq=args.train_freq,
                          gradient_steps=args.gradient_steps, **temperature, **common)
        elif args.algo == "rlpd":
            learner = RLPD(learner_env, utd_ratio=args.utd_ratio, num_min_qs=args.num_min_qs,
                           backup_entropy=args.backup_entropy, bc_weight=args.bc_weight,
                           learning_starts=args.learning_starts,
                           policy_kwargs={"n_critics": args.n_critics},
                           replay_buffer_kwargs={"demo_ratio": args.demo_ratio}, **temperature, **common)
            if args.demos:
                fill_demo_buffer(learner, args, model, task)
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
                           save_replay_buffer=args.algo != "ppo"),
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


def fill_demo_buffer(learner: Any, args: TrainArgs, model: Any, task: Task) -> int:
    """Load ``args.demos`` into the learner's demo buffer, rewarded as the online data;
    returns the number of transitions. The recording must match the env: the same
    observation and action sizes, the same action repeat."""
    from robo_reward.rl.demos import demo_transitions, load_demonstrations, recorded_settings

    recorded = recorded_settings(args.demos)
    repeat = recorded.get("action_repeat")
    if repeat is not None and repeat != args.action_repeat:
        raise ConfigError(f"{args.demos}: demonstrations recorded with action repeat {repeat}, "
                          f"training uses {args.action_repeat}: record them with --action-repeat {args.action_repeat}")
    render = recorded.get("render", {})
    if model is not None and render and (render.get("shadows") != args.shadows or render.get("size") != args.image_size):
        # the model scores the demos' frames and the online renders alike: they must look alike
        raise ConfigError(f"{args.demos}: frames rendered at {render.get('size')} px with shadows "
                          f"{'on' if render.get('shadows') else 'off'}, training renders {args.image_size} px with "
                          f"shadows {'on' if args.shadows else 'off'}: record the demos as the env renders")
    views = args.cameras if model is not None else ()
    demos = load_demonstrations(args.demos, views, limit=args.demo_episodes, depth=model is not None and args.depth,
                                keypoints=model is not None and args.ground_truth_keypoints)
    observation_size = int(np.prod(learner.observation_space.shape))
    action_size = int(np.prod(learner.action_space.shape))
    if demos[0].observations.shape[1] != observation_size or demos[0].actions.shape[1] != action_size:
        raise ConfigError(f"{demos[0].name}: observations of {demos[0].observations.shape[1]} and actions of "
                          f"{demos[0].actions.shape[1]} values; the env has {observation_size} and {action_size}")
    transitions = demo_transitions(demos, args.reward, args.gamma, model, task,
                                   terminates_on_success=args.backend == "panda")
    learner.replay_buffer.add_demos(**transitions.as_kwargs())
    return len(transitions.actions)


def read_eval_log(out: str | Path) -> list[dict[str, float]]:
    """Rows of ``eval.csv``: steps, wall_clock_s, success_rate, mean_return (the last row per step)."""
    with open(Path(out) / "eval.csv") as handle:
        rows = {float(row["steps"]): {k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)}
    return [rows[step] for step in sorted(rows)]


LEARNER_SCALARS = ("train/ent_coef", "train/q_abs_mean", "train/bc_mse")
"""What the learner logs that says how it balances its terms: SAC's temperature α, the
critics' mean |Q| (the BC term's scale) and the BC term's squared action error."""


def read_learner_log(out: str | Path) -> dict[str, list[tuple[int, float]]]:
    """The :data:`LEARNER_SCALARS` a run logged to tensorboard under ``out/tb``, each as
    (agent step, value) pairs in step order (a resumed run's later log wins a step)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as exc:
        raise ImportError("reading the learner's log needs tensorboard: pip install 'robo_reward[sim]'") from exc
    series: dict[str, dict[int, float]] = {}
    for events in sorted(Path(out, "tb").rglob("events.out.tfevents*"), key=lambda p: p.stat().st_mtime):
        log = EventAccumulator(str(events), size_guidance={"scalars": 0})
        log.Reload()
        for tag in set(LEARNER_SCALARS) & set(log.Tags()["scalars"]):
            series.setdefault(tag, {}).update({int(e.step): float(e.value) for e in log.Scalars(tag)})
    return {tag: sorted(values.items()) for tag, values in series.items()}


def final_success(out: str | Path) -> float:
    rows = read_eval_log(out)
    return float(np.mean([r["success_rate"] for r in rows[-2:]])) if rows else float("nan")

