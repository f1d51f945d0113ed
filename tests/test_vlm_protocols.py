"""The dopamine, roboreward, vlac and topreward protocols of the ``vlm`` model against a
real chat-completions server on 127.0.0.1: what each request holds (images in order and
number, prompt text, options), how answers are read, and the accumulation formulas
against hand computations."""

from __future__ import annotations

import base64
import io
import json
import math

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from vlm_server import chat_body, decode, parts_of, shade

from robo_reward.errors import ConfigError, InputError
from robo_reward.labels import LabelConfig, score_backwards
from robo_reward.models import load_model
from robo_reward.models.vlm import dopamine, roboreward, topreward, vlac
from robo_reward.models.vlm.client import Completion, TokenLogprob
from robo_reward.types import EpisodeContext, FrameBatch, Task

TASK = Task("open the drawer")


def level(image: np.ndarray) -> int:
    """Frames here are solid grey 20 + 20·k: k."""
    return round((float(image.mean()) - 20) / 20)


def batch_of(ks: list[int], start: int = 0, views: tuple[str, ...] = ("front",)) -> FrameBatch:
    """Samples at levels ``ks``; sample j is frame (start + j) at (start + j)·0.5 s."""
    index = np.arange(start, start + len(ks))
    return FrameBatch(views={v: np.stack([shade(20 + 20 * k) for k in ks]) for v in views},
                      timestamps_ns=index * 500_000_000, frame_index=index, source="episode 'ep3'")


def context_of(batch: FrameBatch) -> EpisodeContext:
    return EpisodeContext.starting_with(batch, 0)


def model(server, protocol: str, **options):
    return load_model("vlm", protocol=protocol, base_url=server.base_url, image_size=32, backoff_s=0.01,
                      timeout_s=5.0, **options)


def images_of(payload: dict) -> list[np.ndarray]:
    return [decode(p) for m in payload["messages"] for p in m["content"] if p["type"] == "image_url"]


def last_frame_level(payload: dict) -> int:
    """The level of the last frame of the request's clip (requests are in flight at once: sort by it)."""
    return level(clip_of(next(p for p in parts_of(payload) if p["type"] == "video_url"))[-1])


def clip_of(part: dict) -> np.ndarray:
    url = part["video_url"]["url"]
    assert url.startswith("data:video/mp4;base64,")
    with av.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def logprob_tokens(*tokens: tuple[str, dict[str, float]]) -> list[dict]:
    """Chat-completions logprobs content: (chosen token, {alternative: probability})."""
    return [{"token": t, "logprob": math.log(top[t]) if t in top else -9.0,
             "top_logprobs": [{"token": k, "logprob": math.log(p)} for k, p in top.items()]} for t, top in tokens]


# -- dopamine ------------------------------------------------------------------------------


def dopamine_answer(payload: dict, call: int):
    """hop = 10·(AFTER front level − BEFORE front level) %."""
    images = images_of(payload)
    return 200, chat_body(f"<score>{10 * (level(images[5]) - level(images[2])):+d}%</score>"), 0.0


def test_a_dopamine_request_is_the_released_prompt_around_eight_images_in_order(serve, tmp_path):
    server = serve(dopamine_answer)
    Image.fromarray(shade(220)).save(tmp_path / "goal.png")
    batch = batch_of([0, 2, 5], views=("front", "wrist"))
    batch.views["wrist"] = batch.views["wrist"] // 2  # distinguishable from the front view
    model(server, "dopamine", modes="incremental", goal_image=str(tmp_path / "goal.png")).score(
        batch, TASK, context_of(batch))
    assert server.calls == 2  # the first set is not asked about
    first, second = sorted(server.payloads, key=lambda payload: float(images_of(payload)[5].mean()))  # in flight at once
    parts = parts_of(second)
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert len(texts) == 9 and "".join(texts) == dopamine.PROMPT.format(task="open the drawer").replace("<image>", "")
    assert [p["type"] for p in parts] == ["text", "image_url"] * 8 + ["text"]
    means = [round(float(image.mean())) for image in images_of(second)]
    # REFERENCE START (the first set's front), END (the goal), BEFORE front / wrist / front again (two views: the
    # first repeats), AFTER the same of sample 2
    assert means == [20, 220, 60, 30, 60, 120, 60, 120]
    assert second["temperature"] == 0.1 and second["top_p"] == 0.9 and second["top_k"] == 50
    assert second["max_tokens"] == 1024
    assert [round(float(i.mean())) for i in images_of(first)][2:] == [20, 10, 20, 60, 30, 60]


