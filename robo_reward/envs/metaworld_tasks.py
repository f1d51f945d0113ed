"""The Meta-World v3 task catalogue: the 50 task names (:data:`TASKS`), each task's
instruction in words (:data:`INSTRUCTIONS`) and :func:`check_task`.

Importing it imports Meta-World (and so MuJoCo): ``MUJOCO_GL`` is chosen first, see
:func:`robo_reward.envs.cameras.choose_mujoco_gl`.
"""

from __future__ import annotations

from robo_reward.envs.cameras import check_names, choose_mujoco_gl
from robo_reward.errors import require

choose_mujoco_gl()
_env_dict = require("metaworld.env_dict", "sim", "Meta-World tasks")

#: The 50 Meta-World v3 task names, e.g. ``"drawer-open-v3"``.
TASKS: tuple[str, ...] = tuple(sorted(_env_dict.ALL_V3_ENVIRONMENTS))

#: Task → instruction in words, after the task descriptions of the Meta-World paper.
INSTRUCTIONS: dict[str, str] = {
    "assembly-v3": "put the nut on the peg",
    "basketball-v3": "dunk the basketball into the basket",
    "bin-picking-v3": "move the cube from one bin to the other",
    "box-close-v3": "put the lid on the box",
    "button-press-topdown-v3": "press the button from the top",
    "button-press-topdown-wall-v3": "press the button behind the wall from the top",
    "button-press-v3": "press the button",
    "button-press-wall-v3": "press the button behind the wall",
    "coffee-button-v3": "press the button on the coffee machine",
    "coffee-pull-v3": "pull the mug out of the coffee machine",
    "coffee-push-v3": "push the mug under the coffee machine",
    "dial-turn-v3": "turn the dial",
    "disassemble-v3": "take the nut off the peg",
    "door-close-v3": "close the door",
    "door-lock-v3": "lock the door",
    "door-open-v3": "open the door",
    "door-unlock-v3": "unlock the door",
    "drawer-close-v3": "close the drawer",
    "drawer-open-v3": "open the drawer",
    "faucet-close-v3": "turn the faucet off",
    "faucet-open-v3": "turn the faucet on",
    "hammer-v3": "hammer the nail into the wall",
    "hand-insert-v3": "put the gripper into the hole",
    "handle-press-side-v3": "press the handle down from the side",
    "handle-press-v3": "press the handle down",
    "handle-pull-side-v3": "pull the handle up from the side",
    "handle-pull-v3": "pull the handle up",
    "lever-pull-v3": "pull the lever up",
    "peg-insert-side-v3": "insert the peg into the hole from the side",
    "peg-unplug-side-v3": "unplug the peg from the side",
    "pick-out-of-hole-v3": "pick the peg out of the hole",
    "pick-place-v3": "pick up the puck and place it at the goal",
    "pick-place-wall-v3": "pick up the puck and place it at the goal behind the wall",
    "plate-slide-back-side-v3": "slide the plate out of the cabinet from the side",
    "plate-slide-back-v3": "slide the plate out of the cabinet",
    "plate-slide-side-v3": "slide the plate into the cabinet from the side",
    "plate-slide-v3": "slide the plate into the cabinet",
    "push-back-v3": "push the puck back to the goal",
    "push-v3": "push the puck to the goal",
    "push-wall-v3": "push the puck past the wall to the goal",
    "reach-v3": "reach the goal position",
    "reach-wall-v3": "reach the goal position behind the wall",
    "shelf-place-v3": "pick up the puck and place it on the shelf",
    "soccer-v3": "kick the ball into the goal",
    "stick-pull-v3": "grasp the stick and pull the box with it",
    "stick-push-v3": "grasp the stick and push the box with it",
    "sweep-into-v3": "sweep the puck into the hole",
    "sweep-v3": "sweep the puck off the table",
    "window-close-v3": "close the window",
    "window-open-v3": "open the window",
}


def check_task(task: str) -> str:
    """Return ``task`` if it is a Meta-World v3 task name, else raise :class:`ConfigError`."""
    return check_names("task", (task,), TASKS, "Meta-World v3")[0]
