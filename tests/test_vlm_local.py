"""The local transformers VLM backend on tiny random Qwen2.5-VL / Qwen3-VL checkpoints built in
code (no download: conftest sets HF_HUB_OFFLINE=1): prompts, images, clips, logprobs against a
teacher-forced forward pass, continue_final, batching, cache and determinism (math, not semantics)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from robo_reward.errors import ConfigError
from robo_reward.models.vlm.client import ChatRequest, Clip, Message
from robo_reward.models.vlm.local import TransformersBackend
from robo_reward.models.vlm.tiny import build_tiny_qwen

CLASSES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen3_vl": "Qwen3VLForConditionalGeneration"}


def image(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def clip(frames: int = 4, size: int = 32, fps: float = 2.0) -> Clip:
    return Clip(np.random.default_rng(7).integers(0, 256, (frames, size, size, 3), dtype=np.uint8), fps)


def ask(*parts, **options) -> ChatRequest:
    return ChatRequest((Message("user", tuple(parts)),), **options)


@pytest.fixture(scope="module", params=sorted(CLASSES))
def tiny(request, tmp_path_factory):
    if not hasattr(transformers, CLASSES[request.param]):
        pytest.skip(f"transformers {transformers.__version__} has no {CLASSES[request.param]}")
    return request.param, build_tiny_qwen(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def backend(tiny) -> TransformersBackend:
    return TransformersBackend(str(tiny[1]), batch_size=4, cache=False)


def teacher_forced(backend: TransformersBackend, request: ChatRequest, token_ids: list[int]) -> torch.Tensor:
    """(N, V) log-softmax of the logits predicting each of ``token_ids`` after the prompt."""
    inputs = backend.inputs([request])
    n = inputs["input_ids"].shape[1]
    ids = torch.tensor([token_ids])
    inputs["input_ids"] = torch.cat([inputs["input_ids"], ids], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(ids)], dim=1)
    with torch.no_grad():
        logits = backend.model(**inputs).logits[0, n - 1 : n - 1 + len(token_ids)]
    return torch.log_softmax(logits.float(), dim=-1)


def test_two_images_become_their_placeholders_in_part_order(backend):
    request = ask("Frame 1:", image(32, 0), "Frame 2:", image(64, 1), "ANSWER True or False", max_tokens=6)
    prompt = backend.prepare(request).prompt
    assert prompt.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert prompt.index("Frame 1:") < prompt.index("<|image_pad|>") < prompt.index("Frame 2:")
    ids = backend.inputs([request])["input_ids"][0].tolist()
    assert ids.count(backend.processor.image_token_id) == 4 + 16  # 32×32: 2×2 patches, 64×64: 4×4
    [answer] = backend.complete_many([request])
    choice = answer.raw["choices"][0]
    assert isinstance(answer.text, str) and answer.attempts == 1 and not answer.cached
    assert answer.finish_reason == ("length" if len(choice["token_ids"]) == 6 else "stop")
    assert answer.text == backend.tokenizer.decode(choice["token_ids"], skip_special_tokens=True)
    assert answer.logprobs == ()


def test_a_clip_keeps_every_frame_at_its_fps(backend, tiny):
    request = ask("Video:", clip(frames=4, fps=2.0), "How much of the task is done?", max_tokens=4)
    inputs = backend.inputs([request])
    assert inputs["video_grid_thw"].tolist() == [[2, 2, 2]]  # all 4 frames kept: 2 temporal patches
    assert inputs["input_ids"][0].tolist().count(backend.processor.video_token_id) == 8
    if tiny[0] == "qwen2_5_vl":
        assert inputs["second_per_grid_ts"].tolist() == [1.0]  # temporal_patch_size / fps
    else:
        text = backend.tokenizer.decode(inputs["input_ids"][0])
        assert "<0.0 seconds>" in text and "<0.5 seconds>" in text  # the clip's fps, not a default
    [answer] = backend.complete_many([request])
    assert answer.raw["usage"]["completion_tokens"] == len(answer.raw["choices"][0]["token_ids"]) <= 4


@pytest.mark.parametrize("temperature", [0.0, 1.5])
def test_top_logprobs_are_raw_and_match_a_forward_pass(backend, temperature):
    sampling = (("seed", 3), ("top_k", 20)) if temperature else ()
    request = ask("Frame", image(32, 2), "ANSWER:", max_tokens=5, top_logprobs=4, temperature=temperature,
                  sampling=sampling)
    [answer] = backend.complete_many([request])
    token_ids = answer.raw["choices"][0]["token_ids"]
    assert len(answer.logprobs) == len(token_ids) > 0
    expected = teacher_forced(backend, request, token_ids)
    for step, (entry, token) in enumerate(zip(answer.logprobs, token_ids)):
        values = [lp for _, lp in entry.top]
        assert len(entry.top) == 4 and all(v <= 0 for v in values) and values == sorted(values, reverse=True)
        assert entry.token == backend.tokenizer.decode([token])
        # raw logits: no temperature, no top-k, whatever the sampling
        assert entry.logprob == pytest.approx(float(expected[step, token]), abs=1e-4)
        assert values == pytest.approx(torch.topk(expected[step], 4).values.tolist(), abs=1e-4)
        if not temperature:
            assert entry.top[0] == (entry.token, pytest.approx(entry.logprob))
    if temperature:  # a seeded request is reproducible
        assert backend.complete_many([request])[0].raw["choices"][0]["token_ids"] == token_ids


def test_token_strings_keep_leading_spaces(backend):
    token = backend.tokenizer.encode(" True")
    assert len(token) == 1 and backend._token_string(token[0]) == " True"


def test_continue_final_opens_no_assistant_turn(backend):
    messages = (Message("user", ("Is the task done?",)), Message("assistant", ("The answer is:",)))
    continued = backend.prepare(ChatRequest(messages, continue_final=True)).prompt
    answered = backend.prepare(ChatRequest(messages)).prompt
    assert continued.endswith("<|im_start|>assistant\nThe answer is:")
    assert answered.endswith("The answer is:<|im_end|>\n<|im_start|>assistant\n")
    assert answered.startswith(continued)
    # a final message that ends with EOS: the continuation is (very likely) EOS: "stop", no text
    [answer] = backend.complete_many([ChatRequest(
        (Message("user", ("hi",)), Message("assistant", ("Done.<|im_end|>",))), continue_final=True, max_tokens=3,
        top_logprobs=1)])
    assert answer.finish_reason == "stop" and answer.text == ""
    assert answer.logprobs[-1].token == "<|im_end|>"


def test_batched_equals_one_at_a_time(backend):
    requests = [
        ask("What is the progress?", max_tokens=6, top_logprobs=2),
        ask("Frame 1:", image(32, 3), "Frame 2:", image(64, 4), "score", max_tokens=5, top_logprobs=2),
        ask("Video:", clip(), "True or False", max_tokens=4, top_logprobs=2),
        ChatRequest((Message("user", ("rate it",)), Message("assistant", ("<score>",))), continue_final=True,
                    max_tokens=3, top_logprobs=2),
        ask(image(48, 5), "a much longer question about the robot arm and the red cube on the table", max_tokens=6,
            top_logprobs=2),
    ]
    calls = backend.generate_calls
    batched = backend.complete_many(requests)
    assert backend.generate_calls - calls == 2  # batch_size 4
    for request, together in zip(requests, batched):
        [alone] = backend.complete_many([request])
        assert together.raw["choices"][0]["token_ids"] == alone.raw["choices"][0]["token_ids"]
        assert together.text == alone.text and together.finish_reason == alone.finish_reason
        for a, b in zip(together.logprobs, alone.logprobs):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
            assert [t for t, _ in a.top] == [t for t, _ in b.top]


def test_a_repeated_request_is_cached_and_unknown_sampling_options_are_refused(tiny):
    cached = TransformersBackend(str(tiny[1]))
    request = ask("Frame", image(32, 6), max_tokens=3)
    first = cached.complete_many([request])[0]
    again = cached.complete_many([request, ask("Frame", image(32, 6), max_tokens=3)])
    assert cached.generate_calls == 1 and all(a.cached and a.text == first.text for a in again)
    with pytest.raises(ConfigError, match="frequency_penalty"):
        cached.complete_many([ask("hi", sampling=(("frequency_penalty", 0.5),))])
    with pytest.raises(ConfigError, match="cannot load"):
        TransformersBackend(str(tiny[1] / "missing"))


def test_describe_says_random_weights(backend, tiny):
    text = backend.describe()
    assert "RANDOM WEIGHTS" in text and str(tiny[1]) in text and "cpu" in text
    assert json.loads((tiny[1] / "config.json").read_text())["robo_reward_random_weights"] is True


def test_same_seed_same_weights(tiny, tmp_path):
    family, path = tiny
    again = build_tiny_qwen(tmp_path / "again", family, seed=0)
    other = build_tiny_qwen(tmp_path / "other", family, seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (path / name).read_bytes()
    assert (other / "model.safetensors").read_bytes() != (path / "model.safetensors").read_bytes()


def test_the_tiny_model_command_builds_with_no_network(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "robo_reward.models.vlm.tiny", str(tmp_path / "m")],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == str(tmp_path / "m") and (tmp_path / "m" / "model.safetensors").is_file()


def label_through_tiny(path, tmp_path, protocol: str, *options: str) -> tuple[int, object]:
    from test_vlm import small_manifest

    from robo_reward.cli import main

    folder = small_manifest(tmp_path, ("eval_success_00",))
    out = tmp_path / "run"
    args = ["label", "--episodes", str(folder), "--split", "eval", "--stride", "25", "--model", "vlm", "--option",
            f"protocol={protocol}", "--option", "backend=transformers", "--option", f"model={path}", "--option",
            "image_size=32", *options, "--no-report", "--out", str(out)]
    return main(args), out


def test_label_runs_through_the_local_backend_on_the_shipped_sample(tiny, tmp_path, capsys):
    import pandas as pd

    code, out = label_through_tiny(tiny[1], tmp_path, "topreward", "--option", "max_frames=4")
    assert code == 0
    rows = pd.read_parquet(out / "scores.parquet")
    assert len(rows) >= 4 and rows["progress"].between(0, 1).all() and rows["progress"].nunique() > 1
    printed = capsys.readouterr()
    assert "RANDOM WEIGHTS" in printed.out + printed.err
    assert "RANDOM WEIGHTS" in (out / "run.json").read_text()


def test_random_text_from_the_local_backend_stops_label_naming_the_frame_and_answer(tiny, tmp_path, capsys):
    code, out = label_through_tiny(tiny[1], tmp_path, "gvl", "--option", "max_tokens=8")
    assert code == 1
    error = capsys.readouterr().err
    assert "episode 'eval_success_00'" in error and "gvl answer unusable after 3 request(s)" in error
    assert "raw answer:" in error and not out.exists()
