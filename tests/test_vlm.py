"""The ``vlm`` reward model (GVL, Ma et al. 2024) and its chat client against a real local
HTTP server: real sockets, real JSON, on 127.0.0.1."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from vlm_server import FakeServer, Reply, chat_body, decode, parts_of, shade

from robo_reward.errors import ConfigError, InputError
from robo_reward.models import load_model
from robo_reward.models.vlm import gvl
from robo_reward.models.vlm.client import (
    ChatClient,
    ChatRequest,
    Message,
    TokenLogprob,
    encode_image,
    expected_value,
)
from robo_reward.types import EpisodeContext, FrameBatch, Task

SAMPLE = Path(__file__).resolve().parents[1] / "robo_reward" / "assets" / "metaworld_sample"
TASK = Task("open the drawer")

def percent_of_shade(image: np.ndarray) -> int:
    """Frames in these tests are solid grey 20 + 20·k: answer 10·k %."""
    return round((float(image.mean()) - 20) / 20) * 10


def answer_by_shade(payload: dict) -> str:
    """A well-formed GVL answer: each shown frame's percentage read from its pixels."""
    parts = parts_of(payload)
    lines = []
    for i, part in enumerate(parts):
        if part["type"] == "text" and part["text"].startswith("Frame "):
            lines.append(f"{part['text']} Task Completion Percentages:{percent_of_shade(decode(parts[i + 1]))}%")
    return "\n".join(lines)


def good(payload: dict, call: int) -> Reply:
    return 200, chat_body(answer_by_shade(payload)), 0.0


def shaded_batch(ks: list[int], views: tuple[str, ...] = ("front",), source: str = "episode 'ep7'") -> FrameBatch:
    return FrameBatch(views={v: np.stack([shade(20 + 20 * k) for k in ks]) for v in views},
                      timestamps_ns=np.arange(len(ks)) * 10**8, frame_index=np.array(ks) * 3, source=source)


def vlm(server: FakeServer, **options):
    options = {"backoff_s": 0.01, "timeout_s": 5.0, **options}
    return load_model("vlm", protocol="gvl", base_url=server.base_url, image_size=32, **options)


def context_of(views: tuple[str, ...] = ("front",)) -> EpisodeContext:
    return EpisodeContext(FrameBatch(views={v: shade(20)[None] for v in views}, timestamps_ns=np.array([0]),
                                     source="episode 'ep7'"))


