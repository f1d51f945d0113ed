"""Multi-camera gymnasium envs on real simulators: Meta-World (MuJoCo) and panda-gym (PyBullet).

Views, determinism, configuration errors, and calibration checked against the renderers'
own segmentation: a point projected with K and the extrinsics must land on the pixels
that show it.
"""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
import robo_reward.envs  # noqa: F401  (registers the ids, picks MUJOCO_GL before mujoco loads)
from robo_reward.envs.cameras import intrinsics_from_fovy
from robo_reward.errors import ConfigError, InputError

mujoco = pytest.importorskip("mujoco")
pytest.importorskip("metaworld")
pybullet = pytest.importorskip("pybullet")
pytest.importorskip("panda_gym")

MW = "robo_reward/MetaWorld-v0"
PANDA = "robo_reward/Panda-v0"


def rollout(env, seed: int, steps: int = 3):
    """First observation, then ``steps`` fixed actions: (states, views, rewards, flags)."""
    obs, _ = env.reset(seed=seed)
    states, views, rewards, flags = [obs["state"]], [obs["views"]], [], []
    action = np.full(env.action_space.shape, 0.5, dtype=np.float32)
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(action)
        states.append(obs["state"])
        views.append(obs["views"])
        rewards.append(float(reward))
        flags.append((terminated, truncated))
    return states, views, rewards, flags


@pytest.fixture(scope="module")
def mw_env():
    env = gym.make(MW, task="drawer-open-v3", cameras=("corner", "topview"), image_size=(64, 48))
    yield env
    env.close()


@pytest.fixture(scope="module")
def panda_env():
    env = gym.make(PANDA, task="PandaPush-v3", cameras=("front", "side", "top"), image_size=(48, 64))
    yield env
    env.close()


@pytest.mark.parametrize("name", ["mw_env", "panda_env"])
def test_named_views_shapes_dtype_and_space(name, request):
    env = request.getfixturevalue(name)
    height, width = (64, 48) if name == "mw_env" else (48, 64)
    cameras = env.get_wrapper_attr("camera_names")
    states, views, _, flags = rollout(env, seed=0)
    for obs_views in views:
        assert list(obs_views) == list(cameras)
        for image in obs_views.values():
            assert image.shape == (height, width, 3) and image.dtype == np.uint8
            assert image.std() > 5  # a real scene, not a blank buffer
    assert env.observation_space.contains({"state": states[-1], "views": views[-1]})
    assert all(isinstance(t, bool) and isinstance(u, bool) for t, u in flags)
    assert env.render().shape == (height, width * len(cameras), 3)


@pytest.mark.parametrize("env_id, kwargs", [
    (MW, {"task": "drawer-open-v3", "cameras": ("corner", "topview")}),
    (PANDA, {"task": "PandaPush-v3", "cameras": ("front", "corner")}),
])
def test_same_seed_same_episode_other_seed_other_scene(env_id, kwargs):
    envs = [gym.make(env_id, image_size=32, **kwargs) for _ in range(2)]
    try:
        first, second = (rollout(env, seed=7) for env in envs)
        other = rollout(envs[0], seed=8, steps=0)
    finally:
        for env in envs:
            env.close()
    for a, b in zip(first[0], second[0]):
        if isinstance(a, dict):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
        else:
            np.testing.assert_array_equal(a, b)
    for views_a, views_b in zip(first[1], second[1]):
        for camera in views_a:
            np.testing.assert_array_equal(views_a[camera], views_b[camera])
    assert first[2] == second[2]
    # another seed moves the objects: the first images differ
    assert any(not np.array_equal(first[1][0][c], other[1][0][c]) for c in first[1][0])


def test_configuration_errors_name_the_fix():
    with pytest.raises(ConfigError, match="drawer-open-v3"):
        gym.make(MW, task="drawer-opn-v3")
    with pytest.raises(ConfigError, match=r"'cornr'.*Did you mean 'corner'.*topview"):
        gym.make(MW, task="drawer-open-v3", cameras=("cornr",))
    with pytest.raises(ConfigError, match="image_size"):
        gym.make(MW, task="drawer-open-v3", image_size=(64, 0))
    with pytest.raises(ConfigError, match="PandaPush-v3"):
        gym.make(PANDA, task="PandaPushh-v3")
    with pytest.raises(ConfigError, match="front, side, top, corner"):
        gym.make(PANDA, task="PandaReach-v3", cameras=("wrist",))
    with pytest.raises(ConfigError, match="at least one"):
        gym.make(PANDA, task="PandaReach-v3", cameras=())


