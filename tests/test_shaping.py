import numpy as np
import pytest

from robo_reward.errors import ConfigError
from robo_reward.shaping import (
    TRANSFORMS,
    PotentialShaper,
    check_gamma,
    shape_episode,
    shape_potential,
    transform_episode,
)


def discounted(rewards: np.ndarray, gamma: float) -> float:
    return float(np.sum(rewards * gamma ** np.arange(len(rewards))))


@pytest.mark.parametrize("seed", range(5))
def test_shaped_return_differs_by_minus_phi0_on_termination(seed):
    rng = np.random.default_rng(seed)
    gamma = 0.97
    phi = rng.uniform(0, 1, size=21)  # Φ(s_0) … Φ(s_T); s_T is terminal
    task = rng.normal(size=20)
    terminated = np.zeros(20, dtype=bool)
    terminated[-1] = True
    shaped = shape_potential(phi[:-1], phi[1:], task, terminated, gamma)
    assert discounted(shaped, gamma) == pytest.approx(discounted(task, gamma) - phi[0], abs=1e-12)


def test_truncation_keeps_phi_of_the_last_state():
    gamma = 0.9
    phi = np.array([0.1, 0.4, 0.8])
    task = np.zeros(2)
    shaped = shape_potential(phi[:-1], phi[1:], task, np.zeros(2, dtype=bool), gamma)
    # Truncated return telescopes to γ^T Φ(s_T) − Φ(s_0): Φ(s_T) is not zeroed.
    assert discounted(shaped, gamma) == pytest.approx(gamma**2 * phi[-1] - phi[0])
    terminated = shape_potential(phi[:-1], phi[1:], task, np.array([False, True]), gamma)
    assert terminated[-1] == pytest.approx(-phi[1])
    assert shaped[-1] == pytest.approx(gamma * phi[2] - phi[1])


def test_stream_shaper_reuses_cached_phi_and_resets_per_stream():
    shaper = PotentialShaper(gamma=0.5, num_streams=2)
    shaper.reset(np.array([0.2, 0.0]))
    r1 = shaper.step(np.array([0.6, 0.4]), task_reward=0.0, terminated=np.array([False, True]),
                     truncated=np.array([False, False]))
    np.testing.assert_allclose(r1, [0.5 * 0.6 - 0.2, 0.0 - 0.0])
    assert np.isnan(shaper.potential[1]) and shaper.potential[0] == pytest.approx(0.6)
    with pytest.raises(ConfigError):
        shaper.step(np.array([0.7, 0.1]), 0.0, np.array([False, False]), np.array([False, False]))
    shaper.reset(0.3, streams=np.array([1]))
    r2 = shaper.step(np.array([0.7, 0.1]), 1.0, np.array([False, False]), np.array([False, True]))
    np.testing.assert_allclose(r2, [1 + 0.5 * 0.7 - 0.6, 1 + 0.5 * 0.1 - 0.3])


def test_shape_episode_end_modes():
    progress = np.array([0.0, 0.5, 1.0])
    truncated = shape_episode(progress, 0.9)
    terminated = shape_episode(progress, 0.9, terminated=True)
    assert truncated[-1] == pytest.approx(0.9 * 1.0 - 1.0)
    assert terminated[-1] == pytest.approx(-1.0)
    np.testing.assert_allclose(truncated[:2], [0.45, 0.4])


def test_gamma_checks():
    with pytest.raises(ConfigError, match="learner"):
        check_gamma(0.99, learner_gamma=0.98)
    with pytest.raises(ConfigError):
        PotentialShaper(gamma=1.5)
    check_gamma(0.99, learner_gamma=0.99)


def test_transforms_are_listed_apart_and_say_they_change_the_policy():
    for name, fn in TRANSFORMS.items():
        assert "Changes the optimal policy" in fn.__doc__ or "CHANGES" in fn.__doc__, name
    assert "shaped" not in TRANSFORMS


def test_strided_labels_discount_each_transition_by_gamma_to_the_frames_spanned():
    progress = np.array([0.0, 0.4, 0.7, 1.0])
    frames = np.array([0, 3, 6, 8])
    got = shape_episode(progress, 0.9, frame_index=frames)
    np.testing.assert_allclose(got, [0.9**3 * 0.4, 0.9**3 * 0.7 - 0.4, 0.9**2 * 1.0 - 0.7, 0.9**2 * 1.0 - 1.0])
    # the strided rewards telescope like the per-frame ones: Σ γ^t r_t over the samples
    # equals γ^(frames) Φ(end) − Φ(start) along the recording's own time
    dense = np.linspace(0, 1, 9)
    per_frame = shape_episode(dense, 0.9)
    strided = shape_episode(dense[::2], 0.9, frame_index=np.arange(0, 9, 2))
    discount = 0.9 ** np.arange(9)
    np.testing.assert_allclose((discount * per_frame)[:8].sum(), (discount[::2] * strided)[:4].sum())
    with pytest.raises(ConfigError, match="increase"):
        shape_episode(progress, 0.9, frame_index=np.array([0, 2, 2, 3]))


def test_transforms_reward_the_transition_like_the_shaping():
    progress, success = np.array([0.1, 0.5, 0.3]), np.array([0.0, 0.9, 0.2])
    np.testing.assert_allclose(transform_episode("progress", progress, success), [0.5, 0.3, 0.3])
    np.testing.assert_allclose(transform_episode("delta", progress, success), [0.4, -0.2, 0.0])
    np.testing.assert_allclose(transform_episode("success-bonus", progress, success), [1.5, 0.3, 0.3])