def test_dopamine_progress_is_the_mean_of_the_released_estimates(serve, tmp_path):
    server = serve(dopamine_answer)
    Image.fromarray(shade(220)).save(tmp_path / "goal.png")  # level 10
    ks = [0, 3, 5, 4, 8]
    batch = batch_of(ks)
    scores = model(server, "dopamine", modes="incremental,forward,backward",
                   goal_image=str(tmp_path / "goal.png")).score(batch, TASK, context_of(batch))
    # by hand: hops 0.3, 0.2, -0.1, 0.4 (incremental); forward 0.3, 0.5, 0.4, 0.8; backward 1 + 10·(k − 10)%
    incremental = [0.0, 0.3, 0.3 + 0.7 * 0.2, 0.44 - 0.44 * 0.1, 0.396 + (1 - 0.396) * 0.4]
    forward = [0.0, 0.3, 0.5, 0.4, 0.8]
    backward = [1 + 0.1 * (k - 10) for k in ks]
    expected = np.clip(np.mean([incremental, forward, backward], axis=0), 0, 1)
    np.testing.assert_allclose(scores.progress, expected)
    np.testing.assert_allclose(scores.success, expected)
    assert scores.per_view == {}  # the GRM judges all views at once


def test_dopamine_keeps_its_chain_across_batches_of_one_episode(serve):
    server = serve(dopamine_answer)
    whole = batch_of([0, 3, 5, 4, 8])
    at_once = model(server, "dopamine").score(whole, TASK, context_of(whole)).progress
    piecewise_model = model(server, "dopamine")
    context = context_of(whole)
    pieces = [piecewise_model.score(whole.select(np.arange(a, b)), TASK, context).progress
              for a, b in ((0, 2), (2, 3), (3, 5))]
    np.testing.assert_allclose(np.concatenate(pieces), at_once)
    assert piecewise_model.sequential


def test_the_incremental_formula_matches_the_released_code():
    assert dopamine.incremental_progress(None, -0.2) == -0.2  # the first pair is taken as it is
    assert dopamine.incremental_progress(0.5, 0.5) == 0.75
    assert dopamine.incremental_progress(0.5, -0.5) == 0.25
    assert dopamine.parse_hop("thinking… <score>+35%</score>") == 0.35
    assert dopamine.parse_hop("<score>-140%</score>") == -1.0
    for bad in ("35%", "<score>much</score>", ""):
        with pytest.raises(ValueError):
            dopamine.parse_hop(bad)


def test_dopamine_backward_without_a_goal_and_more_than_three_views_are_refused(serve):
    server = serve(dopamine_answer)
    batch = batch_of([0, 1])
    with pytest.raises(ConfigError, match="goal_image"):
        model(server, "dopamine", modes="backward").score(batch, TASK, context_of(batch))
    four = batch_of([0, 1], views=("a", "b", "c", "d"))
    with pytest.raises(ConfigError, match="up to three views"):
        model(server, "dopamine").score(four, TASK, context_of(four))
    with pytest.raises(ConfigError, match="modes"):
        model(server, "dopamine", modes="sideways")


# -- roboreward ----------------------------------------------------------------------------


def roboreward_answer(payload: dict, call: int):
    """ANSWER: 1 + (level of the clip's last frame) // 2."""
    clip = clip_of(parts_of(payload)[1])
    return 200, chat_body(f"ANSWER: {min(5, 1 + level(clip[-1]) // 2)}"), 0.0


