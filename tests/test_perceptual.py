"""Perceptual rewards from a few demos (Sermanet et al. 2017) on real encoded video."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from robo_reward.data.episodes import load_manifest
from robo_reward.errors import InputError, ModelOutputError
from robo_reward.metrics import voc
from robo_reward.models import load_model
from robo_reward.models.perceptual import segment
from robo_reward.types import Sampling


def test_segmentation_finds_piecewise_constant_steps():
    rng = np.random.default_rng(0)
    levels = np.repeat(np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]]), [7, 12, 5], axis=0)
    labels = segment(levels + rng.normal(0, 0.1, levels.shape), 3)
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], [7, 12, 5]))
    with pytest.raises(InputError):
        segment(levels[:2], 3)


def score_episodes(model, episodes):
    out = {}
    for episode in episodes:
        parts = [model.score(b, episode.task) for b in episode.iter_batches(16, Sampling())]
        out[episode.name] = (np.concatenate([p.progress for p in parts]), np.concatenate([p.success for p in parts]))
    return out


@pytest.fixture(scope="module")
def fitted(square_episodes):
    demos = load_manifest(square_episodes, split="fit")
    return load_model("perceptual", num_steps=3, features="pixels:12").fit(demos)


def test_fit_generalises_to_held_out_episodes(fitted, square_episodes):
    scores = score_episodes(fitted, load_manifest(square_episodes, split="eval"))
    for name in ("ok0", "ok1"):
        progress, success = scores[name]
        assert voc(progress) > 0.8
        assert success[-1] > 0.5
    for name in ("fail0", "fail1", "half0", "half1"):
        assert scores[name][1][-1] < 0.5, name
        assert scores[name][0][-1] < scores["ok0"][0][-1]


def test_save_load_roundtrip_gives_identical_scores(fitted, square_episodes, tmp_path):
    path = fitted.save(tmp_path / "m.pt")
    loaded = load_model(path)
    episodes = load_manifest(square_episodes, split="eval")[:2]
    a, b = score_episodes(fitted, episodes), score_episodes(loaded, episodes)
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
        np.testing.assert_array_equal(a[name][1], b[name][1])


def test_missing_view_still_scores_with_higher_uncertainty(fitted, square_episodes):
    episode = load_manifest(square_episodes, split="eval")[0]
    batch = next(episode.iter_batches(8, Sampling()))
    both = fitted.score(batch, episode.task)
    only_front = batch.select(slice(None))
    del only_front.views["side"]
    one = fitted.score(only_front, episode.task)
    assert np.all(one.uncertainty > both.uncertainty)
    np.testing.assert_allclose(one.progress, both.per_view["front"])


def test_nan_from_a_corrupt_checkpoint_names_the_frames(fitted, square_episodes, tmp_path):
    path = fitted.save(tmp_path / "bad.pt")
    payload = torch.load(path, weights_only=False)
    for view in payload["state"]["views"].values():
        view["mu"][:] = np.nan
    torch.save(payload, path)
    episode = load_manifest(square_episodes, split="eval")[0]
    batch = next(episode.iter_batches(4, Sampling()))
    with pytest.raises(ModelOutputError, match=r"non-finite progress for episode 'ok0' frame\(s\) \[0, 1, 2, 3\]"):
        load_model(path).score(batch, episode.task)


def test_demos_with_other_views_are_refused(square_episodes):
    demos = load_manifest(square_episodes, split="fit")
    demos[1].views = {"front": demos[1].views["front"]}
    with pytest.raises(InputError, match="has views"):
        load_model("perceptual").fit(demos)


def test_clip_image_features_plug_in(square_episodes, tiny_clip_arch, tmp_path):
    from robo_reward.errors import ConfigError

    demos = load_manifest(square_episodes, split="fit")
    model = load_model("perceptual", num_steps=2, features=f"clip:{tiny_clip_arch}:none").fit(demos)
    progress, success = score_episodes(model, load_manifest(square_episodes, split="eval")[:1])["ok0"]
    assert progress.shape == (32,) and np.all((progress >= 0) & (progress <= 1))
    with pytest.raises(ConfigError, match="random weights are not reproducible"):
        model.save(tmp_path / "random.pt")
    assert not (tmp_path / "random.pt").exists()


def test_reversed_voc_is_scored_on_the_reversed_episode(fitted, square_episodes, tmp_path):
    from robo_reward.labeling import LabelConfig, label_episodes

    episodes = load_manifest(square_episodes, split="eval")
    measured = label_episodes(fitted, episodes, LabelConfig(score_reversed=True), tmp_path / "both", report=False)
    metrics = json.loads((measured / "metrics.json").read_text())
    assert metrics["voc_reversed"] < -0.8 and "scored for real" in metrics["provenance"]["voc_reversed"]
    table = pd.read_parquet(measured / "scores.parquet")
    assert table["progress_reversed"].notna().all()
    forward_only = label_episodes(fitted, episodes, LabelConfig(), tmp_path / "fwd", report=False)
    metrics = json.loads((forward_only / "metrics.json").read_text())
    assert metrics["voc_reversed"] is None and "not measured" in metrics["provenance"]["voc_reversed"]
