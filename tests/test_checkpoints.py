"""Checkpoints load with torch.load(weights_only=True): a malicious pickle is refused and runs nothing."""

import pickle

import numpy as np
import pytest
import torch

from robo_reward.assets import DEFAULT_MODEL, PERCEPTUAL_DRAWER_OPEN
from robo_reward.cli import main
from robo_reward.data.episodes import load_manifest
from robo_reward.errors import ConfigError, InputError
from robo_reward.models import load_model
from robo_reward.models.base import CHECKPOINT_FORMAT
from robo_reward.types import EpisodeContext, Sampling

TINY_PROGRESS = {"image_size": 32, "channels": (8, 16), "dim": 32, "bins": 5, "units_per_step": 8,
                 "frames_per_unit": 5, "shift": 2, "threads": 1, "epochs": 2, "seed": 0}


class CreatesMarker:
    """Unpickling this object calls open(marker, "w"): code run by merely loading the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious(path, marker, how: str):
    payload = {"format": CHECKPOINT_FORMAT, "model": "perceptual", "config": {},
               "state": {"task_instruction": "t", "views": {}, "payload": CreatesMarker(marker)}}
    if how == "torch":
        torch.save(payload, path)
    else:  # a bare pickle, not torch's zip format
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    return path


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_a_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path, how):
    marker = tmp_path / "marker"
    path = write_malicious(tmp_path / "evil.pt", marker, how)
    with pytest.raises(InputError, match="not a safe robo_reward checkpoint") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert not marker.exists(), "loading the checkpoint ran code from it"
    if how == "torch":  # the control: the file is armed, an unsafe load would have run it
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_the_cli_turns_a_malicious_checkpoint_into_a_message(square_episodes, tmp_path, capsys):
    marker = tmp_path / "marker"
    path = write_malicious(tmp_path / "evil.pt", marker, "torch")
    out = tmp_path / "out"
    code = main(["label", "--episodes", str(square_episodes), "--split", "eval", "--model", str(path),
                 "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "not a safe robo_reward checkpoint" in err and str(path) in err, err
    assert not marker.exists() and not out.exists()


def test_a_legacy_checkpoint_with_numpy_arrays_is_refused_naming_the_global(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": "perceptual", "config": {},
                "state": {"views": {"front": {"mu": np.zeros(3)}}}}, path)
    with pytest.raises(InputError, match=r"not a safe robo_reward checkpoint.*numpy"):
        load_model(path)


def test_corrupt_files_are_still_reported_as_unreadable(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_model(garbage)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(InputError, match="not a robo_reward checkpoint"):
        load_model(plain)


@pytest.mark.parametrize("path", [DEFAULT_MODEL, PERCEPTUAL_DRAWER_OPEN], ids=["progress", "perceptual"])
def test_the_shipped_checkpoints_are_weights_only(path):
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    torch.load(path, map_location="cpu", weights_only=True)
    assert load_model(path).expected_views == ("corner", "topview")


def assert_same_scores(a, b):
    for name in ("progress", "success", "uncertainty"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.per_view.keys() == b.per_view.keys()
    for view in a.per_view:
        np.testing.assert_array_equal(a.per_view[view], b.per_view[view])


def test_perceptual_round_trip_is_safe_and_gives_identical_scores(square_episodes, tmp_path):
    model = load_model("perceptual", num_steps=3, features="pixels:12").fit(load_manifest(square_episodes, "fit"))
    path = model.save(tmp_path / "perceptual.pt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    loaded = load_model(path)
    for episode in load_manifest(square_episodes, split="eval")[:3]:
        for batch in episode.iter_batches(16, Sampling()):
            assert_same_scores(model.score(batch, episode.task), loaded.score(batch, episode.task))


def test_progress_round_trip_is_safe_and_gives_identical_scores(square_episodes, tmp_path):
    model = load_model("progress", **TINY_PROGRESS).fit(load_manifest(square_episodes, "fit"))
    path = model.save(tmp_path / "progress.pt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    loaded = load_model(path)
    episode = load_manifest(square_episodes, split="eval")[0]
    batch = next(episode.iter_batches(16, Sampling()))
    context = EpisodeContext.starting_with(batch)
    assert_same_scores(model.score(batch, episode.task, context), loaded.score(batch, episode.task, context))
    assert repr(loaded.history) == repr(model.history)  # repr: val_voc may be nan


def test_saving_a_state_that_would_not_load_safely_is_refused(square_episodes, tmp_path, monkeypatch):
    model = load_model("perceptual", num_steps=3, features="pixels:12").fit(load_manifest(square_episodes, "fit"))
    unsafe = {"task_instruction": "t", "views": {"front": {"mu": np.zeros(3)}}}
    monkeypatch.setattr(type(model), "state_dict", lambda self: unsafe)
    with pytest.raises(ConfigError, match="cannot save the 'perceptual' model"):
        model.save(tmp_path / "unsafe.pt")
    assert list(tmp_path.iterdir()) == []
