"""Labeling LeRobot v3.0 datasets: a real dataset written to disk with LeRobot's own
``LeRobotDataset.create`` (two cameras), labeled, and read back with LeRobot's loader;
the sidecar; image-feature datasets; bad input; the real SO-101 dataset in ../shared/data."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("lerobot")

from conftest import moving_square_frames
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from robo_reward.cli import main
from robo_reward.data import lerobot as lerobot_module
from robo_reward.data.lerobot import open_lerobot
from robo_reward.models import load_model
from robo_reward.types import Sampling

SIZE = 64
CAMERA = {"shape": (SIZE, SIZE, 3), "names": ["height", "width", "channels"]}


def create_dataset(root: Path, episodes: int = 2, frames: int = 20, dtype: str = "video",
                   cameras: tuple[str, ...] = ("front", "wrist"), fps: int = 10, ground_truth: bool = False) -> Path:
    """A LeRobot dataset of a square sliding right, seen by ``cameras``, written by LeRobot itself.

    ``ground_truth`` adds the dataset's own ``next.reward``/``next.done``/``next.truncated``/``next.success``
    (episode 0 terminates on success, the others are truncated).
    """
    features = {f"observation.images.{cam}": {"dtype": dtype, **CAMERA} for cam in cameras}
    features["observation.state"] = {"dtype": "float32", "shape": (2,), "names": None}
    if ground_truth:
        features |= {"next.reward": {"dtype": "float32", "shape": (1,), "names": None}}
        features |= {name: {"dtype": "bool", "shape": (1,), "names": None}
                     for name in ("next.done", "next.truncated", "next.success")}
    dataset = LeRobotDataset.create("test/squares", fps=fps, features=features, root=root,
                                    use_videos=dtype == "video", vcodec="h264")
    for episode in range(episodes):
        views = {cam: moving_square_frames(frames + episode, size=SIZE, color=(230, 40 + 90 * i, 40))
                 for i, cam in enumerate(cameras)}
        for t in range(frames + episode):
            frame = {f"observation.images.{cam}": views[cam][t] for cam in cameras}
            frame |= {"observation.state": np.array([t, episode], dtype=np.float32), "task": "slide the square right"}
            if ground_truth:
                last = t == frames + episode - 1
                frame |= {"next.reward": np.array([0.25 * t - episode], dtype=np.float32),
                          "next.done": np.array([last]), "next.truncated": np.array([last and episode > 0]),
                          "next.success": np.array([t >= (frames + episode) // 2])}
            dataset.add_frame(frame)
        dataset.save_episode()
    dataset.finalize()
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def squares(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset root, a perceptual model fitted on its episodes)."""
    folder = tmp_path_factory.mktemp("lerobot")
    root = create_dataset(folder / "squares")
    model = load_model("perceptual", num_steps=3, features="pixels:12").fit(open_lerobot(root))
    return root, model.save(folder / "squares.pt")


def test_episodes_follow_the_dataset(squares):
    root, _ = squares
    episodes = open_lerobot(root)
    assert [e.name for e in episodes] == ["episode_000000", "episode_000001"]
    assert episodes[1].view_names == ["front", "wrist"] and episodes[1].task.instruction == "slide the square right"
    batch = next(episodes[1].iter_batches(32, Sampling()))
    assert batch.views["front"].shape == (21, SIZE, SIZE, 3)
    np.testing.assert_array_equal(batch.frame_index, np.arange(21))
    # LeRobot stores float32 seconds: stamps are exact to float32 precision (< 1 µs here)
    np.testing.assert_allclose(batch.timestamps_ns, np.arange(21) * 100_000_000, atol=1_000)
    # the frames are the ones LeRobot's own loader returns (episode 1 starts at global index 20)
    loaded = LeRobotDataset("test/squares", root=root, video_backend="pyav")
    for frame in (0, 13, 20):
        item = loaded[20 + frame]
        for view in ("front", "wrist"):
            reference = (item[f"observation.images.{view}"].permute(1, 2, 0).numpy() * 255).round()
            np.testing.assert_array_equal(batch.views[view][frame], reference.astype(np.uint8))


def data_table(root: Path) -> pa.Table:
    """Every row of a LeRobot dataset's data files, in file order."""
    return pa.concat_tables([pq.read_table(path) for path in sorted((root / "data").glob("*/*.parquet"))])


