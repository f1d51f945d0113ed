"""README "Your own cameras": a model fitted on a demo from your own cameras, on the real
three-camera recording in ../shared/data/real/table_cleanup_3cam (views cam_high,
cam_left_wrist, cam_right_wrist; not shipped with the project).

The recording is cut in two pieces: ``robo-reward fit progress`` learns from the first,
``robo-reward label`` scores the second, which the model never saw. The embedded default
model knows other views (Meta-World's corner and topview) and is refused on these, with
exit code 1 and a message naming the workflow that fixes it. Tiny options keep it fast:
this checks the workflow end to end, not the model's quality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from robo_reward.cli import main
from robo_reward.data.video import read_frames, write_video

VIEWS = ("cam_high", "cam_left_wrist", "cam_right_wrist")
TASK = "clean the table"  # the recording's task_instruction.json
STEP = 3  # of the 30 fps recording: 10 fps clips
FIT_FRAMES = np.arange(0, 150, STEP)  # the first 5 s (50 frames per view) …
LABEL_FRAMES = np.arange(150, 300, STEP)  # … and the next 5 s, unseen by the fit
TINY = ["--option", "epochs=2", "--option", "units_per_step=3", "--option", "frames_per_unit=4",
        "--option", "channels=8,16,16,16", "--option", "dim=32", "--option", "image_size=32"]


@pytest.fixture(scope="module")
def pieces(shared_data, tmp_path_factory) -> dict[str, list[str]]:
    """``--view`` arguments of the two pieces (clips at 10 fps, 160×120: quick to decode again)."""
    recording = shared_data / "real/table_cleanup_3cam/episode_001"
    folder = tmp_path_factory.mktemp("own_cameras")
    arguments: dict[str, list[str]] = {"fit": [], "label": []}
    for view in VIEWS:
        wanted = np.concatenate([FIT_FRAMES, LABEL_FRAMES])
        frames = np.stack([f[::4, ::4] for f in read_frames(recording / f"{view}.mp4", wanted)])
        for piece, part in (("fit", frames[: len(FIT_FRAMES)]), ("label", frames[len(FIT_FRAMES):])):
            clip = write_video(folder / f"{piece}_{view}.mp4", part, fps=30 / STEP)
            arguments[piece] += ["--view", f"{view}={clip}"]
    return arguments


def test_fit_on_your_own_cameras_then_label_an_unseen_piece(pieces, tmp_path, capsys):
    model = tmp_path / "models" / "mine.pt"
    assert main(["fit", "progress", *pieces["fit"], "--task", TASK, "--out", str(model), *TINY]) == 0
    assert model.is_file() and f"on 1 demos; wrote {model}" in capsys.readouterr().out
    out = tmp_path / "runs" / "mine"
    assert main(["label", *pieces["label"], "--task", TASK, "--model", str(model), "--out", str(out),
                 "--outcome", "success"]) == 0
    table = pd.read_parquet(out / "scores.parquet")
    assert len(table) == len(LABEL_FRAMES)
    assert {f"progress.{view}" for view in VIEWS} <= set(table.columns)
    assert table["progress"].between(0, 1).all() and np.isfinite(table["reward"]).all()
    assert (out / "report.html").is_file() and (out / "metrics.json").is_file()


def test_the_default_model_refuses_these_views_and_names_the_fix(pieces, tmp_path, capsys):
    out = tmp_path / "runs" / "default"
    assert main(["label", *pieces["label"], "--task", TASK, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "the progress model was trained on views" in err and "robo-reward fit progress" in err, err
    assert all(view in err for view in VIEWS)
    assert not out.exists()
