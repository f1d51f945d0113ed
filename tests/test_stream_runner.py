"""The live runner with a real fitted reward model: one record per set, degradation, shaping,
task changes, model errors — driven synchronously through ``process`` (no sleeps)."""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import pytest

from robo_reward.errors import ConfigError, MalformedMessage
from robo_reward.models.base import RewardModel
from robo_reward.ros2.pattern import fit_pattern_model, pattern_image
from robo_reward.stream.runner import LiveRewardStream, RewardRecord, StreamConfig
from robo_reward.types import EpisodeContext, FrameBatch, Scores, Task

VIEWS = ("front", "wrist")
MS = 1_000_000
PERIOD = 100 * MS


@pytest.fixture(scope="module")
def model() -> RewardModel:
    return fit_pattern_model(VIEWS)


@dataclass(frozen=True)
class Frame:
    """A pattern frame: phase and view pick the pixels; ``broken`` makes decoding fail."""

    stamp_ns: int
    view_index: int
    phase: float
    broken: bool = False
    crash: bool = False

    def decode(self) -> np.ndarray:
        if self.broken:
            raise MalformedMessage("image file is truncated", "corrupt")
        if self.crash:
            raise MemoryError("decoder bug")
        return pattern_image(self.view_index, self.phase)


class Recorder(list):
    def __call__(self, record: RewardRecord) -> None:
        self.append(record)


def make_stream(model: RewardModel, **options) -> tuple[LiveRewardStream, Recorder]:
    records = Recorder()
    config = StreamConfig(views=VIEWS, **options)
    return LiveRewardStream(model, Task("slide the square"), config, records, clock_ns=lambda: 0), records


def push_set(stream: LiveRewardStream, k: int, views=VIEWS, broken=()) -> None:
    for view in views:
        stream.push(view, Frame(k * PERIOD, VIEWS.index(view), (k % 10) / 9, view in broken))


def drain(stream: LiveRewardStream) -> None:
    while stream.process(timeout_s=0.0):
        pass


def direct_scores(model: RewardModel, phases: list[float], valid: dict[str, bool] | None = None) -> Scores:
    batch = FrameBatch(
        views={v: np.stack([pattern_image(i, p) for p in phases]) for i, v in enumerate(VIEWS)},
        timestamps_ns=np.arange(len(phases)),
        view_valid=None if valid is None else {v: np.full(len(phases), ok) for v, ok in valid.items()},
    )
    return model.score(batch, Task("slide the square"))


def test_every_set_gets_one_record_equal_to_the_model(model):
    stream, records = make_stream(model, max_batch=4)
    for k in range(10):
        push_set(stream, k)
    drain(stream)
    assert [r.stamp_ns for r in records] == [k * PERIOD for k in range(10)]
    assert stream.batches == 3  # micro-batches of 4, 4, 2 sets
    expected = direct_scores(model, [k / 9 for k in range(10)])
    np.testing.assert_allclose([r.progress for r in records], expected.progress, atol=1e-6)
    np.testing.assert_allclose([r.success_probability for r in records], expected.success, atol=1e-6)
    np.testing.assert_allclose([r.view_progress[1] for r in records], expected.per_view["wrist"], atol=1e-6)
    assert all(r.valid and r.status == "" and r.view_valid == (True, True) for r in records)
    assert records[-1].progress > 0.9 and records[0].progress < 0.1  # the square slid across


def test_rewards_are_potential_shaped_within_an_episode(model):
    stream, records = make_stream(model, gamma=0.9)
    for k in range(4):
        push_set(stream, k)
    drain(stream)
    stream.reset_episode()
    for k in range(4, 7):
        push_set(stream, k)
    drain(stream)
    assert [r.episode for r in records] == [0] * 4 + [1] * 3
    assert [r.step for r in records] == [0, 1, 2, 3, 0, 1, 2]
    for episode in (records[:4], records[4:]):
        assert episode[0].reward == 0.0
        for prev, cur in itertools.pairwise(episode):
            assert cur.reward == pytest.approx(0.9 * cur.progress - prev.progress)