def assert_estimates(table: pa.Table, scores: pd.DataFrame) -> None:
    """The estimate columns hold scores.parquet's values (as float32), row by row."""
    columns = table.to_pandas()
    names = {"reward": "reward.robo_reward", "progress": "progress.robo_reward",
             "success": "success_probability.robo_reward"}
    for index, (_, expected) in enumerate(scores.groupby("episode", sort=True)):
        rows = columns[columns.episode_index == index]
        np.testing.assert_array_equal(rows["frame_index"], expected["frame_index"])
        for score, feature in names.items():
            np.testing.assert_array_equal(rows[feature], expected[score].to_numpy(np.float32))


def assert_episode_ends(table: pa.Table, name: str) -> None:
    """``name`` is True exactly on each episode's last frame."""
    columns = table.select(["episode_index", "frame_index", name]).to_pandas()
    for _, rows in columns.groupby("episode_index"):
        np.testing.assert_array_equal(rows[name], rows["frame_index"] == rows["frame_index"].max())


@pytest.fixture(scope="module")
def labeled_squares(squares, tmp_path_factory) -> Path:
    """The output folder of labeling the squares dataset (which has no next.* columns) with the defaults."""
    root, model = squares
    before = tree_digest(root)
    out = tmp_path_factory.mktemp("labeled") / "run"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--out", str(out), "--batch-size", "8"]) == 0
    assert tree_digest(root) == before, "the input dataset must not change"
    return out


def test_label_writes_new_dataset_read_back_by_lerobot(squares, labeled_squares):
    root, _ = squares
    out = labeled_squares
    scores = pd.read_parquet(out / "scores.parquet")
    labeled = LeRobotDataset("test/squares_rewards", root=out / "lerobot", video_backend="pyav")
    added = {"reward.robo_reward", "progress.robo_reward", "success_probability.robo_reward", "next.done",
             "next.truncated"}
    assert set(labeled.features) == set(LeRobotDataset("test/squares", root=root).features) | added
    assert labeled.num_episodes == 2 and labeled.num_frames == 41
    table = data_table(out / "lerobot")
    original = data_table(root)
    assert table.select(original.column_names).equals(original), "the dataset's own columns must not change"
    assert_estimates(table, scores)
    assert_episode_ends(table, "next.done")  # LeRobot's convention, whatever the ending
    assert_episode_ends(table, "next.truncated")  # recordings end by truncation (--terminal truncated)
    item = labeled[25]
    assert item["observation.images.front"].shape == (3, SIZE, SIZE)
    assert item["reward.robo_reward"].dtype.is_floating_point
    sidecar = pd.read_parquet(out / "progress.parquet")
    assert list(sidecar.columns[:2]) == ["episode_index", "frame_index"] and len(sidecar) == 41
    np.testing.assert_allclose(sidecar["progress"], scores["progress"])
    assert scores.groupby("episode")["progress"].apply(lambda p: p.iloc[-1] - p.iloc[0]).min() > 0.5


def test_written_dataset_reads_with_lerobots_default_video_backend(labeled_squares):
    """LeRobot's default decoder (torchcodec, needing FFmpeg's shared libraries: scripts/install.sh) reads it."""
    labeled = LeRobotDataset("test/squares_rewards", root=labeled_squares / "lerobot")
    reference = LeRobotDataset("test/squares_rewards", root=labeled_squares / "lerobot", video_backend="pyav")
    for index in (0, 25, 40):
        item, expected = labeled[index], reference[index]
        for view in ("front", "wrist"):
            frame = item[f"observation.images.{view}"]
            assert frame.shape == (3, SIZE, SIZE)
            np.testing.assert_allclose(frame.numpy(), expected[f"observation.images.{view}"].numpy(), atol=2 / 255)
        assert float(item["reward.robo_reward"]) == float(expected["reward.robo_reward"])


