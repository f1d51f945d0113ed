"""Label the real recordings in ../shared/data/real end to end (see its README):
H.264 4:4:4 (UMI cup), AV1 (SO-101 wrist), and a three-camera episode synced by timestamp.

Each recording is the only one of its task here, so the reward model cannot be fitted
on one recording and judged on another. Instead the timeline is cut into blocks, a
``perceptual`` model is fitted on every other block (a demo made of those frames, in
order, from the first block to the last) and the VOC is measured only on the frames of
the blocks it never saw (1–4 s long). That tests whether the model places unseen
intermediate states between the seen ones — the same scene, camera and lighting, so it
is not evidence of transfer to another recording, but it no longer scores the frames it
was fitted on. (With blocks twice as long, 11 instead of 21, the held-out VOC fell to
0.46 on the UMI cup and 0.22 on the SO-101 wrist video, against 0.38 and 0.96 on the
fitted frames: the pixel-feature model interpolates over short gaps only.)
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from robo_reward.cli import main
from robo_reward.data.episodes import MANIFEST_FORMAT
from robo_reward.data.video import probe_video, read_frames, write_video


def fit_on_blocks(tmp_path, name: str, task: str, views: dict, frames: np.ndarray, steps: int) -> str:
    """Fit a perceptual model on a demo made of ``frames`` (indices) of each view, in order
    (the start and the end of the recording are among them, as a demo must show both)."""
    demo = {}
    for view, path in views.items():
        demo[view] = tmp_path / f"fit_{view}.mp4"
        write_video(demo[view], read_frames(path, frames), fps=probe_video(path).fps or 10.0)
    manifest = tmp_path / "episodes.json"
    manifest.write_text(json.dumps({"format": MANIFEST_FORMAT, "episodes": [
        {"name": f"{name}_fit", "task": {"instruction": task}, "views": {k: str(v) for k, v in demo.items()},
         "outcome": "success"}]}))
    model = tmp_path / "model.pt"
    assert main(["fit", "perceptual", "--demos", str(manifest), "--out", str(model),
                 "--option", f"num_steps={steps}"]) == 0
    return str(model)


def label(tmp_path, name: str, task: str, views: dict, model: str, stride: int) -> pd.DataFrame:
    """Label the whole original recording (its own codec, every view) with ``model``."""
    out = tmp_path / "run"
    args = ["label", "--task", task, "--model", model, "--stride", str(stride), "--out", str(out),
            "--outcome", "success", "--name", name]
    for view, path in views.items():
        args += ["--view", f"{view}={path}"]
    assert main(args) == 0
    assert (out / "report.html").is_file()
    return pd.read_parquet(out / "scores.parquet")


def blocks(total: int, count: int) -> np.ndarray:
    """Block number (0 … count−1) of each frame index 0 … total−1."""
    return np.minimum(np.arange(total) * count // total, count - 1)


def held_out_voc(table: pd.DataFrame, fitted: np.ndarray) -> float:
    """VOC on the scored frames the model was not fitted on (``fitted``: bool per frame index)."""
    held = table[~fitted[table["frame_index"].to_numpy()]]
    assert len(held) >= 20
    print(f"held-out VOC {spearmanr(held['progress'], held['frame_index']).statistic:.3f} on {len(held)} frames")
    return spearmanr(held["progress"], held["frame_index"]).statistic


def test_umi_cup_h264_444(shared_data, tmp_path):
    video = shared_data / "real/umi_cup/observation.image_episode_000000.mp4"
    task, views = "pick up the cup and place it on the saucer", {"gopro": video}
    fitted = blocks(400, 21) % 2 == 0  # fit on blocks 0, 2, …, 20 (start and end seen); hold out 1, 3, …, 19
    model = fit_on_blocks(tmp_path, "umi", task, views, np.flatnonzero(fitted)[::4], steps=4)
    table = label(tmp_path, "umi", task, views, model, stride=4)
    assert len(table) == 100
    np.testing.assert_array_equal(table["timestamp_ns"], np.arange(0, 400, 4) * 100_000_000)
    assert held_out_voc(table, fitted) > 0.8  # measured 0.95


def test_so101_wrist_av1(shared_data, tmp_path):
    video = shared_data / "real/so101_rook_wrist/follower_wrist_episode_000000.mp4"
    task = json.loads((shared_data / "real/so101_rook_wrist/tasks.jsonl").read_text().splitlines()[0])["task"]
    views = {"wrist": video}
    fitted = blocks(775, 21) % 2 == 0
    model = fit_on_blocks(tmp_path, "rook", task, views, np.flatnonzero(fitted)[::10], steps=4)
    table = label(tmp_path, "rook", task, views, model, stride=10)
    assert len(table) == 78 and table["task"].iloc[0] == task
    assert table["timestamp_ns"].iloc[-1] == pytest.approx(770 / 30 * 1e9, abs=1e6)
    assert held_out_voc(table, fitted) > 0.6  # measured 0.77


def test_table_cleanup_three_synced_cameras(shared_data, tmp_path):
    folder = shared_data / "real/table_cleanup_3cam"
    views = {cam: folder / "episode_001" / f"{cam}.mp4" for cam in ("cam_high", "cam_left_wrist", "cam_right_wrist")}
    task = json.loads((folder / "task_instruction.json").read_text())[0]
    # The 16 annotated subtasks (30 fps keyframes) are a ground truth for progress: fit on the
    # frames before subtask1 and the even-numbered subtasks (subtask2, …, subtask16: start and
    # end are seen) and judge the progress on the odd-numbered ones it never saw.
    keyframes = json.loads((folder / "episode_001" / "annotated_keyframes.json").read_text())
    subtask = np.searchsorted([k["start_frame_id"] for k in keyframes], np.arange(1277), side="right")
    fitted = subtask % 2 == 0
    model = fit_on_blocks(tmp_path, "cleanup", task, views, np.flatnonzero(fitted)[::8], steps=6)
    table = label(tmp_path, "cleanup", task, views, model, stride=8)
    assert {f"progress.{cam}" for cam in views} <= set(table.columns)
    np.testing.assert_array_equal(table["frame_index"], np.arange(0, 1277, 8))
    held = table[~fitted[table["frame_index"].to_numpy()]]
    rho = spearmanr(held["progress"], subtask[held["frame_index"].to_numpy()]).statistic
    print(f"held-out subtask ρ {rho:.3f} on {len(held)} frames")
    assert rho > 0.7
    assert (table["uncertainty"] >= 0).all()
