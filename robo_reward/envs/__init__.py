"""Gymnasium environments that render N named cameras per step.

Importing this package registers two environment ids (the simulators themselves are
imported only when an env is made):

* ``robo_reward/MetaWorld-v0`` — Meta-World v3 on MuJoCo, any of its 50 tasks
  (:func:`robo_reward.envs.metaworld.make_metaworld_env`);
* ``robo_reward/Panda-v0`` — panda-gym on PyBullet
  (:func:`robo_reward.envs.panda.make_panda_env`).

>>> import gymnasium, robo_reward.envs
>>> env = gymnasium.make("robo_reward/MetaWorld-v0", task="drawer-open-v3",
...                      cameras=("corner", "topview"), image_size=(96, 96))
>>> obs, info = env.reset(seed=0)   # {"state": (39,), "views": {"corner": (96, 96, 3), ...}}
>>> env.get_wrapper_attr("camera_info")("corner").intrinsics   # (3, 3) K

A reward model goes on any of them (or any env that renders views) with the plain
gymnasium wrapper :class:`robo_reward.envs.reward_wrapper.RewardModelWrapper` (no SB3).

Without importing it first, ``gymnasium.make("robo_reward.envs:robo_reward/MetaWorld-v0", ...)``
imports it. Importing this package also picks MuJoCo's offscreen GL backend
(``MUJOCO_GL``: ``egl`` with a GPU, else ``osmesa``) if the user has not set it; see
:func:`robo_reward.envs.cameras.choose_mujoco_gl`.
"""

from robo_reward.errors import require

require("gymnasium", "sim", "simulation environments")

from robo_reward.envs.cameras import (
    CameraInfo,
    MultiCameraWrapper,
    choose_mujoco_gl,
    intrinsics_from_fovy,
)

ENV_IDS = {
    "robo_reward/MetaWorld-v0": "robo_reward.envs.metaworld:make_metaworld_env",
    "robo_reward/Panda-v0": "robo_reward.envs.panda:make_panda_env",
}


def _register() -> None:
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point)


choose_mujoco_gl()
_register()

__all__ = ["ENV_IDS", "CameraInfo", "MultiCameraWrapper", "choose_mujoco_gl", "intrinsics_from_fovy"]
