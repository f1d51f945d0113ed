"""The keypoint reward (KAGI) without a simulator: the spec file and its errors, the waypoint
progress, the KAGI transform, the model on drawn frames with real OpenCV tracking, and the
VLM proposal against a real local chat server (well-formed, malformed and empty replies)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from robo_reward.errors import ConfigError, InputError
from robo_reward.keypoint_spec import KeypointSpec, Waypoint, load_spec
from robo_reward.metrics import voc
from robo_reward.models import load_model
from robo_reward.models.keypoints.progress import WaypointTracker
from robo_reward.models.keypoints.propose import find_candidates, grid_tiles
from robo_reward.scoring import Scorer
from robo_reward.shaping import KAGI_DENSE_WEIGHT, OnlineRewards, transform_episode
from robo_reward.types import FrameBatch, Task

pytest.importorskip("cv2")

ROOT = Path(__file__).resolve().parents[1]

SPEC_YAML = """\
keypoints:
  gripper: {pixels: {front: [12, 12]}}
  handle: {pixels: {front: [30, 30]}}
  goal: {pixels: {front: [50, 30]}, track: false}
waypoints:
  - {mover: gripper, target: handle}
  - {mover: handle, target: goal, threshold_px: 3}
threshold_px: 3
scale_px: 10
"""


# -- the spec file ------------------------------------------------------------------------


def test_a_spec_file_reads_and_round_trips(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_YAML)
    spec = load_spec(path)
    assert [w.mover for w in spec.waypoints] == ["gripper", "handle"] and spec.waypoints[1].threshold_px == 3
    assert spec.keypoints["goal"].track is False and spec.keypoints["handle"].pixels == {"front": (30.0, 30.0)}
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_dict()))
    assert load_spec(tmp_path / "spec.json") == KeypointSpec.from_dict(spec.to_dict(), str(tmp_path / "spec.json"))
    assert Task.from_dict(Task("open", keypoints=spec).to_dict()).keypoints.waypoints == spec.waypoints


@pytest.mark.parametrize(("edit", "field"), [
    (("mover: handle, target: goal", "mover: hande, target: goal"), "waypoints[1].mover: unknown keypoint 'hande'"),
    (("front: [30, 30]", "front: [30]"), "keypoints.handle.pixels.front: expected 2 finite numbers"),
    (("threshold_px: 3\n", "threshold_px: -3\n"), "threshold_px: expected a number > 0"),
    (("track: false", "track: maybe"), "keypoints.goal.track: expected true or false"),
    (("waypoints:", "waypoint:"), "waypoint: unknown field"),
    (("mover: handle, target: goal", "mover: goal, target: handle"), "waypoints[1].mover: 'goal' is a fixed place"),
    (("{pixels: {front: [12, 12]}}", "{pixels: {front: [12, 12]}, offset: [0, 0, 1]}"),
     "keypoints.gripper.offset: only applies to a keypoint read from the state"),
    (("{pixels: {front: [12, 12]}}", "{state: [0, 2]}"), "keypoints.gripper.state: expected [start, stop]"),
])
def test_spec_file_errors_name_the_file_and_the_bad_field(tmp_path, edit, field):
    path = tmp_path / "bad.yaml"
    assert edit[0] in SPEC_YAML
    path.write_text(SPEC_YAML.replace(*edit))
    with pytest.raises(InputError) as error:
        load_spec(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_the_documented_example_spec_reads(tmp_path):
    text = (ROOT / "docs" / "keypoints.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "drawer.yaml").write_text(example)
    spec = load_spec(tmp_path / "drawer.yaml")
    assert spec.keypoints["gripper"].state == (0, 3) and spec.cameras["corner"].width == 128
    assert [(w.mover, w.target) for w in spec.waypoints] == [("gripper", "handle"), ("handle", "goal")]


def test_unreadable_and_missing_spec_files_are_named(tmp_path):
    (tmp_path / "broken.yaml").write_text("keypoints: [unclosed")
    with pytest.raises(InputError, match="broken.yaml: not readable"):
        load_spec(tmp_path / "broken.yaml")
    with pytest.raises(InputError, match="keypoint spec not found"):
        load_spec(tmp_path / "none.yaml")
    (tmp_path / "cams.yaml").write_text(SPEC_YAML + "cameras: {front: {intrinsics: [[1, 0], [0, 1]], "
                                        "extrinsics: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "
                                        "width: 64, height: 64}}\n")
    with pytest.raises(InputError, match=r"cams.yaml: cameras.front.intrinsics: expected a finite 3×3"):
        load_spec(tmp_path / "cams.yaml")


# -- progress from waypoints --------------------------------------------------------------


def _tracker(release: float = 2.0) -> WaypointTracker:
    waypoints = (Waypoint("gripper", "handle"), Waypoint("handle", "goal"))
    return WaypointTracker(waypoints, thresholds=np.array([1.0, 1.0]), scales=np.array([4.0, 4.0]), release=release)


def _at(gripper: float, handle: float, goal: float = 10.0) -> dict[str, np.ndarray]:
    return {"gripper": np.array([gripper, 0.0]), "handle": np.array([handle, 0.0]), "goal": np.array([goal, 0.0])}


def test_progress_is_the_waypoint_index_plus_the_closeness_to_the_current_waypoint():
    tracker = _tracker()
    phi, done, _ = tracker.update(_at(0.0, 4.0))            # 4 from the handle: half of the first waypoint
    assert phi == pytest.approx((0 + 4 / (4 + 4)) / 2) and not done
    phi, _, _ = tracker.update(_at(3.5, 4.0))               # reached (0.5 < 1): the handle → goal leg, 6 to go
    assert tracker.reached == 1 and phi == pytest.approx((1 + 4 / (4 + 6)) / 2)
    phi, done, _ = tracker.update(_at(9.6, 9.8))            # handle within 1 of the goal: success
    assert (phi, done, tracker.reached) == (1.0, True, 2)
    phi, done, _ = tracker.update(_at(8.0, 8.5))            # the handle leaves the goal: the last waypoint is undone
    assert not done and tracker.reached == 1 and phi == pytest.approx((1 + 4 / (4 + 1.5)) / 2)


def test_a_grasp_is_let_go_only_beyond_the_release_distance_and_unknown_positions_change_nothing():
    tracker = _tracker(release=2.0)
    tracker.update(_at(3.5, 4.0))
    tracker.update(_at(2.5, 4.0))                           # 1.5 apart: within release · threshold = 2
    assert tracker.reached == 1
    phi, _, _ = tracker.update({"gripper": np.array([np.nan, np.nan]), "handle": np.array([4.0, 0.0]),
                                "goal": np.array([10.0, 0.0])})
    assert tracker.reached == 1 and np.isfinite(phi)        # the carried handle is known, the index holds
    tracker.update(_at(0.0, 4.0))                           # 4 apart: let go
    assert tracker.reached == 0


def test_a_hidden_grasped_point_moves_with_its_holder():
    tracker = _tracker()
    tracker.update(_at(3.5, 4.0))                           # grasped with the handle 0.5 ahead
    _, _, positions = tracker.update({"gripper": np.array([7.0, 0.0]), "handle": np.array([np.nan, np.nan]),
                                      "goal": np.array([10.0, 0.0])})
    np.testing.assert_allclose(positions["handle"], [7.5, 0.0])


def test_an_episode_that_starts_done_starts_at_the_last_waypoint_reached():
    tracker = _tracker()
    phi, done, _ = tracker.update(_at(9.5, 9.8))            # a reversed episode: the handle is at the goal
    assert done and phi == 1.0


# -- the KAGI transform -------------------------------------------------------------------


def test_kagi_pays_the_sparse_success_where_it_is_one_else_the_weighted_dense_progress():
    rewards = OnlineRewards("kagi", gamma=0.99, num_streams=3)
    rewards.reset(np.array([0.1, 0.2, 0.3]))
    got = rewards.step(np.array([0.4, 0.9, 1.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]), np.zeros(3, bool),
                       np.zeros(3, bool))
    np.testing.assert_allclose(got, [KAGI_DENSE_WEIGHT * 0.4, 1.0, KAGI_DENSE_WEIGHT * 1.0])
    # offline, without a sparse reward, the model's own success stands in for KAGI's classifier
    progress, success = np.array([0.2, 0.6, 1.0]), np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(transform_episode("kagi", progress, success), [0.3, 1.0, 1.0])
    np.testing.assert_allclose(transform_episode("kagi", progress, success, sparse=np.zeros(3)), [0.3, 0.5, 0.5])


# -- the model on drawn frames ----------------------------------------------------------------


def _scene(length: int, reverse: bool = False) -> tuple[FrameBatch, KeypointSpec]:
    """A textured floor; a square 'gripper' goes beside a round 'handle', then carries it to a goal."""
    import cv2

    rng = np.random.default_rng(0)
    floor = cv2.GaussianBlur(rng.integers(60, 200, (64, 64, 3)).astype(np.uint8), (3, 3), 0)
    half = length // 2
    path_gripper = [np.array([10.0, 12.0]) + np.array([13.0, 18.0]) * min(t / half, 1.0)
                    + np.array([20.0, 0.0]) * max(0.0, (t - half) / (length - half - 1)) for t in range(length)]
    path_handle = [np.array([30.0, 30.0]) + np.array([20.0, 0.0]) * max(0.0, (t - half) / (length - half - 1))
                   for t in range(length)]
    frames = []
    for t in range(length):
        image = floor.copy()
        (hu, hv), (gu, gv) = np.round(path_handle[t]).astype(int), np.round(path_gripper[t]).astype(int)
        cv2.circle(image, (hu, hv), 4, (240, 60, 40), -1)
        cv2.circle(image, (hu, hv), 1, (20, 20, 20), -1)
        cv2.rectangle(image, (gu - 4, gv - 4), (gu + 4, gv + 4), (40, 200, 230), -1)
        cv2.line(image, (gu - 4, gv), (gu + 4, gv), (30, 30, 120), 1)
        frames.append(image)
    order = slice(None, None, -1) if reverse else slice(None)
    frames = np.stack(frames)[order]
    start = -1 if reverse else 0
    # the gripper (a square) stops beside the handle, its centre 7 px from the handle's
    spec = KeypointSpec.from_dict({
        "keypoints": {"gripper": {"pixels": {"front": path_gripper[start].tolist()}},
                      "handle": {"pixels": {"front": path_handle[start].tolist()}},
                      "goal": {"pixels": {"front": [50, 30]}, "track": False}},
        "waypoints": [{"mover": "gripper", "target": "handle", "threshold_px": 8},
                      {"mover": "handle", "target": "goal", "threshold_px": 2}]}, "drawn scene")
    batch = FrameBatch(views={"front": frames}, timestamps_ns=np.arange(length) * 50_000_000,
                       frame_index=np.arange(length)[order], source="drawn episode")
    return batch, spec


def test_the_model_tracks_drawn_keypoints_and_its_progress_rises_forward_and_falls_backward():
    for reverse, sign in ((False, 1), (True, -1)):
        batch, spec = _scene(40, reverse)
        scores = Scorer(load_model("keypoint"), Task("carry the handle to the goal", keypoints=spec),
                        batch_size=16).score(batch)
        assert sign * voc(scores.progress) > 0.9, scores.progress.round(2)
        assert scores.success[-1 if not reverse else 0] == 1.0 and scores.success[0 if not reverse else -1] == 0.0
        np.testing.assert_array_equal(scores.per_view["front"], scores.progress)  # one view: its own progress


def test_the_model_refuses_to_guess_keypoints_and_a_spec_marked_on_another_frame(tmp_path):
    batch, spec = _scene(8)
    with pytest.raises(ConfigError, match="no keypoints for this task: give --option keypoints=FILE"):
        Scorer(load_model("keypoint"), Task("open")).score(batch)
    marked = KeypointSpec.from_dict({**spec.to_dict(), "frame": 5}, "spec.yaml")
    with pytest.raises(ConfigError, match="marks frame 5, but this episode starts at frame 0"):
        Scorer(load_model("keypoint"), Task("open", keypoints=marked)).score(batch)
    with pytest.raises(ConfigError, match="not both"):
        load_model("keypoint", keypoints=str(tmp_path / "x.yaml"), propose=True)
    with pytest.raises(ConfigError, match=r"vlm=\{'url': 'x'\}.*vlm options: protocol, backend, base_url"):
        load_model("keypoint", propose=True, vlm={"url": "x"})


def test_the_proposal_takes_the_vlm_model_s_options_as_one_mapping():
    from robo_reward.models.keypoints.model import KeypointConfig
    from robo_reward.models.options import parse_options

    options = parse_options(KeypointConfig, ["propose=true", 'vlm={base_url: "http://gpu:8000/v1", model: q}'])
    assert options == {"propose": True, "vlm": {"base_url": "http://gpu:8000/v1", "model": "q"}}


# -- the VLM proposal ---------------------------------------------------------------------------


def _first_set() -> FrameBatch:
    batch, _ = _scene(4)
    return batch.select(np.array([0, 1, 2, 3]))


def _answer(text: str):
    from vlm_server import chat_body

    return lambda payload, call: (200, chat_body(text), 0.0)


WELL_FORMED = ('Thinking first.\n```json\n{"reasoning": "the square grips", "gripper": "P1", "grasp": "P2", '
               '"target": "c2", // a tile\n "pre_contact": null, "post_contact": "d2"}\n```')


def test_a_vlm_picks_numbered_candidates_and_a_tile_and_the_spec_holds_their_pixels(serve):
    from vlm_server import decode, parts_of

    from robo_reward.models.keypoints.model import KeypointConfig
    from robo_reward.models.keypoints.propose import Proposer

    server = serve(_answer(WELL_FORMED))
    first = _first_set().select(np.array([0]))
    config = KeypointConfig(propose=True, vlm={"base_url": server.base_url, "model": "tiny-vlm"}, mark_size=256)
    (spec,) = Proposer(config).propose(Task("carry the handle to the goal"), [first], "drawn episode")
    (prompt, image) = parts_of(server.payloads[0])
    assert "carry the handle to the goal" in prompt["text"] and "P1 to P" in prompt["text"]
    marked = decode(image)
    candidates = find_candidates(first.views["front"][0], config.candidates)
    u, v = np.round((candidates[0] + 0.5) * 4 - 0.5).astype(int)
    assert marked.shape[:2] == (256, 256) and marked[v, u, 0] > 150 and marked[v, u, 1] < 110  # a red mark
    kp = spec.keypoints
    np.testing.assert_allclose(kp["gripper"].pixels["front"], candidates[0])
    np.testing.assert_allclose(kp["grasp"].pixels["front"], candidates[1])
    np.testing.assert_allclose(kp["target"].pixels["front"], grid_tiles(64, 64, 5)["c2"])
    assert kp["target"].track is False and "pre_contact" not in kp and "tiny-vlm" in spec.source
    assert [(w.mover, w.target) for w in spec.waypoints] == [
        ("gripper", "grasp"), ("grasp", "target"), ("grasp", "post_contact")]


def test_the_model_asks_once_per_episode_and_scores_with_the_proposal(serve):
    server = serve(_answer(WELL_FORMED))
    model = load_model("keypoint", propose=True, vlm={"base_url": server.base_url, "model": "tiny-vlm"})
    scorer = Scorer(model, Task("carry"), batch_size=2, num_streams=2)
    batch = _first_set()
    scores = scorer.score(batch, streams=[0, 1, 0, 1])
    assert server.calls == 2 and np.isfinite(scores.progress).all()  # two episodes, each asked once
    scorer.score(batch, streams=[0, 1, 0, 1])
    assert server.calls == 2  # the proposals stay in the episodes' contexts


def test_a_malformed_answer_is_asked_again_hotter_and_then_used(serve):
    replies = ['{"gripper": "P1", "grasp": "P99", "target": "c2"}', WELL_FORMED]
    from vlm_server import chat_body

    server = serve(lambda payload, call: (200, chat_body(replies[min(call, 1)]), 0.0))
    model = load_model("keypoint", propose=True, vlm={"base_url": server.base_url, "model": "tiny-vlm",
                                                      "parse_retries": 1})
    Scorer(model, Task("carry")).score(_first_set())
    assert server.calls == 2
    assert server.payloads[1]["temperature"] > server.payloads[0]["temperature"]


@pytest.mark.parametrize(("reply", "reason"), [
    ("I would grasp the red ball.", "no JSON object"),
    ('```json\n{"gripper": "P1", "grasp": "P1", "target": "a1"}\n```', "gripper and grasp name the same"),
    ('{"gripper": "P1", "grasp": "P2", "target": "z9"}', "'target': 'z9' is not a candidate or a tile"),
    ('{"gripper": "P1", "grasp": "P2", "target": "c2", "speed": 3}', "unknown key(s) ['speed']"),
    ("", "empty answer"),
])
def test_an_unusable_answer_stops_with_the_episode_and_the_raw_answer_never_a_default(serve, reply, reason):
    from vlm_server import chat_body

    server = serve(lambda payload, call: (200, chat_body(reply), 0.0))
    model = load_model("keypoint", propose=True, vlm={"base_url": server.base_url, "model": "tiny-vlm",
                                                      "parse_retries": 2})
    with pytest.raises(InputError) as error:
        Scorer(model, Task("carry")).score(_first_set())
    message = str(error.value)
    assert server.calls == 3 and "drawn episode" in message and "view 'front'" in message
    assert reason in message and f"raw answer: {reply[:40]!r}"[:-1] in message


# -- the measurements in the docs -------------------------------------------------------------


def test_the_docs_show_the_measured_results_of_the_committed_json():
    from robo_reward.atomic import marked_block

    spec = importlib.util.spec_from_file_location("eval_keypoints", ROOT / "sim" / "eval_keypoints.py")
    script = sys.modules.setdefault("eval_keypoints", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(script)
    results = json.loads((ROOT / "sim" / "results" / "keypoints_eval.json").read_text())
    assert marked_block(ROOT / "docs" / "keypoints.md", script.DOCS_BLOCK) == script.markdown(results)
    assert results["format"] == script.FORMAT and len(results["settings"]["tasks"]) >= 3
    assert results["settings"]["image_size"] == 128
