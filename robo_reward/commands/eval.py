"""``robo-reward eval``: metrics of a labeled run."""

from __future__ import annotations

import argparse
from pathlib import Path

from robo_reward.commands._common import add_subcommand

EXAMPLES = """\
  robo-reward eval runs/drawer
  robo-reward eval runs/drawer/scores.parquet
"""


def add_parser(subparsers) -> None:
    parser = add_subcommand(subparsers, "eval", "Print and save the metrics of a labeled run.", EXAMPLES, run)
    parser.add_argument("run_dir", type=Path, help="a folder written by `robo-reward label`")


def run(args: argparse.Namespace) -> int:
    from robo_reward.evaluation import compute_metrics, format_metrics, load_scores, write_metrics

    metrics = compute_metrics(load_scores(args.run_dir))
    folder = args.run_dir if args.run_dir.is_dir() else args.run_dir.parent
    path = write_metrics(metrics, folder)
    print(format_metrics(metrics))
    print(f"\nwrote {path}")
    return 0
