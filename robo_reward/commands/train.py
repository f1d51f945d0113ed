"""``robo-reward train``: RL in a camera-rendering simulator with a reward model in the loop."""

from __future__ import annotations

import argparse
from pathlib import Path

from robo_reward.commands._common import add_subcommand

EXAMPLES = """\
  robo-reward train --config sim/configs/drawer_open_shaped.yaml
  robo-reward train --config sim/configs/drawer_open_shaped.yaml --set total_steps=5000 --set seed=1
  robo-reward train --set backend=panda --set task=PandaReach-v3 --set reward=dense --set 'cameras=front'
  robo-reward train --config run.yaml --set resume=true          # continue from the newest checkpoint

Every field of robo_reward.rl.train.TrainArgs is a YAML key and a --set KEY=VALUE.
--set sets a key of the training run; it is not --option (label/fit/serve), which sets a field
of the reward model's config: here those go in the run's reward_model_options key, e.g.
  robo-reward train --set reward_model=clip --set 'reward_model_options={pretrained: none}'
"""


def add_parser(subparsers) -> None:
    parser = add_subcommand(subparsers, "train", "Train a stable-baselines3 agent with a camera reward model.",
                            EXAMPLES, run)
    parser.add_argument("--config", type=Path, help="YAML file of TrainArgs fields")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key of the run config, a TrainArgs field (repeatable); the reward "
                             "model's own options (what --option sets in label/fit/serve) are the key "
                             "reward_model_options")


def run(args: argparse.Namespace) -> int:
    import typing
    from dataclasses import fields

    from robo_reward.errors import UsageError
    from robo_reward.models.options import coerce_option
    from robo_reward.rl.train import TrainArgs, final_success, train

    hints = typing.get_type_hints(TrainArgs)
    known = {f.name for f in fields(TrainArgs)}
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in known:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        overrides[key] = coerce_option(value, hints[key], key)
    config = TrainArgs.from_yaml(args.config, **overrides) if args.config else TrainArgs(**overrides)
    out = train(config)
    print(f"final success rate {final_success(out):.2f}; logs, videos and checkpoints in {out}")
    return 0
