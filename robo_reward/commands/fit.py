"""``robo-reward fit``: fit a reward model from demonstrations and save a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from robo_reward.commands._common import add_subcommand, model_options

EXAMPLES = """\
  robo-reward fit perceptual --demos robo_reward/assets/metaworld_sample --split fit --out models/drawer.pt
  robo-reward fit perceptual --demos demos/ --option num_steps=5 --option features=pixels:24 --out models/d.pt
  robo-reward label --view front=front.mp4 --task "open the drawer" --model models/drawer.pt --out runs/d
"""


def add_parser(subparsers) -> None:
    parser = add_subcommand(subparsers, "fit", "Fit a reward model from successful demonstrations.", EXAMPLES, run)
    parser.add_argument("model", help="the model to fit, e.g. perceptual")
    parser.add_argument("--demos", type=Path, required=True, help="episodes.json folder (successful demos are used)")
    parser.add_argument("--split", help="only demos of this split")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a field of the model's config dataclass (repeatable)")


def run(args: argparse.Namespace) -> int:
    from robo_reward.data.episodes import load_manifest
    from robo_reward.errors import ConfigError, InputError
    from robo_reward.models import load_model, model_class
    from robo_reward.models.base import LearnedRewardModel

    cls = model_class(args.model)
    if not issubclass(cls, LearnedRewardModel):
        raise ConfigError(f"model '{args.model}' does not learn from demonstrations")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"checkpoint exists: {args.out} (pass --overwrite to replace it)")
    demos = load_manifest(args.demos, split=args.split, outcomes=("success",))
    model = load_model(args.model, **model_options(args, cls.config_class)).fit(demos)
    model.save(args.out)
    print(f"fitted {model.describe()} on {len(demos)} demos; wrote {args.out}")
    return 0