def test_the_request_is_the_gvl_prompt_with_the_first_frame_then_the_shuffled_frames(serve):
    server = serve(good)
    ks = [1, 2, 3, 4, 5, 6, 7, 8]
    batch = shaded_batch(ks)
    scores = vlm(server).score(batch, TASK, context_of())
    assert server.calls == 1
    payload = server.payloads[0]
    assert payload["model"] == "Qwen/Qwen2.5-VL-3B-Instruct" and payload["temperature"] == 0.0
    parts = parts_of(payload)
    texts = [p["text"] if p["type"] == "text" else None for p in parts]
    order = gvl.shuffle_order(batch.frame_index)
    assert order.tolist() != list(range(len(ks)))  # shuffled…
    assert gvl.shuffle_order(batch.frame_index).tolist() == order.tolist()  # …with a fixed seed
    base_prompt = (
        "You are an expert roboticist tasked to predict task completion percentages for frames of a robot for the "
        "task of open the drawer. The task completion percentages are between 0 and 100, where 100 corresponds to "
        "full task completion. The frames may be in random order; reason about each frame independently when "
        "estimating completion."
    )
    expected = [
        base_prompt,
        "Initial robot scene:", None, "In the initial robot scene, the task completion percentage is 0%.",
    ]
    for position in range(1, len(ks) + 1):
        expected += [f"Frame {position}:", None]
    expected.append(
        "Now, for the task of open the drawer, output the task completion percentage for the following frames that "
        "are presented in random order. For each frame, format your response as follow: "
        "Frame {i}: Task Completion Percentages:{}%"
    )
    assert texts == expected
    images = [decode(p) for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 + len(ks) and all(img.shape == (32, 32, 3) for img in images)  # resized to image_size
    assert percent_of_shade(images[0]) == 0  # the episode's first frame
    shown = [percent_of_shade(img) // 10 for img in images[1:]]
    assert shown == [ks[i] for i in order]  # the frames in the shuffled order
    np.testing.assert_allclose(scores.progress, np.array(ks) / 10)  # un-shuffled
    np.testing.assert_allclose(scores.success, scores.progress)  # success = progress
    np.testing.assert_allclose(scores.per_view["front"], np.array(ks) / 10)


def test_the_instruction_can_come_before_the_frames_as_in_opengvls_code(serve):
    server = serve(good)
    scores = vlm(server, instruction_first=True).score(shaded_batch([2, 5]), TASK, context_of())
    texts = [p.get("text") for p in parts_of(server.payloads[0])]
    assert texts[4].startswith("Now, for the task of open the drawer") and texts[5:] == ["Frame 1:", None, "Frame 2:", None]
    np.testing.assert_allclose(scores.progress, [0.2, 0.5])


def test_the_parser_is_strict_and_does_not_rescale_to_sum_100():
    order = np.array([2, 0, 1])
    text = "Frame 1: Task Completion Percentages:12.5%\nFrame 2: Task Completion Percentages:0%\n" \
           "Frame 3: Task Completion Percentages:50.5%"
    np.testing.assert_allclose(gvl.progress_from_answer(text, order), [0.0, 0.505, 0.125])
    for bad in ("", "Frame 1: Task Completion Percentages:10%", text + "\nFrame 3: Task Completion Percentages:9%",
                text.replace("50.5%", "150%"), text + "\nFrame 4: Task Completion Percentages:9%"):
        with pytest.raises(ValueError):
            gvl.progress_from_answer(bad, order)


def test_a_malformed_answer_is_asked_again_with_a_higher_temperature(serve):
    def answer(payload: dict, call: int) -> Reply:
        return (200, chat_body("I think the drawer is half open."), 0.0) if call == 0 else good(payload, call)

    server = serve(answer)
    scores = vlm(server).score(shaded_batch([3, 1, 2]), TASK, context_of())
    assert server.calls == 2
    assert server.payloads[1]["temperature"] > server.payloads[0]["temperature"] == 0.0
    np.testing.assert_allclose(scores.progress, [0.3, 0.1, 0.2])


@pytest.mark.parametrize("text", ["", "Frame 1: Task Completion Percentages:40%"])
def test_an_answer_that_stays_malformed_stops_naming_episode_frames_and_answer(serve, text):
    server = serve(lambda payload, call: (200, chat_body(text), 0.0))
    with pytest.raises(InputError) as info:
        vlm(server, parse_retries=2).score(shaded_batch([1, 2]), TASK, context_of())
    message = str(info.value)
    assert "episode 'ep7'" in message and "[3, 6]" in message and f"raw answer: {text!r}" in message
    assert "3 request(s)" in message and server.calls == 3


def test_a_slow_reply_times_out_and_is_retried(serve):
    def answer(payload: dict, call: int) -> Reply:
        status, body, _ = good(payload, call)
        return status, body, (1.0 if call == 0 else 0.0)

    server = serve(answer)
    started = time.monotonic()
    scores = vlm(server, timeout_s=0.3).score(shaded_batch([4, 5]), TASK, context_of())
    assert server.calls == 2 and time.monotonic() - started < 3
    np.testing.assert_allclose(scores.progress, [0.4, 0.5])


def test_a_server_that_never_answers_in_time_names_the_timeout(serve):
    server = serve(lambda payload, call: (*good(payload, call)[:2], 1.0))
    with pytest.raises(ConfigError, match=r"frame\(s\) \[12\].*failed 2 time.*within timeout_s=0.2 s"):
        vlm(server, timeout_s=0.2, max_retries=1).score(shaded_batch([4]), TASK, context_of())


def test_429_and_500_are_retried_with_backoff(serve):
    def answer(payload: dict, call: int) -> Reply:
        if call == 0:
            return 429, {"error": "rate limited"}, 0.0
        if call == 1:
            return 500, {"error": "engine busy"}, 0.0
        return good(payload, call)

    server = serve(answer)
    scores = vlm(server, max_retries=3).score(shaded_batch([6]), TASK, context_of())
    assert server.calls == 3
    np.testing.assert_allclose(scores.progress, [0.6])


def test_retry_after_of_a_429_is_honoured(serve):
    def answer(payload: dict, call: int) -> Reply:
        return (429, {"error": "slow down"}, 0.0, {"Retry-After": "0.4"}) if call == 0 else good(payload, call)

    server = serve(answer)
    started = time.monotonic()
    vlm(server, backoff_s=0.01).score(shaded_batch([6]), TASK, context_of())
    assert server.calls == 2 and time.monotonic() - started >= 0.4


def test_an_unreadable_body_is_retried(serve):
    server = serve(lambda payload, call: (200, b"<html>proxy error</html>", 0.0) if call == 0 else good(payload, call))
    np.testing.assert_allclose(vlm(server).score(shaded_batch([2]), TASK, context_of()).progress, [0.2])
    assert server.calls == 2


def test_the_api_key_is_sent_from_the_environment(serve, monkeypatch):
    server = serve(good)
    monkeypatch.delenv("ROBO_REWARD_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    vlm(server).score(shaded_batch([1]), TASK, context_of())
    monkeypatch.setenv("ROBO_REWARD_API_KEY", "sk-robo")
    vlm(server).score(shaded_batch([2]), TASK, context_of())
    assert [h.get("Authorization") for h in server.headers] == ["Bearer sk-fallback", "Bearer sk-robo"]


def test_an_answer_cut_at_max_tokens_says_so(serve):
    def answer(payload: dict, call: int) -> Reply:
        body = chat_body(answer_by_shade(payload).splitlines()[0])
        body["choices"][0]["finish_reason"] = "length"
        return 200, body, 0.0

    server = serve(answer)
    with pytest.raises(InputError, match="cut at max_tokens=20, raise it"):
        vlm(server, max_tokens=20, parse_retries=0).score(shaded_batch([1, 2, 3]), TASK, context_of())


def test_a_server_error_after_the_last_retry_names_request_status_and_body(serve):
    server = serve(lambda payload, call: (500, {"error": "CUDA out of memory"}, 0.0))
    with pytest.raises(ConfigError) as info:
        vlm(server, max_retries=2).score(shaded_batch([1, 2]), TASK, context_of())
    message = str(info.value)
    assert "episode 'ep7'" in message and "[3, 6]" in message and "HTTP 500" in message
    assert "CUDA out of memory" in message and server.calls == 3


def test_a_client_error_is_not_retried(serve):
    server = serve(lambda payload, call: (404, {"error": "model 'x' does not exist"}, 0.0))
    with pytest.raises(ConfigError, match="HTTP 404.*does not exist"):
        vlm(server, max_retries=3).score(shaded_batch([1]), TASK, context_of())
    assert server.calls == 1


def test_an_unreachable_server_is_a_clear_error():
    model = load_model("vlm", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01, timeout_s=1.0)
    with pytest.raises(ConfigError, match=r"episode 'ep7' view 'front' frame\(s\) \[3\].*failed 2 time.*cannot reach"):
        model.score(shaded_batch([1]), TASK, context_of())


def test_the_cache_answers_a_repeated_request_without_a_second_call(serve, tmp_path):
    server = serve(good)
    batch = shaded_batch([2, 4, 6])
    first = vlm(server, cache_dir=str(tmp_path / "cache")).score(batch, TASK, context_of())
    model = vlm(server, cache_dir=str(tmp_path / "cache"))
    again = model.score(batch, TASK, context_of())
    assert server.calls == 1 and model.backend.http_calls == 0  # from the disk cache, by a new client
    np.testing.assert_allclose(first.progress, again.progress)
    model.score(batch, TASK, context_of())
    assert server.calls == 1  # and from memory
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 1 and not list((tmp_path / "cache").rglob("*.tmp"))
    vlm(server, cache_dir=str(tmp_path / "cache")).score(shaded_batch([2, 4, 7]), TASK, context_of())
    assert server.calls == 2  # other pixels: another question


def test_concurrent_requests_are_in_flight_at_once(serve):
    def answer(payload: dict, call: int) -> Reply:
        return 200, chat_body("ok"), 0.3

    server = serve(answer)
    client = ChatClient(server.base_url, "m", concurrency=8, backoff_s=0.01)
    requests = [ChatRequest((Message("user", (f"question {i}", shade(20 + i))),), where=f"r{i}") for i in range(8)]
    started = time.monotonic()
    answers = client.complete_many(requests)
    elapsed = time.monotonic() - started
    assert [a.text for a in answers] == ["ok"] * 8 and server.calls == 8
    assert server.max_in_flight >= 4 and elapsed < 8 * 0.3 / 2
    asked = sorted(parts_of(p)[0]["text"] for p in server.payloads)
    assert asked == sorted(f"question {i}" for i in range(8))


def test_multi_view_sends_one_request_per_view_and_fuses(serve):
    def answer(payload: dict, call: int) -> Reply:
        text = answer_by_shade(payload)
        if "'wrist' camera" in json.dumps(payload):  # the wrist view sees 20 points less
            text = "\n".join(
                line.rsplit(":", 1)[0] + f":{int(line.rsplit(':', 1)[1][:-1]) - 20}%" for line in text.splitlines())
        return 200, chat_body(text), 0.0

    server = serve(answer)
    batch = shaded_batch([5, 7], views=("front", "wrist"))
    scores = vlm(server).score(batch, TASK, context_of(("front", "wrist")))
    assert server.calls == 2
    notes = sorted(parts_of(p)[1]["text"] for p in server.payloads)
    assert notes == ["All images below are from the 'front' camera view.",
                     "All images below are from the 'wrist' camera view."]
    np.testing.assert_allclose(scores.per_view["front"], [0.5, 0.7])
    np.testing.assert_allclose(scores.per_view["wrist"], [0.3, 0.5])
    np.testing.assert_allclose(scores.progress, [0.4, 0.6])
    assert (scores.uncertainty > 0).all()


def test_samples_of_two_episodes_go_in_separate_requests(serve):
    server = serve(good)
    batch = shaded_batch([1, 2, 3, 4])
    other = EpisodeContext(FrameBatch(views={"front": shade(40)[None]}, timestamps_ns=np.array([0])))
    contexts = [context_of(), context_of(), other, other]
    contexts[1] = contexts[0]
    scores = vlm(server).score(batch, TASK, contexts)
    assert server.calls == 2
    firsts = sorted(percent_of_shade(decode(parts_of(p)[2])) for p in server.payloads)
    assert firsts == [0, 10]
    np.testing.assert_allclose(scores.progress, [0.1, 0.2, 0.3, 0.4])


def test_logprobs_are_requested_and_returned(serve):
    alternatives = [{"token": "7", "logprob": math.log(0.6)}, {"token": "8", "logprob": math.log(0.3)},
                    {"token": " x", "logprob": math.log(0.1)}]
    server = serve(lambda payload, call: (200, chat_body("7", [{"token": "7", "logprob": math.log(0.6),
                                                                "top_logprobs": alternatives}]), 0.0))
    client = ChatClient(server.base_url, "m")
    (answer,) = client.complete_many([ChatRequest((Message("user", ("score?",)),), top_logprobs=5)])
    assert server.payloads[0]["logprobs"] is True and server.payloads[0]["top_logprobs"] == 5
    assert answer.text == "7" and answer.logprobs[0].token == "7" and len(answer.logprobs[0].top) == 3
    assert expected_value(answer.logprobs[0], [str(d) for d in range(10)]) == pytest.approx((7 * 0.6 + 8 * 0.3) / 0.9)


def test_expected_value_on_constructed_logprobs():
    top = TokenLogprob("3", math.log(0.5), (("3", math.log(0.5)), (" 4", math.log(0.25)), ("5", math.log(0.04)),
                                            ("a", math.log(0.21))))
    assert expected_value(top, ["1", "2", "3", "4", "5"]) == pytest.approx((1.5 + 1.0 + 0.2) / 0.79)
    assert expected_value(top, ["3", "4", "5"], min_ratio=0.1) == pytest.approx((1.5 + 1.0) / 0.75)  # VLAC's filter
    assert expected_value([("yes", 0.0)], {"yes": 1.0, "no": 0.0}) == 1.0
    with pytest.raises(InputError, match="no answer candidate"):
        expected_value(top, ["9"])


def test_an_unknown_protocol_is_refused_naming_the_available_ones():
    with pytest.raises(ConfigError, match="unknown VLM protocol 'gvl2'; available: gvl, dopamine, roboreward, vlac, topreward"):
        load_model("vlm", protocol="gvl2")


def test_a_model_without_context_is_refused(serve):
    server = serve(good)
    with pytest.raises(ConfigError, match="EpisodeContext"):
        vlm(server).score(shaded_batch([1]), TASK)
    assert server.calls == 0


# -- the command line, on the shipped Meta-World sample ------------------------------------------------------------


def small_manifest(tmp_path: Path, names: tuple[str, ...] = ("eval_success_00", "eval_failure_00")) -> Path:
    manifest = json.loads((SAMPLE / "episodes.json").read_text())
    entries = [e for e in manifest["episodes"] if e["name"] in names]
    for entry in entries:
        entry["views"] = {v: str(SAMPLE / p) for v, p in entry["views"].items()}
    folder = tmp_path / "sample"
    folder.mkdir()
    (folder / "episodes.json").write_text(json.dumps({"format": manifest["format"], "episodes": entries}))
    return folder


def position_answers(folder: Path, stride: int) -> dict[str, int]:
    """Image URL (as the client sends it) → that frame's true position-derived percentage."""
    from robo_reward.data.episodes import load_manifest
    from robo_reward.types import Sampling

    table: dict[str, int] = {}
    for episode in load_manifest(folder, split="eval"):
        count = episode.metadata["num_frames"]
        for batch in episode.iter_batches(1000, Sampling(stride=stride)):
            for images in batch.views.values():
                for image, index in zip(images, batch.frame_index):
                    url = encode_image(image, 224)
                    table[url] = round(100 * int(index) / (count - 1))
    return table


def test_label_with_the_vlm_model_writes_the_served_progress(serve, tmp_path):
    from robo_reward.cli import main

    folder = small_manifest(tmp_path)
    table = position_answers(folder, stride=10)

    def answer(payload: dict, call: int) -> Reply:
        parts = parts_of(payload)
        lines = [f"{p['text']} Task Completion Percentages:{table[parts[i + 1]['image_url']['url']]}%"
                 for i, p in enumerate(parts) if p["type"] == "text" and p["text"].startswith("Frame ")]
        return 200, chat_body("\n".join(lines)), 0.0

    server = serve(answer)
    out = tmp_path / "run"
    assert main(["label", "--episodes", str(folder), "--split", "eval", "--stride", "10", "--batch-size", "64",
                 "--model", "vlm", "--option", f"base_url={server.base_url}", "--option", "backoff_s=0.01",
                 "--no-report", "--out", str(out)]) == 0
    assert server.calls == 4  # 2 episodes × 2 views, each episode's frames in one request
    rows = pd.read_parquet(out / "scores.parquet")
    counts = {e["name"]: e["num_frames"] for e in json.loads((folder / "episodes.json").read_text())["episodes"]}
    expected = [round(100 * int(f) / (counts[e] - 1)) / 100 for e, f in zip(rows["episode"], rows["frame_index"])]
    assert len(rows) == 20 and set(rows["episode"]) == set(counts)
    np.testing.assert_allclose(rows["progress"], expected)
    np.testing.assert_allclose(rows["progress.corner"], expected)
    np.testing.assert_allclose(rows["progress.topview"], expected)
    assert "vlm(protocol=gvl" in (out / "run.json").read_text()


def test_a_relabel_with_a_cache_dir_asks_nothing_twice(serve, tmp_path):
    from robo_reward.cli import main

    folder = small_manifest(tmp_path, ("eval_success_00",))
    server = serve(lambda payload, call: (200, chat_body(answer_by_position(payload)), 0.0))
    args = ["label", "--episodes", str(folder), "--split", "eval", "--stride", "20", "--batch-size", "64",
            "--model", "vlm", "--option", f"base_url={server.base_url}", "--option", f"cache_dir={tmp_path / 'cache'}",
            "--no-report", "--out", str(tmp_path / "run")]
    assert main(args) == 0 and server.calls == 2
    first = pd.read_parquet(tmp_path / "run" / "scores.parquet")
    assert main([*args, "--overwrite"]) == 0 and server.calls == 2
    pd.testing.assert_frame_equal(first, pd.read_parquet(tmp_path / "run" / "scores.parquet"))


def answer_by_position(payload: dict) -> str:
    """A well-formed answer: prompt position i gets 10·i %."""
    labels = [p["text"] for p in parts_of(payload) if p["type"] == "text" and p["text"].startswith("Frame ")]
    return "\n".join(f"{label} Task Completion Percentages:{10 * (k + 1)}%" for k, label in enumerate(labels))


def test_label_stops_on_garbage_naming_the_episode_and_answer_and_writes_nothing(serve, tmp_path, capsys):
    from robo_reward.cli import main

    folder = small_manifest(tmp_path, ("eval_success_00",))
    server = serve(lambda payload, call: (200, chat_body("The drawer looks closed to me."), 0.0))
    out = tmp_path / "run"
    code = main(["label", "--episodes", str(folder), "--split", "eval", "--stride", "20", "--batch-size", "64",
                 "--model", "vlm", "--option", f"base_url={server.base_url}", "--option", "backoff_s=0.01",
                 "--out", str(out)])
    assert code == 1
    error = capsys.readouterr().err
    assert "episode 'eval_success_00'" in error and "The drawer looks closed to me." in error
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []
