"""The Ray Data engine on a local 2-CPU cluster gives the local engine's numbers: video
episodes, a LeRobot dataset and bags through the same pipeline; errors in Ray tasks
surface as the toolkit's own errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")

from robo_reward.cli import main
from robo_reward.data.episodes import load_manifest
from robo_reward.engine.ray_data import DecodeActor, RayEngine, ScoreActor
from robo_reward.engine.work import WorkFolder
from robo_reward.errors import InputError, ModelOutputError
from robo_reward.labeling import LabelConfig, label_episodes
from robo_reward.models import load_model

NUMBERS = ["frame_index", "timestamp_ns", "progress", "success", "uncertainty", "reward"]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def fitted(square_episodes):
    return load_model("perceptual", num_steps=3, features="pixels:12").fit(load_manifest(square_episodes, split="fit"))


def assert_same_numbers(a, b) -> None:
    left, right = pd.read_parquet(a / "scores.parquet"), pd.read_parquet(b / "scores.parquet")
    assert list(left["episode"]) == list(right["episode"])
    assert list(left.columns) == list(right.columns)
    for column in NUMBERS + [c for c in left.columns if c.startswith("progress.")]:
        np.testing.assert_allclose(left[column], right[column], rtol=1e-12, atol=1e-12, err_msg=column)


def test_ray_equals_local_on_video_episodes(cluster, square_episodes, fitted, tmp_path):
    episodes = load_manifest(square_episodes, split="eval")
    config = LabelConfig(batch_size=8, stride=2)
    local = label_episodes(fitted, episodes, config, tmp_path / "local")
    distributed = label_episodes(fitted, episodes, config, tmp_path / "ray", engine=RayEngine(num_actors=1))
    assert_same_numbers(local, distributed)
    assert (distributed / "report.html").read_text().count("data:image/jpeg") == (
        local / "report.html").read_text().count("data:image/jpeg")


def test_ray_cli_on_lerobot_dataset_and_bags(cluster, tmp_path):
    from test_bags import CAMERAS, TOPICS, write_bag
    from test_lerobot import create_dataset

    from robo_reward.data.bags import open_bags
    from robo_reward.data.lerobot import open_lerobot
    from robo_reward.types import Task

    root = create_dataset(tmp_path / "squares", episodes=2, frames=12)
    model = load_model("perceptual", num_steps=3, features="pixels:8").fit(open_lerobot(root)).save(tmp_path / "l.pt")
    base = ["label", "--lerobot", str(root), "--model", str(model), "--batch-size", "5", "--no-report"]
    assert main([*base, "--out", str(tmp_path / "l_local")]) == 0
    assert main([*base, "--out", str(tmp_path / "l_ray"), "--engine", "ray", "--ray-actors", "1"]) == 0
    assert_same_numbers(tmp_path / "l_local", tmp_path / "l_ray")
    rewards = [pd.read_parquet(next((tmp_path / run / "lerobot/data").rglob("*.parquet")))["reward.robo_reward"]
               for run in ("l_local", "l_ray")]
    np.testing.assert_array_equal(*rewards)

    bags = [write_bag(tmp_path / f"bag{i}", storage, CAMERAS, seconds=1.0 + i)
            for i, storage in enumerate(["mcap", "sqlite3"])]
    topics = dict(t.split("=", 1) for t in TOPICS[1::2])
    bag_model = load_model("perceptual", num_steps=3, features="pixels:8").fit(
        open_bags(bags, topics, Task("slide"))).save(tmp_path / "b.pt")
    base = ["label", *[a for bag in bags for a in ("--bag", str(bag))], *TOPICS, "--task", "slide", "--model",
            str(bag_model), "--batch-size", "3", "--no-report"]
    assert main([*base, "--out", str(tmp_path / "b_local")]) == 0
    assert main([*base, "--out", str(tmp_path / "b_ray"), "--engine", "ray"]) == 0
    assert_same_numbers(tmp_path / "b_local", tmp_path / "b_ray")
    for bag in ("bag0", "bag1"):
        local_files = sorted((tmp_path / "b_local/bags" / bag).iterdir())
        assert [p.name for p in local_files] == [p.name for p in sorted((tmp_path / "b_ray/bags" / bag).iterdir())]


def test_errors_in_ray_stages_are_the_toolkits_errors(cluster, square_episodes, fitted, tmp_path):
    from conftest import moving_square_frames
    from test_lerobot import create_dataset

    from robo_reward.data.lerobot import open_lerobot
    from robo_reward.data.video import write_video

    # decode stage: a LeRobot video shorter than its episodes
    root = create_dataset(tmp_path / "short", episodes=1, frames=12, cameras=("front",))
    video = next((root / "videos").rglob("*.mp4"))
    video.unlink()
    write_video(video, moving_square_frames(5, size=64), fps=10)
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"ends before frame_index 5"):
        label_episodes(fitted, open_lerobot(root), LabelConfig(), out, engine=RayEngine(num_actors=1))
    assert not out.exists() and not WorkFolder.beside(out).exists()
    # scoring stage (the actor class, called in-process): a model that returns NaN for one view
    broken = load_model("perceptual", num_steps=3, features="pixels:12")
    broken.views, broken.task_instruction = dict(fitted.views), fitted.task_instruction
    side = fitted.views["side"]
    broken.views["side"] = type(side)(**{**vars(side), "sigma": np.full_like(side.sigma, np.nan)})
    episode = load_manifest(square_episodes, split="eval")[0]
    decoded = list(DecodeActor({7: episode}, LabelConfig(batch_size=16))({"position": np.array([7])}))
    assert len(decoded) == 2 and not any(row["error"][0] for row in decoded)
    batch = {key: np.concatenate([row[key] for row in decoded]) for key in decoded[0]}
    scored = ScoreActor(lambda: broken, 16)(batch)
    error = pickle.loads(scored["error"][0])
    assert isinstance(error, ModelOutputError) and "non-finite progress" in str(error) and "'ok0'" in str(error)
    assert list(scored["position"]) == [7, 7] and scored["result"][0] == b""