def test_a_task_change_takes_effect_and_starts_an_episode(model):
    stream, records = make_stream(model)
    push_set(stream, 0)
    drain(stream)
    stream.set_task(Task("close the drawer"))
    push_set(stream, 1)
    drain(stream)
    assert [(r.task, r.episode, r.reward) for r in records] == [
        ("slide the square", 0, 0.0), ("close the drawer", 1, 0.0)]


def test_stale_view_is_flagged_and_raises_uncertainty_then_recovers(model):
    stream, records = make_stream(model, stale_timeout_s=0.25)
    for k in range(3):
        push_set(stream, k)
    for k in range(3, 9):
        push_set(stream, k, views=("front",))
    for k in range(9, 11):
        push_set(stream, k)
    drain(stream)
    degraded = [r for r in records if not r.view_valid[1]]
    healthy = [r for r in records if r.view_valid == (True, True)]
    assert degraded and all(r.valid and "view 'wrist' stale" in r.status for r in degraded)
    assert all(math.isnan(r.view_progress[1]) for r in degraded)
    assert all(r.source_stamps_ns[1] == 2 * PERIOD for r in degraded)  # the wrist's last image
    assert min(r.uncertainty for r in degraded) > max(r.uncertainty for r in healthy)
    assert [r.stamp_ns for r in records[-2:]] == [9 * PERIOD, 10 * PERIOD] and records[-1].view_valid == (True, True)
    expected = direct_scores(model, [r.stamp_ns / PERIOD % 10 / 9 for r in degraded], {"front": True, "wrist": False})
    np.testing.assert_allclose([r.progress for r in degraded], expected.progress, atol=1e-6)
    np.testing.assert_allclose([r.uncertainty for r in degraded], expected.uncertainty, atol=1e-6)
    report = stream.diagnostics()
    assert report["degraded_sets"] == len(degraded) and report["views"]["wrist"]["stale"] is False


def test_unreadable_frames_are_refused_on_arrival_and_never_matched(model):
    stream, records = make_stream(model)
    push_set(stream, 0, broken=("wrist",))
    push_set(stream, 1, broken=("front", "wrist"))
    push_set(stream, 2)
    drain(stream)
    assert [(r.stamp_ns, r.valid, r.view_valid) for r in records] == [(2 * PERIOD, True, (True, True))]
    assert stream.malformed == {"front": 1, "wrist": 2}
    views = stream.diagnostics()["views"]
    assert views["front"]["malformed_reasons"] == {"corrupt": 1}
    assert views["wrist"]["malformed_reasons"] == {"corrupt": 2}
    assert views["front"]["received"] == 2  # only frames that decode reach the synchroniser