def test_a_roboreward_request_is_the_model_cards_prompt_then_the_growing_clip(serve):
    server = serve(roboreward_answer)
    ks = [0, 2, 4, 6, 8, 8]
    batch = batch_of(ks)  # frames every 0.5 s: the 1 fps clip keeps every other one
    scores = model(server, "roboreward").score(batch, TASK, context_of(batch))
    assert server.calls == len(ks)
    payloads = sorted(server.payloads, key=lambda p: len(clip_of(parts_of(p)[1])))
    parts = parts_of(payloads[-1])
    assert [p["type"] for p in parts] == ["text", "video_url"]
    assert parts[0]["text"] == roboreward.PROMPT.format(task="open the drawer")
    assert parts[0]["text"].endswith("Task: open the drawer")
    assert [level(f) for f in clip_of(parts[1])] == [0, 4, 8, 8]  # kept at 1 fps, then the current frame
    assert [len(clip_of(parts_of(p)[1])) for p in payloads] == [2, 2, 2, 3, 3, 4]  # one frame is shown twice
    np.testing.assert_allclose(scores.progress, [(min(5, 1 + k // 2) - 1) / 4 for k in ks])
    np.testing.assert_allclose(scores.success, [float(min(5, 1 + k // 2) == 5) for k in ks])


def test_roboreward_with_a_stride_holds_the_last_score_between_requests(serve):
    server = serve(roboreward_answer)
    ks = [0, 2, 4, 6, 8]
    batch = batch_of(ks)
    scores = model(server, "roboreward", stride=2).score(batch, TASK, context_of(batch))
    assert server.calls == 3
    np.testing.assert_allclose(scores.progress, [0.0, 0.0, 0.5, 0.5, 1.0])


def test_roboreward_long_episodes_keep_a_bounded_evenly_spread_clip(serve):
    server = serve(roboreward_answer)
    m = model(server, "roboreward", max_frames=4, stride=25)
    whole = batch_of([i % 9 for i in range(100)])  # 50 s at 1 fps kept: far more than 2·4 frames
    context = context_of(whole)
    for a in range(0, 100, 20):
        m.score(whole.select(np.arange(a, a + 20)), TASK, context)
    history = next(v for v in context.cache.values() if isinstance(v, dict))["history"]
    assert len(history.frames) <= 8
    last = clip_of(parts_of(server.payloads[-1])[1])  # batches are scored one after the other
    assert len(last) == 4 and level(last[-1]) == 75 % 9


def test_roboreward_rich_mode_takes_the_expectation_at_the_answer_position(serve):
    tokens = logprob_tokens(("ANSWER", {"ANSWER": 1.0}), (":", {":": 1.0}),
                            (" 4", {" 4": 0.6, " 5": 0.3, " 3": 0.1}))
    server = serve(lambda payload, call: (200, chat_body("ANSWER: 4", tokens), 0.0))
    batch = batch_of([0])
    scores = model(server, "roboreward", top_logprobs=5).score(batch, TASK, context_of(batch))
    assert server.payloads[0]["logprobs"] is True and server.payloads[0]["top_logprobs"] == 5
    expected = 0.6 * 4 + 0.3 * 5 + 0.1 * 3
    assert scores.progress[0] == pytest.approx((expected - 1) / 4)
    assert scores.success[0] == pytest.approx(0.3)


@pytest.mark.parametrize("text", ["ANSWER: 7", "I cannot tell.", ""])
def test_a_roboreward_answer_outside_1_to_5_stops_naming_frame_and_answer(serve, text):
    server = serve(lambda payload, call: (200, chat_body(text), 0.0))
    batch = batch_of([0, 1])
    with pytest.raises(InputError, match=r"episode 'ep3' view 'front' frame \[0\]: roboreward answer unusable "
                                         r"after 3 request\(s\)") as error:
        model(server, "roboreward").score(batch, TASK, context_of(batch))
    assert repr(text) in str(error.value)
    assert roboreward.parse_score("The robot did well. ANSWER: 5") == 5.0
    assert roboreward.parse_score("3") == 3.0


# -- vlac ------------------------------------------------------------------------------------


def vlac_answer(payload: dict, call: int):
    """critic = 10·(Image-2 level − Image-1 level); done = 1 when the image is level ≥ 8."""
    user = payload["messages"][1]["content"]
    images = images_of(payload)
    if user[-1]["text"].endswith("<done>"):
        return 200, chat_body("1" if level(images[0]) >= 8 else "0"), 0.0
    return 200, chat_body(str(10 * (level(images[1]) - level(images[0])))), 0.0


def test_vlac_asks_the_released_critic_and_done_prompts_and_accumulates_the_value(serve):
    server = serve(vlac_answer)
    ks = [0, 3, 5, 4, 8]
    batch = batch_of(ks)
    scores = model(server, "vlac").score(batch, TASK, context_of(batch))
    critics = [p for p in server.payloads if not p["messages"][1]["content"][-1]["text"].endswith("<done>")]
    dones = [p for p in server.payloads if p["messages"][1]["content"][-1]["text"].endswith("<done>")]
    assert len(critics) == 4 and len(dones) == 5
    assert critics[0]["messages"][0] == {"role": "system", "content": [{"type": "text", "text": vlac.SYSTEM}]}
    parts = critics[1]["messages"][1]["content"]
    assert [p.get("text") for p in parts if p["type"] == "text"] == [
        "Image-1: ", "\nImage-2: ", "\n" + vlac.CRITIC.format(task="open the drawer")]
    pairs = sorted((level(a), level(b)) for a, b in (images_of(p) for p in critics))
    assert pairs == sorted([(0, 3), (3, 5), (5, 4), (4, 8)])
    assert parts_of_done(dones[0])[-1] == vlac.DONE.format(task="open the drawer")
    value, expected = 0.0, [0.0]
    for critic in (30, 20, -10, 40):  # v ← v + (100 − v)·c/100
        value += (100 - value) * critic / 100
        expected.append(value / 100)
    np.testing.assert_allclose(scores.progress, expected)
    np.testing.assert_allclose(scores.success, [0, 0, 0, 0, 1])


def parts_of_done(payload: dict) -> list:
    return [p.get("text") for p in payload["messages"][1]["content"]]


def test_vlac_done_below_the_threshold_is_zero_and_rich_mode_expects_digits(serve):
    def answer(payload: dict, call: int):
        if payload["messages"][1]["content"][-1]["text"].endswith("<done>"):
            return 200, chat_body("1", logprob_tokens(("1", {"1": 0.8, "0": 0.2}))), 0.0
        return 200, chat_body("-25", logprob_tokens(("-", {"-": 1.0}), ("2", {"2": 0.5, "3": 0.5}),
                                                     ("5", {"5": 0.95, "0": 0.05}))), 0.0

    server = serve(answer)
    batch = batch_of([0, 1])
    scores = model(server, "vlac", top_logprobs=5).score(batch, TASK, context_of(batch))
    # digits: 2.5 (both kept) then 5 (0.05 < 0.1·0.95 dropped): −(2.5·10 + 5) = −30
    assert scores.progress[1] == 0.0 and scores.success.tolist() == [0.0, 0.0]  # v = −30 clipped; done 0.8 < 0.9
    scores = model(server, "vlac", top_logprobs=5, done_threshold=0.5).score(batch, TASK, context_of(batch))
    assert scores.success.tolist() == pytest.approx([0.8, 0.8])
    tokens = (TokenLogprob("1", math.log(0.7), (("1", math.log(0.7)), ("2", math.log(0.3)))),
              TokenLogprob(".", 0.0), TokenLogprob("5", 0.0))
    assert vlac.expected_number(tokens) == pytest.approx(1.3 + 0.5)


def test_vlac_scores_a_reversed_episode_by_playing_it_backwards(serve):
    server = serve(vlac_answer)
    ks = [0, 3, 5, 4, 8]
    batch = batch_of(ks)
    m = model(server, "vlac", done_check=False)
    reversed_progress = score_backwards(m, TASK, LabelConfig(batch_size=2), EpisodeContext.starting_with(batch, -1),
                                        [batch.select(np.arange(0, 3)), batch.select(np.arange(3, 5))])
    value, backwards = 0.0, [0.0]
    for a, b in zip(ks[::-1], ks[::-1][1:]):
        value += (100 - value) * 10 * (b - a) / 100
        backwards.append(value / 100)
    np.testing.assert_allclose(reversed_progress, np.clip(backwards, 0, 1)[::-1])


# -- topreward -------------------------------------------------------------------------------


def topreward_answer(payload: dict, call: int):
    """P(" True") = level of the clip's last frame / 10, P(" False") the rest."""
    clip = clip_of(parts_of(payload)[0])
    p = max(level(clip[-1]), 1) / 10
    return 200, chat_body(" True", logprob_tokens((" True", {" True": p, " False": 1 - p}))), 0.0


def test_topreward_continues_the_statement_and_reads_the_true_logprob(serve):
    server = serve(topreward_answer)
    ks = [1, 2, 4, 6, 9]
    batch = batch_of(ks)
    scores = model(server, "topreward").score(batch, TASK, context_of(batch))
    payload = max(server.payloads, key=last_frame_level)
    parts = parts_of(payload)
    assert [p["type"] for p in parts] == ["video_url", "text"]
    assert parts[1]["text"] == (
        "The above video shows a robot manipulation trajectory that completes the following task: open the drawer "
        "Decide whether the above statement is True or not. The answer is:")
    assert payload["continue_final_message"] is True and payload["add_generation_prompt"] is False
    assert payload["max_tokens"] == 1 and payload["logprobs"] is True and payload["top_logprobs"] == 20
    assert len(clip_of(parts[0])) == 5  # 2 fps, every frame (0.5 s apart) kept
    np.testing.assert_allclose(scores.progress, [k / 10 for k in ks])


def test_topreward_keeps_the_last_max_frames_and_bounds_an_absent_true(serve):
    server = serve(topreward_answer)
    batch = batch_of([1, 2, 3, 4, 5, 6])
    model(server, "topreward", max_frames=3).score(batch, TASK, context_of(batch))
    final = max(server.payloads, key=last_frame_level)
    assert [level(f) for f in clip_of(parts_of(final)[0])] == [4, 5, 6]
    absent = Completion(text=" False", logprobs=(TokenLogprob(" False", math.log(0.9),
                                                              ((" False", math.log(0.9)), ("No", math.log(0.05)))),))
    assert topreward.true_logprob(absent) == pytest.approx(math.log(0.05))
    with pytest.raises(ValueError, match="no logprobs"):
        topreward.true_logprob(Completion(text="True"))


def test_topreward_stops_when_the_server_returns_no_logprobs(serve):
    server = serve(lambda payload, call: (200, chat_body(" True"), 0.0))
    batch = batch_of([1])
    with pytest.raises(InputError, match="no logprobs"):
        model(server, "topreward").score(batch, TASK, context_of(batch))
    assert server.calls == 1  # not asked again: a logprob does not change with temperature


def test_label_through_a_sequential_protocol_scores_the_reversed_episode(serve, tmp_path):
    from robo_reward.cli import main
    from test_vlm import small_manifest

    folder = small_manifest(tmp_path, ("eval_success_00",))
    server = serve(lambda payload, call: (200, chat_body("12"), 0.0) if not payload["messages"][1]["content"][-1][
        "text"].endswith("<done>") else (200, chat_body("0"), 0.0))
    out = tmp_path / "run"
    assert main(["label", "--episodes", str(folder), "--split", "eval", "--stride", "20",
                 "--model", "vlm", "--option", "protocol=vlac", "--option", f"base_url={server.base_url}",
                 "--score-reversed", "--no-report", "--out", str(out)]) == 0
    rows = pd.read_parquet(out / "scores.parquet")
    assert np.all(np.diff(rows["progress"]) > 0)  # every hop +12 %
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["voc"] == pytest.approx(1.0)
    # the reversed episode is played backwards, so this always-"closer" critic climbs along it as well (scored
    # in forward order it would fall along the reversed episode: -1)
    assert metrics["voc_reversed"] == pytest.approx(1.0)


def test_the_ray_engine_refuses_a_sequential_model(serve):
    from robo_reward.engine.ray_data import RayEngine

    batch = batch_of([0])
    with pytest.raises(ConfigError, match="--engine local"):
        list(RayEngine().run(model(serve(vlac_answer), "vlac"), [(0, batch)], LabelConfig()))


GOOD = {  # protocol → (a well-formed answer to any of its requests, the progress it gives a one-sample episode)
    "dopamine": (chat_body("<score>+40%</score>"), 0.0),  # the first set is not asked about: P = 0
    "roboreward": (chat_body("ANSWER: 3"), 0.5),
    "vlac": (chat_body("1"), 0.0),
    "topreward": (chat_body(" True", logprob_tokens((" True", {" True": 0.25, " False": 0.75}))), 0.25),
}


@pytest.mark.parametrize("protocol", sorted(GOOD))
def test_every_protocol_retries_429_and_500_then_reads_the_answer(serve, protocol):
    body, progress = GOOD[protocol]
    tries: dict[str, int] = {}

    def answer(payload: dict, call: int):
        key = json.dumps(payload, sort_keys=True)
        tries[key] = tries.get(key, 0) + 1
        return {1: (429, {"error": "busy"}, 0.0), 2: (500, {"error": "oops"}, 0.0)}.get(tries[key], (200, body, 0.0))

    server = serve(answer)
    batch = batch_of([0, 4])
    scores = model(server, protocol).score(batch, TASK, context_of(batch))
    assert scores.progress[0] == pytest.approx(progress)
    assert np.isfinite(scores.progress).all() and min(tries.values()) >= 3  # every request: 429, 500, answer


@pytest.mark.parametrize("protocol", sorted(GOOD))
@pytest.mark.parametrize("text", ["", "no idea"])
def test_every_protocol_stops_on_an_empty_or_malformed_answer_naming_the_frame(serve, protocol, text):
    server = serve(lambda payload, call: (200, chat_body(text), 0.0))
    batch = batch_of([0, 4])
    with pytest.raises(InputError, match=rf"episode 'ep3'.* frame \[\d\].*{protocol} answer unusable") as error:
        model(server, protocol).score(batch, TASK, context_of(batch))
    assert f"raw answer: {text!r}" in str(error.value)
