"""``robo-reward label``: score recorded episodes and write rewards, progress and a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from robo_reward.commands._common import add_model_arguments, add_subcommand, model_from_args

EXAMPLES = """\
  robo-reward label --view front=front.mp4 --view wrist=wrist.mp4 \\
      --task "open the drawer" --model clip --stride 2 --out runs/drawer
  robo-reward label --view front=front.mp4 --task "open the drawer" \\
      --model clip --arch ViT-B-32 --pretrained laion2b_s34b_b79k --out runs/drawer
  robo-reward label --episodes robo_reward/assets/metaworld_sample --split eval --out runs/sample
  robo-reward label --view front=front.mp4 --task "open the drawer" --model models/drawer.pt --out runs/d2
"""


def add_parser(subparsers) -> None:
    from robo_reward.assets import DEFAULT_MODEL
    from robo_reward.data.sources import add_source_arguments
    from robo_reward.shaping import REWARD_MODES

    parser = add_subcommand(subparsers, "label", "Label recorded episodes with rewards and progress.", EXAMPLES, run)
    add_source_arguments(parser)
    add_model_arguments(parser, default=str(DEFAULT_MODEL))
    group = parser.add_argument_group("labeling")
    group.add_argument("--out", type=Path, required=True, help="output folder (scores.parquet, report.html, …)")
    group.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    group.add_argument("--stride", type=int, default=1, help="score every N-th frame")
    group.add_argument("--fps", type=float, help="resample the reference view to this rate first")
    group.add_argument("--batch-size", type=int, default=16, help="synchronised samples per model call")
    group.add_argument("--gamma", type=float, default=0.99, help="discount of the shaping (= the learner's)")
    group.add_argument("--reward", choices=REWARD_MODES, default="shaped",
                       help="shaped: policy-invariant potential shaping; others change the optimal policy")
    group.add_argument("--terminal", choices=("truncated", "outcome"), default="truncated",
                       help="episode end: a truncation (Φ kept) or terminated when the outcome is success")
    group.add_argument("--no-report", action="store_true", help="skip report.html")


def run(args: argparse.Namespace) -> int:
    from robo_reward.data.sources import open_episodes
    from robo_reward.evaluation import format_metrics, load_scores, compute_metrics
    from robo_reward.labeling import LabelConfig, label_episodes

    config = LabelConfig(batch_size=args.batch_size, stride=args.stride, fps=args.fps, gamma=args.gamma,
                         reward=args.reward, terminal=args.terminal)
    episodes = open_episodes(args)
    model = model_from_args(args)
    out = label_episodes(model, episodes, config, args.out, overwrite=args.overwrite, report=not args.no_report)
    print(format_metrics(compute_metrics(load_scores(out))))
    print(f"\nwrote {out / 'scores.parquet'}" + ("" if args.no_report else f" and {out / 'report.html'}"))
    return 0
