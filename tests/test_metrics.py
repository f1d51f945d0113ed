import numpy as np
import pytest

from robo_reward.errors import InputError, ModelOutputError
from robo_reward.fusion import fuse_views
from robo_reward.metrics import auroc, bootstrap_ci, completion_accuracy, epic_distance, starc_distance, voc


def test_voc_on_constructed_sequences():
    assert voc(np.linspace(0, 1, 10)) == pytest.approx(1.0)
    assert voc(np.linspace(1, 0, 10)) == pytest.approx(-1.0)
    assert voc(np.array([0.0, 0.2, 0.1, 0.3, 0.5])) == pytest.approx(0.9)
    assert np.isnan(voc(np.ones(5)))
    noisy = np.linspace(0, 1, 50) + np.random.default_rng(0).normal(0, 0.05, 50)
    assert 0.9 < voc(noisy) < 1.0
    assert voc(noisy[::-1]) == pytest.approx(-voc(noisy))


def test_auroc_and_completion_accuracy():
    assert auroc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0], bool)) == 1.0
    assert auroc(np.array([0.1, 0.8, 0.9, 0.2]), np.array([1, 1, 0, 0], bool)) == 0.25
    assert auroc(np.array([0.5, 0.5]), np.array([1, 0], bool)) == 0.5
    assert np.isnan(auroc(np.array([0.5]), np.array([1], bool)))
    assert completion_accuracy(np.array([0.9, 0.4, 0.6]), np.array([1, 0, 0], bool)) == pytest.approx(2 / 3)


def test_epic_and_starc_ignore_shaping_and_scale():
    rng = np.random.default_rng(1)
    states, actions, gamma = 6, 3, 0.9
    reward = rng.normal(size=(states, actions, states))
    phi = rng.normal(size=states)
    shaped = 2.5 * reward + gamma * phi[None, None, :] - phi[:, None, None]
    other = rng.normal(size=(states, actions, states))
    assert epic_distance(reward, shaped, gamma) == pytest.approx(0.0, abs=1e-6)
    assert starc_distance(reward, shaped, gamma) == pytest.approx(0.0, abs=1e-6)
    assert epic_distance(reward, -reward, gamma) == pytest.approx(1.0)
    assert 0.3 < epic_distance(reward, other, gamma) < 1.0
    assert starc_distance(reward, other, gamma) > 0.3


def test_fusion_missing_view_raises_uncertainty():
    per_view = {"a": np.array([0.4, 0.4]), "b": np.array([0.6, np.nan])}
    fused, uncertainty = fuse_views(per_view, valid={"b": np.array([True, False])})
    assert fused.tolist() == pytest.approx([0.5, 0.4])
    full = fuse_views({"a": np.array([0.4]), "b": np.array([0.4])})[1][0]
    missing = fuse_views({"a": np.array([0.4]), "b": np.array([0.4])}, valid={"b": np.array([False])})[1][0]
    assert full == 0.0 and missing > 0.2
    with pytest.raises(InputError, match=r"no valid view for frame\(s\) \[7\]"):
        fuse_views({"a": np.array([0.5])}, valid={"a": np.array([False])}, frame_index=np.array([7]))
    with pytest.raises(ModelOutputError, match=r"frame\(s\) \[7\] \(view 'a'\)"):
        fuse_views({"a": np.array([np.nan])}, frame_index=np.array([7]))


def test_bootstrap_ci_on_constructed_samples():
    rng = np.random.default_rng(3)
    small, large = rng.normal(0.5, 0.2, 20), rng.normal(0.5, 0.2, 500)
    interval = bootstrap_ci(np.mean, small, resamples=1000, seed=7)
    assert interval.estimate == pytest.approx(small.mean())
    assert interval.low < interval.estimate < interval.high
    # the normal-theory 95 % half-width is 1.96 s / sqrt(n); the percentile bootstrap is close to it
    half = 1.96 * small.std(ddof=1) / np.sqrt(len(small))
    assert (interval.high - interval.low) / 2 == pytest.approx(half, rel=0.25)
    wide = bootstrap_ci(np.mean, large, resamples=1000, seed=7)
    assert wide.high - wide.low < 0.4 * (interval.high - interval.low)  # shrinks ~ 1/sqrt(n)
    assert bootstrap_ci(np.mean, small, resamples=1000, seed=7) == interval  # deterministic with the seed
    assert bootstrap_ci(np.mean, small, resamples=1000, seed=8) != interval
    assert bootstrap_ci(np.mean, np.full(10, 0.3)) == pytest.approx((0.3, 0.3, 0.3))


def test_bootstrap_ci_strata_keep_both_classes_for_auroc():
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.6, 0.2, 0.1, 0.3])
    positive = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    interval = bootstrap_ci(auroc, scores, positive, strata=positive, resamples=500)
    assert interval.estimate == pytest.approx(auroc(scores, positive))
    assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0
    # without strata some resamples hold one class only (NaN AUROC): they are dropped
    unstratified = bootstrap_ci(auroc, scores[:3], positive[:3])
    assert np.isnan(unstratified.estimate) and np.isnan(unstratified.low)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_ci(auroc, scores, positive[:3])
