"""``robo-reward fit``: fit a reward model from demonstrations and save a checkpoint."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from robo_reward.commands._common import add_subcommand, model_options

EXAMPLES = """\
  # one demo recorded with your own cameras (one video file per view), then label with the fitted model:
  robo-reward fit progress --view front=demo_front.mp4 --view wrist=demo_wrist.mp4 \\
      --task "open the drawer" --out models/mine.pt
  robo-reward label --view front=front.mp4 --view wrist=wrist.mp4 --task "open the drawer" \\
      --model models/mine.pt --out runs/mine
  robo-reward fit perceptual --episodes robo_reward/assets/metaworld_sample --split fit --out models/drawer.pt
  robo-reward fit perceptual --episodes demos/ --option num_steps=5 --option features=pixels:24 --out models/d.pt
  robo-reward fit progress --episodes runs/metaworld_ml45 --split train --out models/progress.pt
  robo-reward fit progress --init robo_reward/assets/progress_ml45.pt --episodes one_demo/ --out models/adapted.pt
  robo-reward fit progress --lerobot ~/data/so101_pick_place --option epochs=20 --out models/so101.pt
  robo-reward fit progress --bag demo.mcap --view front=/cam/front/image_raw --task "pick the cup" --out models/cup.pt

The inputs are those of `robo-reward label`; from --episodes only the successful episodes are
demos (--demos is another name for --episodes), from --lerobot those not recorded as partial or
failure in its meta/robo_reward_episodes.json, from --view and --bag every episode is.
"""


def add_parser(subparsers) -> None:
    from robo_reward.data.sources import add_source_arguments

    parser = add_subcommand(subparsers, "fit", "Fit a reward model from successful demonstrations.", EXAMPLES, run)
    parser.add_argument("model", help="the model to fit, e.g. progress or perceptual")
    add_source_arguments(parser, labeling=False)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a field of the model's config dataclass (repeatable)")
    parser.add_argument("--init", type=Path,
                        help="start from this fitted checkpoint and adapt it to the demos (few-shot; progress)")


def run(args: argparse.Namespace) -> int:
    from robo_reward.data.sources import open_episodes
    from robo_reward.errors import ConfigError, InputError, UsageError
    from robo_reward.models import load_model, model_class
    from robo_reward.models.base import LearnedRewardModel

    cls = model_class(args.model)
    if not issubclass(cls, LearnedRewardModel):
        raise ConfigError(f"model '{args.model}' does not learn from demonstrations")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"checkpoint exists: {args.out} (pass --overwrite to replace it)")
    demos = open_episodes(args, outcomes=("success",))
    options = model_options(args, cls.config_class)
    if args.init:
        model = load_model(args.init)
        if model.name != args.model:
            raise ConfigError(f"--init {args.init} holds a '{model.name}' model, not '{args.model}'")
        fixed = sorted(set(options) & set(getattr(cls, "architecture_fields", ())))
        if fixed:
            raise UsageError(f"options {fixed} fix the network's shape and cannot change when adapting --init")
        model.config = replace(model.config, **options)
    else:
        model = load_model(args.model, **options)
    model.fit(demos)
    model.save(args.out)
    print(f"{'adapted' if args.init else 'fitted'} {model.describe()} on {len(demos)} demos; wrote {args.out}")
    return 0
