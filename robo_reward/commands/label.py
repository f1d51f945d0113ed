"""``robo-reward label``: score recorded episodes and write rewards, progress and a report."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from robo_reward.commands._common import add_model_arguments, add_subcommand, model_from_args

EXAMPLES = """\
  robo-reward label --view front=front.mp4 --view wrist=wrist.mp4 \\
      --task "open the drawer" --model clip --stride 2 --out runs/drawer
  robo-reward label --view front=front.mp4 --task "open the drawer" \\
      --model clip --arch ViT-B-32 --pretrained laion2b_s34b_b79k --out runs/drawer
  robo-reward label --episodes robo_reward/assets/metaworld_sample --split eval --out runs/sample
  robo-reward label --view front=front.mp4 --task "open the drawer" --model models/drawer.pt --out runs/d2
  robo-reward label --lerobot ~/data/so101_pick_place --model models/pick.pt --out runs/pick   # + runs/pick/lerobot/
  robo-reward label --lerobot lerobot/pusht --write sidecar --model models/pusht.pt --out runs/pusht
  robo-reward label --bag rec1.mcap --bag rec2 --view front=/cam/front/image_raw \\
      --view wrist=/cam/wrist/compressed --slop 0.02 --task "pick the cup" --model models/cup.pt --out runs/cup
  robo-reward label --episodes corpus/ --model models/drawer.pt --out runs/big --engine ray --resume
"""


def add_parser(subparsers) -> None:
    from robo_reward.assets import DEFAULT_MODEL
    from robo_reward.data.sources import add_source_arguments
    from robo_reward.engine import ENGINES
    from robo_reward.shaping import REWARD_MODES

    parser = add_subcommand(subparsers, "label", "Label recorded episodes with rewards and progress.", EXAMPLES, run)
    add_source_arguments(parser)
    add_model_arguments(parser, default=str(DEFAULT_MODEL))
    group = parser.add_argument_group("labeling")
    group.add_argument("--out", type=Path, required=True, help="output folder (scores.parquet, report.html, …)")
    group.add_argument("--overwrite", action="store_true",
                       help="replace an existing output folder (and, without --resume, discard unfinished work)")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run of the same --out, keeping its finished episodes")
    group.add_argument("--stride", type=int, default=1, help="score every N-th frame")
    group.add_argument("--fps", type=float, help="resample the reference view to this rate first")
    group.add_argument("--batch-size", type=int, default=32,
                       help="synchronised samples per model call")
    group.add_argument("--gamma", type=float, default=0.99, help="discount of the shaping (= the learner's)")
    group.add_argument("--reward", choices=REWARD_MODES, default="shaped",
                       help="shaped: policy-invariant potential shaping; others change the optimal policy")
    group.add_argument("--terminal", choices=("truncated", "outcome"), default="truncated",
                       help="episode end: a truncation (Φ kept) or terminated when the outcome is success")
    group.add_argument("--no-report", action="store_true", help="skip report.html")
    group.add_argument("--score-reversed", action="store_true",
                       help="also score each episode backwards (reversed VOC for models that use context)")
    engine = parser.add_argument_group("execution")
    engine.add_argument("--engine", choices=ENGINES, default="local",
                        help="local: in this process; ray: Ray Data (decode tasks + an actor pool holding the model)")
    engine.add_argument("--prefetch", action="store_true",
                        help="local engine: decode in a child process while the model scores; pays off when the model "
                        "does not need the CPU (a GPU) and decoding is slow, costs a little on a small CPU machine")
    engine.add_argument("--torch-threads", type=int, default=1,
                        help="CPU threads of the model (torch.set_num_threads); 0 leaves torch's default (compare with "
                        "bench/label_throughput.py --threads N)")
    engine.add_argument("--address", help="with --engine ray: address of an existing Ray cluster (default: start a "
                                          "local one)")
    engine.add_argument("--ray-actors", type=int, help="with --engine ray: scoring actors (default: one per GPU, "
                                                       "else one per two CPUs)")
    engine.add_argument("--ray-gpus-per-actor", type=float,
                        help="with --engine ray: GPUs per scoring actor (default: 1 where the cluster has GPUs)")


def make_engine(args: argparse.Namespace):
    """The engine ``--engine`` names; Ray actors build the model from the same arguments."""
    if args.engine == "local":
        from robo_reward.engine.local import LocalEngine

        return LocalEngine(prefetch=args.prefetch)
    from robo_reward.engine.ray_data import RayEngine

    return RayEngine(address=args.address, num_actors=args.ray_actors, num_gpus_per_actor=args.ray_gpus_per_actor,
                     model_loader=functools.partial(model_from_args, args))


def run(args: argparse.Namespace) -> int:
    from robo_reward.data.sources import open_episodes, open_sinks
    from robo_reward.errors import UsageError
    from robo_reward.evaluation import format_metrics, read_metrics
    from robo_reward.labeling import LabelConfig, label_episodes

    if args.torch_threads > 0:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.score_reversed and args.engine != "local":
        raise UsageError("--score-reversed runs on the local engine only")
    config = LabelConfig(batch_size=args.batch_size, stride=args.stride, fps=args.fps, gamma=args.gamma,
                         score_reversed=args.score_reversed,
                         reward=args.reward, terminal=args.terminal)
    episodes = open_episodes(args)
    sinks = open_sinks(args, episodes)
    model = model_from_args(args)
    print(f"model: {model.describe()}", file=sys.stderr)
    out = label_episodes(model, episodes, config, args.out, overwrite=args.overwrite, report=not args.no_report,
                         resume=args.resume, sinks=sinks, engine=make_engine(args))
    print(format_metrics(read_metrics(out)))
    outputs = json.loads((out / "run.json").read_text()).get("outputs", [])
    written = ["scores.parquet", *([] if args.no_report else ["report.html"]), *outputs]
    print(f"\nwrote in {out}: {', '.join(written)}")
    return 0