def test_ground_truth_columns_are_kept_and_replace_reward_is_opt_in(squares, tmp_path):
    _, model = squares
    root = create_dataset(tmp_path / "truth", episodes=2, frames=12, ground_truth=True)
    before = tree_digest(root)
    original = data_table(root)
    base = ["label", "--lerobot", str(root), "--model", str(model), "--no-report"]
    assert main([*base, "--out", str(tmp_path / "kept")]) == 0
    assert main([*base, "--out", str(tmp_path / "replaced"), "--replace-reward"]) == 0
    assert tree_digest(root) == before, "the input dataset must not change"
    kept = data_table(tmp_path / "kept/lerobot")
    assert kept.select(original.column_names).equals(original), "the dataset's own columns must not change"
    assert_estimates(kept, pd.read_parquet(tmp_path / "kept/scores.parquet"))
    replaced = data_table(tmp_path / "replaced/lerobot")
    assert_estimates(replaced, pd.read_parquet(tmp_path / "replaced/scores.parquet"))
    assert not replaced.column("next.reward").equals(original.column("next.reward"))
    np.testing.assert_array_equal(replaced.column("next.reward"), replaced.column("reward.robo_reward"))
    for name in [n for n in original.column_names if n != "next.reward"]:  # next.success stays ground truth
        assert replaced.column(name).equals(original.column(name)), name


ADDED = ("reward.robo_reward", "progress.robo_reward", "success_probability.robo_reward", "next.done",
         "next.truncated")
STATS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")  # LeRobot 0.4.4's


def video_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / "videos").rglob("*.mp4"))


def assert_stats(root: Path, features: tuple[str, ...]) -> None:
    """meta/stats.json and meta/episodes hold LeRobot-format statistics of ``features``'s values, once each."""
    table = data_table(root).to_pandas()
    stats = json.loads((root / "meta/stats.json").read_text())
    episodes = pa.concat_tables([pq.read_table(p) for p in sorted((root / "meta/episodes").glob("*/*.parquet"))])
    for name in features:
        values = table[name].to_numpy(np.float64)
        assert list(stats[name]) == list(STATS), name
        assert stats[name]["count"] == [len(values)]
        assert stats[name]["min"] == [values.min().astype(table[name].dtype).item()]
        assert stats[name]["max"] == [values.max().astype(table[name].dtype).item()]
        np.testing.assert_allclose(stats[name]["mean"], [values.mean()], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stats[name]["std"], [values.std()], rtol=1e-4, atol=1e-7)
        columns = [c for c in episodes.column_names if c.startswith(f"stats/{name}/")]
        assert columns == [f"stats/{name}/{stat}" for stat in STATS], columns  # replaced, never duplicated
        for row in episodes.select(["episode_index", *columns]).to_pylist():
            rows = values[table.episode_index.to_numpy() == row["episode_index"]]
            assert row[f"stats/{name}/count"] == [len(rows)]
            np.testing.assert_allclose(row[f"stats/{name}/mean"], [rows.mean()], rtol=1e-5, atol=1e-7)


def test_new_dataset_links_the_videos_and_has_statistics(squares, labeled_squares):
    """The videos are hard links of the input's (same inode); meta/ is the input's plus the new features."""
    root, _ = squares
    target = labeled_squares / "lerobot"
    assert video_files(target) == video_files(root) and len(video_files(root)) == 2
    for relative in video_files(root):
        assert os.stat(target / relative).st_ino == os.stat(root / relative).st_ino, relative
    assert (target / "meta/tasks.parquet").read_bytes() == (root / "meta/tasks.parquet").read_bytes()
    info, original = (json.loads((r / "meta/info.json").read_text()) for r in (target, root))
    assert {k: v for k, v in info.items() if k != "features"} == {k: v for k, v in original.items() if k != "features"}
    assert list(info["features"]) == [*original["features"], *ADDED]
    assert info["features"]["reward.robo_reward"] == {"dtype": "float32", "shape": [1], "names": None}
    assert info["features"]["next.done"] == {"dtype": "bool", "shape": [1], "names": None}
    stats, original_stats = (json.loads((r / "meta/stats.json").read_text()) for r in (target, root))
    assert {k: v for k, v in stats.items() if k not in ADDED} == original_stats
    assert_stats(target, ADDED)
    episodes, original_episodes = (pq.read_table(r / "meta/episodes/chunk-000/file-000.parquet") for r in (target, root))
    assert episodes.select(original_episodes.column_names).equals(original_episodes)
    labeled = LeRobotDataset("test/squares_rewards", root=target, video_backend="pyav")
    assert set(ADDED) <= set(labeled.meta.stats)
    assert float(labeled[19]["next.done"]) == 1.0 and float(labeled[18]["next.done"]) == 0.0


