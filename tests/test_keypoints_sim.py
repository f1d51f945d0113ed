"""The keypoint reward on real simulator renders: projection and unprojection against MuJoCo's
and PyBullet's own ray casts, tracking on a rendered Meta-World episode against its ground
truth, a lost point recovering or staying flagged, and the model in the gymnasium reward
wrapper, in ``robo-reward label`` on an encoded recording and in the live node."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("mujoco")
pytest.importorskip("metaworld")

import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco loads)
from robo_reward.envs.depth import DepthViews
from robo_reward.metrics import voc
from robo_reward.models.keypoints.track import PointTracker, TrackerConfig

ROOT = Path(__file__).resolve().parents[1]


def _eval_script():
    """sim/eval_keypoints.py (a script, not a package), imported once."""
    if "eval_keypoints" not in sys.modules:
        spec = importlib.util.spec_from_file_location("eval_keypoints", ROOT / "sim" / "eval_keypoints.py")
        sys.modules["eval_keypoints"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["eval_keypoints"])
    return sys.modules["eval_keypoints"]


@pytest.fixture(scope="module")
def push():
    """One successful scripted push-v3 episode at 96×96 from one camera, with depth and ground truth.

    Pixels only, its grasp has about 1 px to spare (tracked fingertip and puck 3.1 px apart at
    the closest, reach at 4 px): docs/keypoints.md, "Small images"."""
    return _eval_script().record("push-v3", 1, ("corner",), 96)[0]


def _pixels(info, step: int) -> np.ndarray:
    u, v = np.meshgrid(np.arange(2, info.width, step), np.arange(2, info.height, step))
    return np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)


def test_mujoco_unprojection_lands_where_mujoco_casts_the_ray():
    import mujoco

    from robo_reward.envs.metaworld import make_metaworld_env

    env = DepthViews(make_metaworld_env("drawer-open-v3", cameras=("corner", "topview"), image_size=48))
    try:
        env.reset(seed=1)
        obs, *_ = env.step(np.zeros(4, dtype=np.float32))
        model, data = env.unwrapped.model, env.unwrapped.data
        for view in ("corner", "topview"):
            info = env.get_wrapper_attr("camera_info")(view)
            uv = _pixels(info, 5)
            depth = obs["depth"][view][uv[:, 1].astype(int), uv[:, 0].astype(int)]
            keep = np.isfinite(depth)
            world = info.unproject(uv[keep], depth[keep])
            back, z = info.project(world)
            np.testing.assert_allclose(back, uv[keep], atol=1e-4)
            np.testing.assert_allclose(z, depth[keep], rtol=1e-9)
            origin = info.extrinsics[:3, 3]
            misses = []
            for point in world:
                direction = (point - origin) / np.linalg.norm(point - origin)
                distance = mujoco.mj_ray(model, data, origin, direction, np.array([1, 1, 1, 0, 0, 0], np.uint8), 1,
                                         -1, np.zeros(1, np.int32))
                misses.append(np.linalg.norm(origin + distance * direction - point))
            assert keep.sum() > 50 and np.median(misses) < 0.003 and np.percentile(misses, 90) < 0.01, view
    finally:
        env.close()


def _pybullet_misses(shift: tuple[float, float]) -> list[float]:
    """How far the points unprojected from a PyBullet depth render lie from where PyBullet's
    ray cast through the same pixel centres hits (metres), with the rig's principal point
    moved by ``shift`` pixels."""
    from dataclasses import replace

    pytest.importorskip("panda_gym")
    from robo_reward.envs.panda import make_panda_env

    env = DepthViews(make_panda_env("PandaPush-v3", cameras=("front", "side"), image_size=48))
    try:
        obs, _ = env.reset(seed=0)
        client = env.unwrapped.sim.physics_client
        misses = []
        for view in ("front", "side"):
            info = env.get_wrapper_attr("camera_info")(view)
            intrinsics = info.intrinsics.copy()
            intrinsics[:2, 2] += shift
            info = replace(info, intrinsics=intrinsics)
            uv = _pixels(info, 5)
            depth = obs["depth"][view][uv[:, 1].astype(int), uv[:, 0].astype(int)]
            keep = np.isfinite(depth)
            world = info.unproject(uv[keep], depth[keep])
            np.testing.assert_allclose(info.project(world)[0], uv[keep], atol=1e-4)
            origin = info.extrinsics[:3, 3]
            ends = origin + 3.0 * (world - origin) / np.linalg.norm(world - origin, axis=1, keepdims=True)
            hits = client.rayTestBatch([origin.tolist()] * len(world), ends.tolist())
            misses += [np.linalg.norm(np.array(hit[3]) - point) for hit, point in zip(hits, world) if hit[0] >= 0]
        return misses
    finally:
        env.close()


@pytest.mark.xfail(strict=True, reason="PyBulletCameraRig.info puts the principal point half a pixel off "
                                       "TinyRenderer's pixel centres (robo_reward/envs/panda.py)")
def test_pybullet_unprojection_lands_where_pybullet_casts_the_ray():
    misses = _pybullet_misses((0.0, 0.0))
    assert np.median(misses) < 0.003 and np.percentile(misses, 90) < 0.01


def test_pybullet_unprojection_lands_on_the_ray_cast_with_the_principal_point_on_tinyrenderer_centres():
    misses = _pybullet_misses((0.5, -0.5))  # cx = (1 − P₀₂)·W/2, cy = (1 + P₁₂)·H/2 − 1
    assert len(misses) > 60 and np.median(misses) < 0.003 and np.percentile(misses, 90) < 0.01


def test_tracking_on_a_rendered_episode_follows_the_ground_truth(push):
    errors = _eval_script().tracking_errors(push, _default_config())["corner"]
    assert len(errors["error"]) > 30
    assert np.median(errors["error"]) < 3.0 and np.percentile(errors["error"], 95) < 5.0  # the acceptance bound
    assert errors["lost"].mean() < 0.2


def _default_config():
    from robo_reward.models.keypoints.model import KeypointConfig

    return KeypointConfig()


def _occluded(frames: np.ndarray, uv: np.ndarray, hidden: range) -> np.ndarray:
    out = frames.copy()
    u, v = np.round(uv).astype(int)
    for t in hidden:
        out[t, max(v - 6, 0):v + 7, max(u - 6, 0):u + 7] = (128, 128, 128)
    return out


def test_the_ground_truth_gripper_is_marked_on_a_finger_pad_never_on_the_object_it_holds(push):
    import mujoco

    from robo_reward.envs.keypoints import keypoint_bodies
    from robo_reward.envs.metaworld import make_metaworld_env

    held = push.specs["reversed"].keypoints  # the last frame: the puck between the fingers
    assert held["gripper"].pixels["corner"] != held["object"].pixels["corner"]
    env = make_metaworld_env("push-v3", cameras=("corner",), image_size=48)
    try:
        env.reset(seed=0)
        model = env.unwrapped.model
        bodies = keypoint_bodies(env)
        assert {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in bodies["gripper"]} == {"leftpad",
                                                                                                      "rightpad"}
        assert mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, bodies["object"][0]) == "obj"
    finally:
        env.close()


def test_a_hidden_point_is_flagged_lost_and_recovers_when_it_shows_again(push):
    truth = push.truth["forward"]["corner"]
    start = 5
    frames = _occluded(push.views["corner"][start:start + 20], truth[start], range(6, 11))
    tracker = PointTracker(frames[0], truth[start:start + 1], TrackerConfig())
    states = [tracker.update(image) for image in frames[1:]]
    flagged = [s.lost[0] for s in states[5:10]]  # frames 6–10 are covered
    assert sum(flagged) >= 4 and all(s.confidence[0] == 0 for s, lost in zip(states[5:10], flagged) if lost)
    after = states[11:]
    assert not any(s.lost[0] for s in after) and any(s.recovered[0] for s in states[10:13])
    assert np.linalg.norm(after[-1].uv[0] - truth[start + 19]) < 2.0


def test_a_point_that_never_shows_again_stays_flagged(push):
    truth = push.truth["forward"]["corner"]
    frames = _occluded(push.views["corner"][:12], truth[0], range(3, 12))
    tracker = PointTracker(frames[0], truth[:1], TrackerConfig())
    states = [tracker.update(image) for image in frames[1:]]
    assert all(s.lost[0] and s.confidence[0] == 0 for s in states[3:])
    np.testing.assert_allclose(states[-1].uv[0], states[2].uv[0])  # it keeps its last position


def test_the_keypoint_reward_in_the_gymnasium_wrapper_with_depth_state_and_ground_truth():
    from robo_reward.envs.keypoints import GroundTruthKeypoints
    from robo_reward.envs.metaworld import expert_policy, make_metaworld_env
    from robo_reward.envs.reward_wrapper import RewardModelWrapper
    from robo_reward.models import load_model
    from robo_reward.shaping import KAGI_DENSE_WEIGHT
    from robo_reward.types import Task

    env = GroundTruthKeypoints(DepthViews(make_metaworld_env("push-v3", cameras=("corner", "corner4"), image_size=96)),
                               "push the puck", "push-v3")
    wrapped = RewardModelWrapper(env, load_model("keypoint"), Task("push the puck"), gamma=0.99, reward="kagi")
    try:
        obs, info = wrapped.reset(seed=3)
        assert wrapped.task.keypoints.keypoints["gripper"].state == (0, 3)
        policy, progress, rewards, successes = expert_policy("push-v3"), [info["progress"]], [], []
        for _ in range(120):
            obs, reward, _, _, info = wrapped.step(policy.get_action(obs["state"]))
            progress.append(info["progress"])
            rewards.append(reward)
            successes.append(info["success"])
            if info["success"]:
                break
        assert successes[-1] == 1.0 and rewards[-1] == 1.0 and voc(np.array(progress)) > 0.9
        np.testing.assert_allclose(rewards[:-1], KAGI_DENSE_WEIGHT * np.array(progress[1:-1]))
        first = wrapped.task
        wrapped.reset(seed=4)
        assert wrapped.task is not first  # each episode its own ground truth
    finally:
        wrapped.close()


def _spec_file(push, folder: Path, frame: int | None = None) -> Path:
    """The episode's ground-truth pixels as a person would mark them (no calibration)."""
    import yaml

    spec = push.specs["forward"]
    data = {"keypoints": {name: {"pixels": {v: list(map(float, uv)) for v, uv in kp.pixels.items()},
                                 **({} if kp.track else {"track": False})} for name, kp in spec.keypoints.items()},
            "waypoints": [w.to_dict() | {"threshold_px": 4} for w in spec.waypoints]}
    if frame is not None:
        data["frame"] = frame
    path = folder / "push.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_label_scores_a_recording_with_a_spec_file(push, tmp_path, capsys):
    import pandas as pd

    from robo_reward.cli import main
    from robo_reward.data.video import write_video

    video = write_video(tmp_path / "push_corner.mp4", push.views["corner"], 20.0)
    spec = _spec_file(push, tmp_path)
    out = tmp_path / "run"
    assert main(["label", "--view", f"corner={video}", "--task", "push the puck", "--model", "keypoint",
                 "--option", f"keypoints={spec}", "--reward", "kagi", "--out", str(out)]) == 0
    table = pd.read_parquet(out / "scores.parquet")
    assert len(table) == len(push.state) and voc(table["progress"].to_numpy()) > 0.9
    assert table["success"].iloc[-1] == 1.0 and table["reward"].iloc[-2] == 1.0
    marked = _spec_file(push, tmp_path, frame=0)
    capsys.readouterr()
    assert main(["label", "--view", f"corner={video}", "--task", "push", "--model", "keypoint", "--option",
                 f"keypoints={marked}", "--score-reversed", "--out", str(tmp_path / "reversed")]) == 1
    assert "marks frame 0, but this episode starts at frame" in capsys.readouterr().err
    marked.write_text(marked.read_text().replace("mover: object", "mover: objet"))
    assert main(["label", "--view", f"corner={video}", "--task", "push", "--model", "keypoint", "--option",
                 f"keypoints={marked}", "--out", str(tmp_path / "bad")]) == 1
    assert "push.yaml: waypoints[1].mover: unknown keypoint 'objet'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_the_live_node_scores_camera_messages_with_the_keypoint_model(push, tmp_path):
    from test_ros2_node import InProcessTransport

    from robo_reward.interfaces.messages import image_message
    from robo_reward.models import load_model
    from robo_reward.ros2.node import NodeConfig, RewardNode

    model = load_model("keypoint", keypoints=str(_spec_file(push, tmp_path)))
    transport = InProcessTransport()
    cameras = {"corner": "/cam/corner/image_raw"}
    node = RewardNode(transport, model, NodeConfig.build(cameras, "push the puck", "keypoint"))
    for k, image in enumerate(push.views["corner"]):
        transport.deliver(cameras["corner"], image_message(cameras["corner"], image, 1_000 + k, "corner"))
        while node.stream.process(timeout_s=0.0):
            pass
    rewards = transport.sent["/robo_reward/reward"]
    assert len(rewards) == len(push.state) and all(r.valid for r in rewards)
    assert voc(np.array([r.progress for r in rewards])) > 0.9
