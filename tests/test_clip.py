"""VLM-RM (Rocamonde et al. 2023): the formula against hand computation, and the model's
plumbing with a tiny open_clip configuration and random weights."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robo_reward.errors import ConfigError
from robo_reward.models import load_model
from robo_reward.models.clip import vlmrm_reward
from robo_reward.types import FrameBatch, Task


def unit(v):
    return F.normalize(torch.as_tensor(v, dtype=torch.float64), dim=-1)


def test_alpha_zero_is_cosine_similarity():
    rng = np.random.default_rng(0)
    x = unit(rng.normal(size=(5, 8)))
    g, b = unit(rng.normal(size=8)), unit(rng.normal(size=8))
    reward = vlmrm_reward(x, g, b, alpha=0.0)
    torch.testing.assert_close(reward, x @ g)


def test_alpha_one_keeps_only_the_goal_baseline_direction():
    g = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    x = unit([[0.3, 0.2, 0.9], [0.3, 0.2, -0.9]])
    reward = vlmrm_reward(x, g, b, alpha=1.0)
    # Hand computation: d = (1, −1, 0)/‖·‖; (x − g)·d̂ = (x0 − 1 − x1)/√2; R = 1 − ½((x0 − 1 − x1)/√2)².
    expected = 1 - 0.5 * ((x[:, 0] - 1 - x[:, 1]) / np.sqrt(2)) ** 2
    torch.testing.assert_close(reward, expected)
    assert reward[0] == reward[1]  # the orthogonal component is ignored


def test_intermediate_alpha_matches_the_projection_matrix():
    rng = np.random.default_rng(1)
    x = unit(rng.normal(size=(4, 6)))
    g, b = unit(rng.normal(size=6)), unit(rng.normal(size=6))
    alpha = 0.3
    d = (g - b)[:, None]
    projection = alpha * d @ d.T / (d.T @ d) + (1 - alpha) * torch.eye(6, dtype=torch.float64)
    expected = 1 - 0.5 * (((x - g) @ projection) ** 2).sum(-1)
    torch.testing.assert_close(vlmrm_reward(x, g, b, alpha), expected)


def test_identical_goal_and_baseline_refused():
    g = unit([1.0, 0.0])
    with pytest.raises(ConfigError, match="baseline"):
        vlmrm_reward(unit([[0.0, 1.0]]), g, g, 0.5)


def test_clip_model_scores_views_and_fuses(tiny_clip_arch):
    model = load_model("clip", arch=tiny_clip_arch, pretrained="none", device="cpu")
    assert "RANDOM WEIGHTS" in model.describe()
    rng = np.random.default_rng(0)
    batch = FrameBatch(
        views={"front": rng.integers(0, 255, (3, 40, 56, 3), dtype=np.uint8),
               "wrist": rng.integers(0, 255, (3, 24, 24, 3), dtype=np.uint8)},
        timestamps_ns=np.arange(3),
        view_valid={"wrist": np.array([True, False, True])},
    )
    task = Task("open the drawer", baselines=("a robot arm",))
    scores = model.score(batch, task)
    assert scores.progress.shape == (3,) and set(scores.per_view) == {"front", "wrist"}
    assert np.all((scores.progress >= 0) & (scores.progress <= 1))
    assert np.all((scores.success >= 0) & (scores.success <= 1))
    assert np.isnan(scores.per_view["wrist"][1])
    assert scores.progress[1] == pytest.approx(scores.per_view["front"][1])
    assert scores.uncertainty[1] > 0.2  # a missing view counts as uninformed

    # progress = (R + 1)/2 with R from the formula on the model's own embeddings
    x = model.backbone.encode_images(batch.views["front"]).double()
    g, b = (e.double() for e in model.prompt_embeddings(task))
    expected = ((vlmrm_reward(x, g, b, model.config.alpha) + 1) / 2).numpy()
    np.testing.assert_allclose(scores.per_view["front"], expected, atol=1e-5)


def test_unknown_architecture_and_tag(tiny_clip_arch):
    with pytest.raises(ConfigError, match="unknown open_clip architecture"):
        load_model("clip", arch="NoSuchNet", pretrained="none")
    with pytest.raises(ConfigError, match="neither a pretrained tag"):
        load_model("clip", arch="ViT-B-32", pretrained="no_such_tag")


def test_missing_weights_without_network_names_the_alternatives():
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=os.path.join(os.sep, "tmp", "robo_reward_empty_hf"))
    code = "from robo_reward.models import load_model; load_model('clip')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "--pretrained none" in result.stderr and "local open_clip checkpoint" in result.stderr
