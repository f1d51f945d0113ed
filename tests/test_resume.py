"""Resumable, atomic labeling runs: an interrupted run continues without redoing finished
episodes; stale or mismatched work is refused; a run's cameras must agree."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from robo_reward.cli import main
from robo_reward.data.episodes import load_manifest
from robo_reward.engine.work import WorkFolder
from robo_reward.errors import InputError
from robo_reward.labeling import LabelConfig, label_episodes
from robo_reward.models import load_model
from robo_reward.models.perceptual import PerceptualRewardModel


class RecordingModel(PerceptualRewardModel):
    """The fitted perceptual model that notes which episodes it scored and can fail on the Nth one."""

    def __init__(self, config, fail_on: int | None = None) -> None:
        super().__init__(config)
        self.fail_on = fail_on
        self.scored: list[str] = []

    def _score(self, batch, task, reference):
        if batch.source not in self.scored:
            self.scored.append(batch.source)
            if self.fail_on is not None and len(self.scored) == self.fail_on:
                raise RuntimeError(f"simulated crash while scoring {batch.source}")
        return super()._score(batch, task, reference)


@pytest.fixture(scope="module")
def fitted(square_episodes) -> PerceptualRewardModel:
    return load_model("perceptual", num_steps=3, features="pixels:12").fit(load_manifest(square_episodes, split="fit"))


def recording(fitted: PerceptualRewardModel, fail_on: int | None = None) -> RecordingModel:
    model = RecordingModel(fitted.config, fail_on)
    model.views, model.task_instruction = fitted.views, fitted.task_instruction
    return model


def test_interrupted_run_resumes_without_redoing_finished_episodes(square_episodes, fitted, tmp_path):
    episodes = load_manifest(square_episodes, split="eval")
    config = LabelConfig(batch_size=8, stride=2)
    out = tmp_path / "run"
    crashing = recording(fitted, fail_on=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        label_episodes(crashing, episodes, config, out)
    assert not out.exists(), "no output before the run is complete"
    work = WorkFolder.beside(out)
    assert work.count() == 3 and all(work.has(i) for i in range(3))
    with pytest.raises(InputError, match="--resume"):
        label_episodes(recording(fitted), episodes, config, out)
    with pytest.raises(InputError, match="config differ"):
        label_episodes(recording(fitted), episodes, LabelConfig(batch_size=8, stride=3), out, resume=True)
    resumed = recording(fitted)
    label_episodes(resumed, episodes, config, out, resume=True)
    assert resumed.scored == [f"episode '{e.name}'" for e in episodes[3:]], "finished episodes must not be redone"
    assert not work.exists(), "the work folder goes once the output is whole"
    reference = tmp_path / "reference"
    label_episodes(recording(fitted), episodes, config, reference)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), pd.read_parquet(reference / "scores.parquet"))
    assert (out / "report.html").read_text().count("data:image/jpeg") == (
        reference / "report.html").read_text().count("data:image/jpeg")
    with pytest.raises(InputError, match="already complete"):
        label_episodes(recording(fitted), episodes, config, out, resume=True)


def test_overwrite_discards_unfinished_work(square_episodes, fitted, tmp_path):
    episodes = load_manifest(square_episodes, split="eval")
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        label_episodes(recording(fitted, fail_on=2), episodes, LabelConfig(), out)
    assert WorkFolder.beside(out).count() == 1
    fresh = recording(fitted)
    label_episodes(fresh, episodes, LabelConfig(), out, overwrite=True)
    assert len(fresh.scored) == len(episodes) and not WorkFolder.beside(out).exists()


def test_cli_resume_and_refusals(square_episodes, fitted, tmp_path, capsys):
    model = fitted.save(tmp_path / "m.pt")
    out = tmp_path / "cli"
    args = ["label", "--episodes", str(square_episodes), "--split", "eval", "--model", str(model), "--out", str(out),
            "--no-report"]
    assert main([*args, "--resume"]) == 0  # nothing to resume: a fresh run
    assert main(args) == 1 and "output exists" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 1 and "already complete" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "run.json").read_text())["episodes"][0] == "ok0"


def test_mismatched_camera_counts_are_refused(square_episodes, fitted, tmp_path, capsys):
    manifest = json.loads((square_episodes / "episodes.json").read_text())
    entries = [e for e in manifest["episodes"] if e["split"] == "eval"][:2]
    entries[1]["views"] = {"front": entries[1]["views"]["front"]}
    (tmp_path / "episodes.json").write_text(json.dumps({"format": manifest["format"], "episodes": [
        {**e, "views": {k: str(square_episodes / v) for k, v in e["views"].items()}} for e in entries]}))
    out = tmp_path / "out"
    assert main(["label", "--episodes", str(tmp_path), "--model", str(fitted.save(tmp_path / "m.pt")),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    first, second = (e["name"] for e in entries)
    assert f"episode '{second}' has 1 camera view(s) ['front']" in err and f"'{first}' has 2" in err
    assert not out.exists() and not WorkFolder.beside(out).exists()


def test_part_files_round_trip(square_episodes, fitted, tmp_path):
    from robo_reward.labeling import label_episode

    episode = load_manifest(square_episodes, split="eval")[0]
    labels = label_episode(fitted, episode, LabelConfig(batch_size=5))
    work = WorkFolder(tmp_path / ".w").prepare({"model": "m", "config": {}, "episodes": [episode.name]},
                                               resume=False, discard=False)
    work.save(0, labels)
    loaded = work.load(0)
    pd.testing.assert_frame_equal(loaded.to_frame(), labels.to_frame())
    assert [f for f, _ in loaded.thumbnails] == [f for f, _ in labels.thumbnails]
    np.testing.assert_array_equal(loaded.thumbnails[-1][1], labels.thumbnails[-1][1])
    assert loaded.terminated == labels.terminated
