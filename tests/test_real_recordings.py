"""Label the real recordings in ../shared/data/real end to end (see its README):
H.264 4:4:4 (UMI cup), AV1 (SO-101 wrist), and a three-camera episode synced by timestamp."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from robo_reward.cli import main
from robo_reward.data.episodes import MANIFEST_FORMAT


def fit_and_label(tmp_path, name: str, task: str, views: dict, stride: int, steps: int = 4) -> pd.DataFrame:
    """Fit a perceptual model on the recording (one-demo, few-shot), then label it."""
    manifest = tmp_path / "episodes.json"
    manifest.write_text(json.dumps({"format": MANIFEST_FORMAT, "episodes": [
        {"name": name, "task": {"instruction": task}, "views": {k: str(v) for k, v in views.items()},
         "outcome": "success"}]}))
    model = tmp_path / "model.pt"
    assert main(["fit", "perceptual", "--demos", str(manifest), "--out", str(model),
                 "--option", f"stride={stride}", "--option", f"num_steps={steps}"]) == 0
    out = tmp_path / "run"
    args = ["label", "--task", task, "--model", str(model), "--stride", str(stride), "--out", str(out),
            "--outcome", "success", "--name", name]
    for view, path in views.items():
        args += ["--view", f"{view}={path}"]
    assert main(args) == 0
    assert (out / "report.html").is_file()
    return pd.read_parquet(out / "scores.parquet")


def test_umi_cup_h264_444(shared_data, tmp_path):
    video = shared_data / "real/umi_cup/observation.image_episode_000000.mp4"
    table = fit_and_label(tmp_path, "umi", "pick up the cup and place it on the saucer", {"gopro": video}, stride=4)
    assert len(table) == 100
    np.testing.assert_array_equal(table["timestamp_ns"], np.arange(0, 400, 4) * 100_000_000)
    assert spearmanr(table["progress"], table["frame_index"]).statistic > 0.8


def test_so101_wrist_av1(shared_data, tmp_path):
    video = shared_data / "real/so101_rook_wrist/follower_wrist_episode_000000.mp4"
    task = json.loads((shared_data / "real/so101_rook_wrist/tasks.jsonl").read_text().splitlines()[0])["task"]
    table = fit_and_label(tmp_path, "rook", task, {"wrist": video}, stride=10)
    assert len(table) == 78 and table["task"].iloc[0] == task
    assert table["timestamp_ns"].iloc[-1] == pytest.approx(770 / 30 * 1e9, abs=1e6)
    assert spearmanr(table["progress"], table["frame_index"]).statistic > 0.7


def test_table_cleanup_three_synced_cameras(shared_data, tmp_path):
    folder = shared_data / "real/table_cleanup_3cam"
    views = {cam: folder / "episode_001" / f"{cam}.mp4" for cam in ("cam_high", "cam_left_wrist", "cam_right_wrist")}
    task = json.loads((folder / "task_instruction.json").read_text())[0]
    table = fit_and_label(tmp_path, "cleanup", task, views, stride=8, steps=6)
    assert {f"progress.{cam}" for cam in views} <= set(table.columns)
    np.testing.assert_array_equal(table["frame_index"], np.arange(0, 1277, 8))
    # The annotated subtasks (30 fps keyframes) are a ground truth for progress.
    keyframes = json.loads((folder / "episode_001" / "annotated_keyframes.json").read_text())
    subtask = np.searchsorted([k["start_frame_id"] for k in keyframes], table["frame_index"], side="right")
    assert spearmanr(table["progress"], subtask).statistic > 0.7
    assert (table["uncertainty"] >= 0).all()