def test_relabeling_replaces_statistics_and_links_through(squares, labeled_squares, tmp_path):
    """Relabeling a labeled dataset (whose videos are links) links the same files again and replaces the stats."""
    root, model = squares
    source = labeled_squares / "lerobot"
    before = tree_digest(source)
    out = tmp_path / "again"
    assert main(["label", "--lerobot", str(source), "--model", str(model), "--out", str(out), "--no-report",
                 "--replace-reward", "--reward", "progress"]) == 0
    assert tree_digest(source) == before, "the input dataset must not change"
    for relative in video_files(root):
        assert os.stat(out / "lerobot" / relative).st_ino == os.stat(root / relative).st_ino, relative
    assert_stats(out / "lerobot", (*ADDED, "next.reward"))
    stats, previous = (json.loads((r / "meta/stats.json").read_text()) for r in (out / "lerobot", source))
    assert stats["next.done"] == previous["next.done"]  # kept, like the column
    assert stats["reward.robo_reward"] != previous["reward.robo_reward"]  # --reward progress this time
    labeled = LeRobotDataset("test/squares_rewards", root=out / "lerobot", video_backend="pyav")
    assert float(labeled[3]["next.reward"]) == float(labeled[3]["reward.robo_reward"])


def test_link_tree_copies_where_linking_fails(tmp_path, monkeypatch):
    source = tmp_path / "in"
    (source / "a/b").mkdir(parents=True)
    (source / "a/b/file-000.mp4").write_bytes(b"video")
    (source / "top.mp4").write_bytes(b"other")
    lerobot_module._link_tree(source, tmp_path / "linked")
    assert os.stat(tmp_path / "linked/a/b/file-000.mp4").st_ino == os.stat(source / "a/b/file-000.mp4").st_ino

    def refuse(*args, **kwargs):
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(lerobot_module.os, "link", refuse)
    lerobot_module._link_tree(source, tmp_path / "copied")
    for name in ("a/b/file-000.mp4", "top.mp4"):
        copied = tmp_path / "copied" / name
        assert copied.read_bytes() == (source / name).read_bytes()
        assert os.stat(copied).st_ino != os.stat(source / name).st_ino
    lerobot_module._link_tree(tmp_path / "absent", tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_image_feature_dataset_is_written(squares, tmp_path):
    """Embedded images stay in the data files as they are; LeRobot reads the new dataset's frames."""
    _, model = squares
    root = create_dataset(tmp_path / "images", episodes=2, frames=6, dtype="image")
    before = tree_digest(root)
    out = tmp_path / "run"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--out", str(out), "--no-report"]) == 0
    assert tree_digest(root) == before, "the input dataset must not change"
    original, table = data_table(root), data_table(out / "lerobot")
    assert table.select(original.column_names).equals(original)
    assert_estimates(table, pd.read_parquet(out / "scores.parquet"))
    assert_stats(out / "lerobot", ADDED)
    labeled = LeRobotDataset("test/squares_rewards", root=out / "lerobot")
    reference = LeRobotDataset("test/squares", root=root)
    for index in (0, 8, 12):
        for view in ("front", "wrist"):
            key = f"observation.images.{view}"
            np.testing.assert_array_equal(labeled[index][key].numpy(), reference[index][key].numpy())
        assert float(labeled[index]["progress.robo_reward"]) == table.column("progress.robo_reward")[index].as_py()


def test_replace_reward_without_next_reward_and_relabeling(labeled_squares, squares, tmp_path, capsys):
    """A dataset without next.reward gets one only with --replace-reward; a labeled dataset can be relabeled."""
    _, model = squares
    root = labeled_squares / "lerobot"
    before = tree_digest(root)
    original = data_table(root)
    out = tmp_path / "again"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--out", str(out), "--no-report",
                 "--replace-reward", "--reward", "progress"]) == 0
    assert tree_digest(root) == before, "the input dataset must not change"
    table = data_table(out / "lerobot")
    scores = pd.read_parquet(out / "scores.parquet")
    assert_estimates(table, scores)  # the earlier run's estimates are replaced, not duplicated
    assert sorted(table.column_names) == sorted([*original.column_names, "next.reward"])
    np.testing.assert_array_equal(table.column("next.reward"), scores["reward"].to_numpy(np.float32))
    for name in ("next.done", "next.truncated", "observation.state"):
        assert table.column(name).equals(original.column(name)), name
    refused = tmp_path / "refused"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--out", str(refused), "--write", "sidecar",
                 "--replace-reward"]) == 2
    assert "--replace-reward" in capsys.readouterr().err and not refused.exists()


