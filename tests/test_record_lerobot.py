"""Meta-World scripted episodes recorded into a real LeRobot v3 dataset and read back."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

RECORDER = Path(__file__).resolve().parents[1] / "datasets" / "metaworld_demos" / "record_lerobot.py"


@pytest.fixture(scope="module")
def recorder():
    pytest.importorskip("gymnasium")
    import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco loads)

    pytest.importorskip("metaworld")
    pytest.importorskip("lerobot")
    spec = importlib.util.spec_from_file_location("record_lerobot", RECORDER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


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
    episodes = json.loads((out / recorder.EPISODES_SIDECAR).read_text())["episodes"]
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
