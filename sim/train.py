"""Train an SB3 agent with a camera reward model in the loop; same as `robo-reward train`.

    python sim/train.py --config sim/configs/drawer_open_shaped.yaml --set total_steps=5000

The training itself reads top to bottom in robo_reward/rl/train.py (`train`), and every
argument is a documented field of `TrainArgs` there.
"""

import sys

from robo_reward.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