def test_sidecar_only_and_strided_labels(squares, tmp_path, capsys):
    root, model = squares
    out = tmp_path / "side"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--write", "sidecar", "--stride", "2",
                 "--out", str(out), "--no-report"]) == 0
    sidecar = pd.read_parquet(out / "progress.parquet")
    assert not (out / "lerobot").exists()
    np.testing.assert_array_equal(sidecar["episode_index"], [0] * 10 + [1] * 11)
    np.testing.assert_array_equal(sidecar["frame_index"], list(range(0, 20, 2)) + list(range(0, 21, 2)))
    refused = tmp_path / "refused"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--stride", "2", "--out", str(refused)]) == 2
    assert "needs a score for every frame" in capsys.readouterr().err
    assert not refused.exists() and not any(p.name.startswith(".refused") for p in tmp_path.iterdir())


def test_image_features_are_views(tmp_path):
    root = create_dataset(tmp_path / "images", episodes=1, frames=8, dtype="image", cameras=("top",))
    (episode,) = open_lerobot(root)
    assert episode.camera_dtypes == {"observation.images.top": "image"}
    batch = next(episode.iter_batches(16, Sampling(stride=3)))
    np.testing.assert_array_equal(batch.frame_index, [0, 3, 6])
    np.testing.assert_array_equal(batch.views["top"], moving_square_frames(8, size=SIZE)[[0, 3, 6]])


def test_bad_datasets_are_refused(tmp_path, squares, capsys):
    _, model = squares
    out = tmp_path / "out"
    no_camera = tmp_path / "state_only"
    dataset = LeRobotDataset.create("test/state", fps=10, root=no_camera, use_videos=False,
                                    features={"observation.state": {"dtype": "float32", "shape": (2,), "names": None}})
    for t in range(5):
        dataset.add_frame({"observation.state": np.zeros(2, np.float32), "task": "nothing"})
    dataset.save_episode()
    dataset.finalize()
    cases = [
        (no_camera, ["state_only", "no camera features", "observation.state (float32)"]),
        (tmp_path / "missing", ["LeRobot dataset not found", "missing"]),
        (tmp_path, ["not a LeRobot dataset", "info.json"]),
    ]
    for source, needles in cases:
        assert main(["label", "--lerobot", str(source), "--model", str(model), "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert all(n in err for n in needles), err
        assert not out.exists()


def test_real_so101_dataset_av1(shared_data, tmp_path):
    root = shared_data / "lerobot_v3/so101_pick_place"
    episodes = open_lerobot(root)
    assert [len(e.frame_index) for e in episodes] == [383, 386, 379, 382, 90, 162]
    assert {e.task.instruction for e in episodes} == {"pick and place"} and episodes[0].view_names == ["wrist"]
    model = load_model("perceptual", num_steps=3, stride=8).fit(episodes[:2]).save(tmp_path / "so101.pt")
    out = tmp_path / "run"
    assert main(["label", "--lerobot", str(root), "--model", str(model), "--out", str(out), "--batch-size", "32",
                 "--no-report"]) == 0
    labeled = LeRobotDataset("local/so101_pick_place_rewards", root=out / "lerobot")  # the default video backend
    assert labeled.num_frames == 1782 and labeled.meta.video_keys == ["observation.images.wrist"]
    assert labeled[400]["observation.images.wrist"].shape == (3, 360, 640)
    assert "next.reward" not in labeled.features and "next.success" not in labeled.features
    table = data_table(out / "lerobot")
    original = data_table(root)
    assert table.select(original.column_names).equals(original)
    assert_estimates(table, pd.read_parquet(out / "scores.parquet"))
    assert_episode_ends(table, "next.done")
    assert (out / "lerobot/videos/observation.images.wrist/chunk-000/file-000.mp4").stat().st_size == (
        root / "videos/observation.images.wrist/chunk-000/file-000.mp4").stat().st_size