def test_a_broken_frame_does_not_take_the_place_of_a_good_one(model):
    stream, records = make_stream(model)
    stream.push("front", Frame(0, 0, 0.5))
    stream.push("wrist", Frame(PERIOD // 4, 1, 0.5, broken=True))  # within the slop: it would have made a set
    stream.push("wrist", Frame(0, 1, 0.5))
    drain(stream)
    (record,) = records
    assert record.stamp_ns == 0 and record.view_valid == (True, True) and record.status == ""


def test_a_crashing_decoder_refuses_its_frame_and_the_stream_goes_on(model):
    stream, records = make_stream(model)
    stream.push("front", Frame(0, 0, 0.5))
    stream.push("wrist", Frame(0, 1, 0.5, crash=True))
    push_set(stream, 1)
    drain(stream)
    assert [(r.stamp_ns, r.view_valid) for r in records] == [(PERIOD, (True, True))]
    assert stream.diagnostics()["views"]["wrist"]["malformed_reasons"] == {"decoder_error": 1}


def test_a_frame_stamped_far_ahead_of_the_clock_is_refused_and_does_not_stall_the_stream(model):
    stream, records = make_stream(model)  # its clock reads 0
    push_set(stream, 0)
    stream.push("front", Frame(3600 * 10**9, 0, 0.5))  # an hour ahead: every later set would be "out of order"
    push_set(stream, 1)
    drain(stream)
    assert [r.stamp_ns for r in records] == [0, PERIOD]
    assert stream.diagnostics()["views"]["front"]["malformed_reasons"] == {"future_stamp": 1}
    unlimited, records = make_stream(model, max_future_s=0.0)
    unlimited.push("front", Frame(3600 * 10**9, 0, 0.5))
    assert unlimited.diagnostics()["views"]["front"]["received"] == 1


class FlakyModel(RewardModel):
    """The pattern model, except that it fails on any set stamped in ``bad``."""

    name = "flaky"

    def __init__(self, inner: RewardModel, bad: set[int]) -> None:
        super().__init__(inner.config)
        self.inner, self.bad = inner, bad

    def _score(self, batch, task, reference):
        if set(batch.timestamps_ns.tolist()) & self.bad:
            raise RuntimeError("CUDA out of memory")
        return self.inner._score(batch, task, reference)


def test_a_model_error_invalidates_only_its_set_and_the_stream_goes_on(model):
    stream, records = make_stream(FlakyModel(model, {2 * PERIOD}), max_batch=8)
    for k in range(5):
        push_set(stream, k)
    drain(stream)
    assert [r.valid for r in records] == [True, True, False, True, True]
    bad = records[2]
    assert "model error: RuntimeError: CUDA out of memory" in bad.status
    assert math.isnan(bad.reward) and math.isnan(bad.progress) and bad.view_valid == (False, False)
    # shaping continues across the invalid set from the last valid potential
    assert records[3].reward == pytest.approx(0.99 * records[3].progress - records[1].progress)
    assert stream.diagnostics()["model_errors"] == 1


def test_pending_sets_beyond_capacity_drop_the_oldest(model):
    stream, records = make_stream(model, max_pending=3, max_batch=8)
    for k in range(6):
        push_set(stream, k)
    drain(stream)
    assert [r.stamp_ns for r in records] == [3 * PERIOD, 4 * PERIOD, 5 * PERIOD]
    assert stream.diagnostics()["dropped_pending"] == 3


def test_max_rate_throttles_by_stamp(model):
    stream, records = make_stream(model, max_rate_hz=4.0)
    for k in range(8):
        push_set(stream, k)
    drain(stream)
    assert [r.stamp_ns // PERIOD for r in records] == [0, 3, 6]
    assert stream.throttled == 5


def test_worker_thread_and_json_diagnostics(model):
    stream, records = make_stream(model)
    stream.start()
    try:
        for k in range(5):
            push_set(stream, k)
        deadline = time.monotonic() + 30.0
        while len(records) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stream.stop()
    assert len(records) == 5
    report = json.loads(json.dumps(stream.diagnostics(), allow_nan=False))
    assert report["published"] == 5 and report["sets"] == 5 and report["views"]["front"]["received"] == 5
    assert report["latency_ms"]["model_forward"]["p50"] > 0


def test_stream_config_is_checked():
    with pytest.raises(ConfigError, match="max_batch=0"):
        StreamConfig(views=VIEWS, max_batch=0)
    with pytest.raises(ConfigError):
        StreamConfig(views=())
    with pytest.raises(ConfigError, match="gamma"):
        StreamConfig(views=VIEWS, gamma=1.5)


def test_models_that_use_context_get_the_episodes_first_set():
    from robo_reward.assets import DEFAULT_MODEL
    from robo_reward.models import load_model

    context_model = load_model(DEFAULT_MODEL)
    assert context_model.uses_context
    views = context_model.expected_views
    task = Task("open the drawer")
    records = Recorder()
    stream = LiveRewardStream(context_model, task, StreamConfig(views=views, max_batch=3), records,
                              clock_ns=lambda: 0)
    phases = [k / 5 for k in range(6)]
    for k, phase in enumerate(phases):
        for i, view in enumerate(views):
            stream.push(view, Frame(k * PERIOD, i, phase))
    drain(stream)
    batch = FrameBatch(views={v: np.stack([pattern_image(i, p) for p in phases]) for i, v in enumerate(views)},
                       timestamps_ns=np.arange(len(phases)) * PERIOD)
    with_context = context_model.score(batch, task, EpisodeContext.starting_with(batch)).progress
    without = context_model.score(batch, task, EpisodeContext.starting_with(batch, -1)).progress
    got = np.array([r.progress for r in records])
    assert len(got) >= 5
    np.testing.assert_allclose(got, with_context[: len(got)], atol=1e-5)
    assert not np.allclose(with_context, without)