def test_metaworld_calibration_matches_the_rendered_pixels():
    """The drawer handle projected with K and extrinsics lands on its segmented pixels,
    for a camera that is turned upright (corner) and one that is not (topview)."""
    size = 96
    env = gym.make(MW, task="drawer-open-v3", cameras=("corner", "topview", "corner3"), image_size=size)
    obs, _ = env.reset(seed=1)
    model, data = env.unwrapped.model, env.unwrapped.data
    camera_info = env.get_wrapper_attr("camera_info")
    handle = model.geom("objGeom").id
    renderer = mujoco.Renderer(model, size, size)
    try:
        for camera in ("corner", "topview", "corner3"):
            renderer.update_scene(data, camera=camera)
            raw = renderer.render()
            upright = np.array_equal(obs["views"][camera], raw)
            assert upright or np.array_equal(obs["views"][camera], raw[::-1, ::-1])
            renderer.enable_segmentation_rendering()
            renderer.update_scene(data, camera=camera)
            segmentation = renderer.render()
            renderer.disable_segmentation_rendering()
            if not upright:
                segmentation = segmentation[::-1, ::-1]
            mask = (segmentation[..., 0] == handle) & (segmentation[..., 1] == mujoco.mjtObj.mjOBJ_GEOM)
            assert mask.sum() >= 5, camera
            info = camera_info(camera)
            assert (info.width, info.height) == (size, size)
            uv, depth = info.project(data.geom_xpos[handle])
            centroid = np.argwhere(mask).mean(axis=0)[::-1]  # (u, v)
            assert depth[0] > 0 and np.linalg.norm(uv[0] - centroid) < 2.0, camera
            # the gripper is in view, and world-up points up in the image
            tcp_uv, _ = info.project(env.unwrapped.tcp_center)
            assert np.all((tcp_uv >= 0) & (tcp_uv < size)), camera
            if camera != "topview":
                low, high = info.project(np.array([[0.0, 0.7, 0.0], [0.0, 0.7, 0.3]]))[0]
                assert high[1] < low[1] - 3, camera
            np.testing.assert_allclose(info.extrinsics[:3, :3] @ info.extrinsics[:3, :3].T, np.eye(3), atol=1e-9)
    finally:
        renderer.close()
        env.close()


def _opengl_matrices(info, near: float = 0.05, far: float = 10.0) -> tuple[list[float], list[float]]:
    """PyBullet view/projection matrices rebuilt from a CameraInfo (inverse of the rig's maths)."""
    pose = info.extrinsics.copy()
    pose[:3, :3] = pose[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    K, width, height = info.intrinsics, info.width, info.height
    projection = np.array([
        [2 * K[0, 0] / width, 0, 1 - 2 * (K[0, 2] + 0.5) / width, 0],
        [0, 2 * K[1, 1] / height, 2 * (K[1, 2] + 0.5) / height - 1, 0],
        [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0, 0, -1, 0],
    ])
    return np.linalg.inv(pose).T.ravel().tolist(), projection.T.ravel().tolist()


def test_panda_calibration_reproduces_the_image_and_finds_the_gripper(panda_env):
    obs, _ = panda_env.reset(seed=3)
    client = panda_env.unwrapped.sim.physics_client
    bodies = {client.getBodyInfo(i)[1].decode(): i for i in map(client.getBodyUniqueId, range(client.getNumBodies()))}
    end_effector = panda_env.unwrapped.robot.get_ee_position()
    camera_info = panda_env.get_wrapper_attr("camera_info")
    for camera in panda_env.get_wrapper_attr("camera_names"):
        info = camera_info(camera)
        np.testing.assert_allclose(info.intrinsics, intrinsics_from_fovy(60.0, info.width, info.height), atol=1e-6)
        view, projection = _opengl_matrices(info)
        _, _, rgba, _, segmentation = client.getCameraImage(
            info.width, info.height, viewMatrix=view, projectionMatrix=projection,
            renderer=pybullet.ER_TINY_RENDERER, shadow=1,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(info.height, info.width, 4)[..., :3]
        assert np.abs(rgb.astype(int) - obs["views"][camera]).mean() < 1.0, camera
        (u, v), = np.round(info.project(end_effector)[0]).astype(int)
        assert 0 <= u < info.width and 0 <= v < info.height, camera
        objects = np.asarray(segmentation).reshape(info.height, info.width) & ((1 << 24) - 1)
        assert (objects[max(v - 2, 0) : v + 3, max(u - 2, 0) : u + 3] == bodies["panda"]).any(), camera


def test_camera_info_unknown_name_and_render_before_reset():
    from robo_reward.envs.panda import make_panda_env

    env = make_panda_env("PandaReach-v3", cameras=("front",), image_size=16)
    try:
        with pytest.raises(InputError, match="front"):
            env.camera_info("side")
        with pytest.raises(InputError, match="reset"):
            env.render()
    finally:
        env.close()


def test_the_first_observation_after_a_reset_shows_this_episodes_objects():
    """Meta-World moves a task's objects by editing the model after its last mj_forward; the
    reset recomputes the kinematics, so the first state and frame are this episode's."""
    import mujoco

    from robo_reward.envs.metaworld import expert_policy, make_metaworld_env

    env = make_metaworld_env("drawer-open-v3", ("corner",), 32, max_path_length=200)
    obs, _ = env.reset(seed=0)
    policy = expert_policy("drawer-open-v3")
    for _ in range(60):  # open the drawer, so that a stale scene would differ
        obs, *_ = env.step(np.clip(policy.get_action(obs["state"]), -1, 1))
    obs, _ = env.reset(seed=1)
    inner = env.unwrapped
    mujoco.mj_forward(inner.model, inner.data)
    np.testing.assert_allclose(obs["state"][4:7], inner._get_pos_objects()[:3], atol=1e-9)
    np.testing.assert_array_equal(obs["views"]["corner"], env.rig.render("corner"))
    np.testing.assert_array_equal(obs["state"][:18], obs["state"][18:36])  # Meta-World's first frame stack
    env.close()


def test_the_door_experts_leave_the_observation_they_are_given_unchanged():
    """Meta-World's door-open and door-close experts shift the door in the array they read;
    `expert_policy` hands them a copy, so recorded observations keep the true door position."""
    from robo_reward.envs.metaworld import expert_policy, metaworld_task_env

    for task in ("door-open-v3", "door-close-v3", "drawer-open-v3"):
        env = metaworld_task_env(task)
        state, _ = env.reset(seed=0)
        kept = state.copy()
        action = expert_policy(task).get_action(state)
        env.close()
        np.testing.assert_array_equal(state, kept, err_msg=task)
        assert action.shape == (4,)
