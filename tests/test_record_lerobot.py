"""Scripted Meta-World and panda-gym episodes recorded into a real LeRobot v3 dataset and read back."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_two_tiny_episodes_round_trip_through_lerobot(recorder, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out = recorder.main([
        "--out", str(tmp_path / "demos"), "--repo-id", "test/metaworld_demos", "--tasks", "drawer-open-v3",
        "--cameras", "corner", "topview", "--size", "32", "--successes", "1", "--failures", "1",
        "--tail", "2", "--vcodec", "h264",
    ])
    dataset = LeRobotDataset("test/metaworld_demos", root=out, video_backend="pyav")
    assert dataset.num_episodes == 2 and dataset.fps == 20
    assert list(dataset.meta.tasks.index) == ["open the drawer"]
    sidecar = json.loads((out / recorder.EPISODES_SIDECAR).read_text())
    assert (sidecar["backend"], sidecar["action_repeat"]) == ("metaworld", 1)
    episodes = sidecar["episodes"]
    assert [e["outcome"] for e in episodes] == ["success", "failure"]

    index = np.asarray(dataset.hf_dataset["episode_index"])
    success = np.asarray(dataset.hf_dataset["next.success"]).ravel()
    done = np.asarray(dataset.hf_dataset["next.done"]).ravel()
    first = np.flatnonzero(index == 0)
    assert success[first][-3:].all() and not success[first][:-3].any()  # ends 2 steps after success
    assert episodes[0]["success_frame"] == len(first) - 3
    assert not success[index == 1].any()
    assert [done[index == e].nonzero()[0].tolist() for e in (0, 1)] == [[len(first) - 1], [(index == 1).sum() - 1]]

    frame = dataset[int(first[-1])]
    for camera in ("corner", "topview"):
        image = frame[f"observation.images.{camera}"]
        assert tuple(image.shape) == (3, 32, 32) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert float(image.std()) > 0.02  # a decoded scene, not a blank frame
    assert tuple(frame["observation.state"].shape) == (4,) and tuple(frame["action"].shape) == (4,)
    assert tuple(frame["observation.environment_state"].shape) == (39,)
    assert frame["task"] == "open the drawer" and bool(frame["next.done"])
    # the state is Meta-World's: hand position first
    np.testing.assert_allclose(frame["observation.state"].numpy(), frame["observation.environment_state"].numpy()[:4])
    assert not (out / "images").exists()


def _columns(dataset, *names):
    """Per-frame columns of ``dataset`` as float64 arrays, (frames, width) each."""
    return [np.asarray(dataset.hf_dataset[name], dtype=np.float64).reshape(dataset.num_frames, -1) for name in names]


def test_action_repeat_records_one_frame_per_agent_step(recorder, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from robo_reward.envs.metaworld import metaworld_task_env, scripted_rollout

    task = "drawer-open-v3"
    out = recorder.main([
        "--out", str(tmp_path / "demos"), "--repo-id", "test/repeat", "--tasks", task, "--cameras", "corner",
        "--size", "32", "--successes", "1", "--tail", "2", "--action-repeat", "2", "--vcodec", "h264",
    ])
    sidecar = json.loads((out / recorder.EPISODES_SIDECAR).read_text())
    assert (sidecar["backend"], sidecar["action_repeat"]) == ("metaworld", 2)
    (episode,) = sidecar["episodes"]
    dataset = LeRobotDataset("test/repeat", root=out, video_backend="pyav")
    actions, rewards, states, success = _columns(
        dataset, "action", "next.reward", "observation.environment_state", "next.success")
    assert episode["success_frame"] == dataset.num_frames - 3 and success[-3:].all()

    env = metaworld_task_env(task, max_path_length=1000)
    try:
        plain = list(scripted_rollout(env, task, {"kind": "expert"}, episode["seed"], 300, stop_on_success=True))
        assert abs(2 * (episode["success_frame"] + 1) - len(plain)) <= 3  # half the simulator steps
        state, _ = env.reset(seed=episode["seed"])
        for action, reward, recorded in zip(actions, rewards, states):
            np.testing.assert_allclose(recorded, state, rtol=1e-6, atol=1e-6)
            total = 0.0
            for _ in range(2):
                state, simulator_reward, _, _, _ = env.step(action.astype(np.float32))
                total += simulator_reward
            np.testing.assert_allclose(reward[0], total, rtol=1e-5)
    finally:
        env.close()


def test_panda_reach_round_trip_through_lerobot(recorder, tmp_path):
    import gymnasium as gym
    from gymnasium import spaces
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    task = "PandaReach-v3"
    out = recorder.main([
        "--out", str(tmp_path / "panda"), "--repo-id", "test/panda", "--backend", "panda", "--tasks", task,
        "--cameras", "front", "--size", "32", "--successes", "1", "--failures", "1", "--vcodec", "h264",
    ])
    sidecar = json.loads((out / recorder.EPISODES_SIDECAR).read_text())
    assert (sidecar["backend"], sidecar["action_repeat"]) == ("panda", 1)
    assert [e["outcome"] for e in sidecar["episodes"]] == ["success", "failure"]
    dataset = LeRobotDataset("test/panda", root=out)
    assert dataset.meta.robot_type == "panda"
    assert dataset.meta.features["observation.state"]["names"] == ["ee_x", "ee_y", "ee_z"]
    assert list(dataset.meta.tasks.index) == ["move the gripper to the target"]
    index = np.asarray(dataset.hf_dataset["episode_index"])
    actions, proprio, states, success, done = _columns(
        dataset, "action", "observation.state", "observation.environment_state", "next.success", "next.done")
    assert states.shape[1] == 12 and actions.shape[1] == 3
    np.testing.assert_allclose(proprio, states[:, 6:9])  # flattened in key order: observation is last

    env = gym.make(task)
    try:
        for number, episode in enumerate(sidecar["episodes"]):
            frames = np.flatnonzero(index == number)
            assert done[frames].ravel().tolist() == [False] * (len(frames) - 1) + [True]
            obs, _ = env.reset(seed=episode["seed"])
            for frame in frames:
                np.testing.assert_allclose(states[frame], spaces.flatten(env.observation_space, obs), atol=1e-6)
                obs, _, terminated, _, info = env.step(actions[frame].astype(np.float32))
                assert bool(success[frame, 0]) == info["is_success"]
            if episode["outcome"] == "success":
                assert terminated and success[frames[-1]] and not success[frames[:-1]].any()
            else:
                assert not success[frames].any() and len(frames) == env.spec.max_episode_steps
    finally:
        env.close()
    image = dataset[int(frames[-1])]["observation.images.front"]
    assert tuple(image.shape) == (3, 32, 32) and float(image.std()) > 0.02


def test_push_expert_pushes_the_cube_to_the_goal_on_most_seeds(recorder):
    import gymnasium as gym

    from robo_reward.envs.panda import push_expert

    env = gym.make("PandaPush-v3")
    successes = 0
    try:
        for seed in range(10):
            obs, _ = env.reset(seed=seed)
            terminated = truncated = False
            while not (terminated or truncated):
                obs, _, terminated, truncated, _ = env.step(push_expert(obs))
            successes += terminated
    finally:
        env.close()
    assert successes >= 8


def test_panda_refuses_what_it_cannot_script(recorder, tmp_path):
    from robo_reward.errors import ConfigError

    with pytest.raises(ConfigError, match="partial"):
        recorder.RecordConfig(backend="panda", tasks=("PandaReach-v3",), partials=1)
    config = recorder.RecordConfig(backend="panda", tasks=("PandaStack-v3",), cameras=("front",))
    with pytest.raises(ConfigError, match="PandaStack-v3"):
        recorder.record_dataset(config, tmp_path / "stack", "test/stack")
    assert not (tmp_path / "stack").exists()
