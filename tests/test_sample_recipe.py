"""The Meta-World sample recipe (real MuJoCo, real H.264) and the sample shipped with the package."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from robo_reward.assets import SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.errors import ConfigError, InputError
from robo_reward.types import Sampling

RECIPE = Path(__file__).resolve().parents[1] / "datasets" / "metaworld_sample" / "make_sample.py"


@pytest.fixture(scope="module")
def recipe():
    pytest.importorskip("gymnasium")
    import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco loads)

    pytest.importorskip("metaworld")

    spec = importlib.util.spec_from_file_location("make_sample", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


TINY = ["--fit-successes", "1", "--eval-successes", "0", "--partials", "0", "--failures", "1",
        "--size", "48", "--cameras", "corner", "--seed", "3", "--tail", "2"]


def test_tiny_recipe_writes_a_loadable_manifest_and_decodable_videos(recipe, tmp_path):
    out = recipe.main(["--out", str(tmp_path / "sample"), *TINY])
    episodes = load_manifest(out)
    assert [(e.name, e.outcome, e.metadata["split"]) for e in episodes] == [
        ("fit_success_00", "success", "fit"), ("eval_failure_00", "failure", "eval")]
    for episode in episodes:
        meta = episode.metadata
        assert episode.task.instruction == "open the drawer" and episode.task.baselines == ("a robot arm",)
        assert episode.view_names == ["corner"] and meta["env"] == "drawer-open-v3" and meta["fps"] == 20
        info = episode.infos["corner"]
        assert (info.width, info.height, info.fps) == (48, 48, 20.0)
        assert info.num_frames == meta["num_frames"] == len(meta["sim_success"])
        decoded = sum(len(batch) for batch in episode.iter_batches(64, Sampling()))
        assert decoded == meta["num_frames"]
    success, failure = (e.metadata for e in episodes)
    assert success["success_frame"] == success["num_frames"] - 1 - 2  # tail of 2 frames
    assert success["sim_success"][success["success_frame"]:] == [1] * 3
    assert not any(success["sim_success"][: success["success_frame"]])
    assert failure["success_frame"] is None and not any(failure["sim_success"])
    assert abs(failure["num_frames"] - success["num_frames"]) <= 10
    assert (out / "episodes.json").stat().st_mode & 0o777 == 0o644
    # an existing sample is never overwritten by accident, nor left half-written
    before = (out / "episodes.json").read_text()
    with pytest.raises(InputError, match="--overwrite"):
        recipe.main(["--out", str(out), *TINY])
    assert (out / "episodes.json").read_text() == before


def test_plans_are_deterministic_and_outcomes_as_labelled(recipe):
    config = recipe.SampleConfig(fit_successes=1, eval_successes=0, partials=2, failures=2, seed=11)
    plans = recipe.plan_episodes(config)
    assert plans == recipe.plan_episodes(config)
    episodes = [plan.episode for plan in plans]
    assert len({e.seed for e in episodes}) == len(plans)  # each episode its own initial state
    for episode in episodes:
        assert any(episode.success) == (episode.outcome == "success"), episode
    assert [e.spec["kind"] for e in episodes[1:]] == ["stop_step", "stop_progress", "beside", "noise"]
    assert max(episodes[2].progress) > 0.2  # stopped while pulling: the drawer is partly open


def test_bad_configuration_fails_before_writing(recipe, tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'corner'"):
        recipe.main(["--out", str(tmp_path / "a"), "--cameras", "cornr"])
    with pytest.raises(ConfigError, match="drawer-open-v3"):
        recipe.main(["--out", str(tmp_path / "b"), "--task", "drawer-opn-v3"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_committed_sample_loads_with_the_promised_episodes():
    episodes = load_manifest(SAMPLE_DIR)
    counts: dict[tuple[str, str], int] = {}
    for episode in episodes:
        key = (episode.metadata["split"], episode.outcome)
        counts[key] = counts.get(key, 0) + 1
    assert counts == {("fit", "success"): 5, ("eval", "success"): 5, ("eval", "partial"): 4, ("eval", "failure"): 4}
    lengths = []
    for episode in episodes:
        meta = episode.metadata
        assert episode.task.instruction == "open the drawer" and len(meta["sim_success"]) == meta["num_frames"]
        if episode.outcome == "success":
            assert meta["success_frame"] is not None and meta["sim_success"][meta["success_frame"]] == 1
            assert meta["num_frames"] - meta["success_frame"] <= 8  # ends a few frames after success
        else:
            assert meta["success_frame"] is None and not any(meta["sim_success"])
        for view, info in episode.infos.items():
            assert (info.width, info.height, info.num_frames) == (128, 128, meta["num_frames"]), view
        lengths.append(meta["num_frames"])
    assert np.ptp(lengths) <= 15  # partial and failure episodes last about as long as successes
    seeds = [e.metadata["seed"] for e in episodes]
    assert len(set(seeds)) == len(seeds)
    size = sum(f.stat().st_size for f in SAMPLE_DIR.rglob("*") if f.is_file())
    assert size < 5_000_000
    manifest = json.loads((SAMPLE_DIR / "episodes.json").read_text())
    assert manifest["generator"]["config"]["cameras"] == ["corner", "topview"]
