"""Tiny randomly initialised Qwen2.5-VL / Qwen3-VL checkpoints, built in code (no download).

:func:`build_tiny_qwen` writes a model with a few thousand parameters (sizes of the
transformers test suites), its processor (image and video processors, a byte-level BPE
tokenizer trained in code on a fixed word list, Qwen's chat template) and
``"robo_reward_random_weights": true`` in ``config.json``, so that
:class:`robo_reward.models.vlm.local.TransformersBackend` and the VLM protocols can be
tested end to end on a CPU in seconds. The answers are noise: math, not semantics.

Run ``python -m robo_reward.models.vlm.tiny OUT_DIR [--family qwen3_vl] [--seed 0]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Literal

from robo_reward.errors import ConfigError, require

Family = Literal["qwen2_5_vl", "qwen3_vl"]
FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl")

#: Qwen's special tokens, in this order at ids 0-6 of the tiny tokenizer.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")
#: Ordinary tokens that are single tokens (not special: they stay in decoded text).
ADDED_TOKENS = ("<score>", "</score>")
#: Qwen2's pre-tokenizer split (digits one by one, an optional leading space kept with a word).
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
#: Words the BPE is trained on (space-separated); each becomes one token, with and without a
#: leading space.
WORDS = (
    "True False Frame ANSWER Answer answer Task task Progress progress Reward reward Score score "
    "The the is are a an of to in on and or for with what how much percent completed complete "
    "robot arm gripper object cube block table picks up place put moves toward goal success failure "
    "image images video frame frames first last initial current shuffled order value values between "
    "seconds second Yes No yes no system user assistant You helpful please give output only number "
    "% : . , ; ( ) [ ] - + = / ? ! 0 1 2 3 4 5 6 7 8 9"
)

#: Qwen's chat format; images and videos become their vision placeholders. transformers'
#: ``continue_final_message`` cuts the rendered text after the final message's last text part.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer() -> Any:
    """A byte-level BPE ``Qwen2TokenizerFast`` over :data:`WORDS`, the Qwen special tokens
    (ids 0-6) and :data:`ADDED_TOKENS`; deterministic (same vocabulary every time)."""
    require("tokenizers", "vlm-local", "the tiny Qwen tokenizer")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096,  # a bound only: training stops when every word is one token
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([f"{w} {w}\n" for w in WORDS.split()], trainer=trainer)
    bpe.add_tokens([AddedToken(t, normalized=False, special=False) for t in ADDED_TOKENS])
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=bpe, unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        padding_side="left", chat_template=CHAT_TEMPLATE, model_max_length=4096,
    )
    for word in ("True", " False", "ANSWER", "<score>", "7"):
        if len(tokenizer.encode(word)) != 1:
            raise ConfigError(f"the tiny tokenizer splits {word!r}: {tokenizer.tokenize(word)}")
    return tokenizer


def _config(family: str, tokenizer: Any) -> Any:
    """The transformers config of ``family`` with the sizes of its test suite and the
    tokenizer's ids."""
    import transformers

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"),
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"))}
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
        "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 4096,
        "tie_word_embeddings": True, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, "bos_token_id": None,
    }
    vision = {"depth": 2, "in_channels": 3, "hidden_size": 32, "intermediate_size": 32,
              "out_hidden_size": 32, "num_heads": 4, "spatial_merge_size": 1, "temporal_patch_size": 2}
    if family == "qwen2_5_vl":
        # head_dim 32 / 4 = 8: the three mrope sections (t, h, w) cover its 4 frequencies
        text |= {"num_hidden_layers": 4, "max_window_layers": 3,
                 "rope_scaling": {"type": "mrope", "mrope_section": [2, 1, 1]}}
        vision |= {"hidden_act": "silu", "patch_size": 14, "tokens_per_second": 2, "fullatt_block_indexes": [1]}
        return transformers.Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True,
                                             **ids)
    if not hasattr(transformers, "Qwen3VLConfig"):
        raise ConfigError(f"transformers {transformers.__version__} has no Qwen3-VL (it needs >= 4.57)")
    text |= {"num_hidden_layers": 2, "head_dim": 8,
             "rope_scaling": {"rope_type": "default", "mrope_section": [2, 1, 1], "mrope_interleaved": True}}
    vision |= {"hidden_act": "gelu_pytorch_tanh", "patch_size": 16, "num_position_embeddings": 16,
               "deepstack_visual_indexes": [0, 1]}
    return transformers.Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=True, **ids)


def _processor(family: str, tokenizer: Any) -> Any:
    """Image and video processors sized so a 32×32 image is 4 tokens and a 64×64 one 16."""
    import transformers

    if family == "qwen2_5_vl":
        patch, mean, std = 14, None, None  # smart_resize rounds 32 → 28 = 2 patches of 14
        video = transformers.Qwen2VLVideoProcessor(patch_size=patch, temporal_patch_size=2, merge_size=1,
                                                   min_pixels=28 * 28, max_pixels=56 * 56)
    else:
        patch, mean, std = 16, [0.5] * 3, [0.5] * 3
        # Qwen3-VL's video budget counts frames too: up to 16 frames of 64×64
        video = transformers.Qwen3VLVideoProcessor(
            patch_size=patch, temporal_patch_size=2, merge_size=1,
            size={"shortest_edge": 32 * 32 * 2, "longest_edge": 64 * 64 * 16},
        )
    image_kwargs: dict[str, Any] = {"image_mean": mean, "image_std": std} if mean else {}
    image = transformers.Qwen2VLImageProcessorFast(
        patch_size=patch, temporal_patch_size=2, merge_size=1, min_pixels=(2 * patch) ** 2,
        max_pixels=(4 * patch) ** 2, **image_kwargs,
    )
    cls = transformers.Qwen2_5_VLProcessor if family == "qwen2_5_vl" else transformers.Qwen3VLProcessor
    return cls(image_processor=image, tokenizer=tokenizer, video_processor=video, chat_template=CHAT_TEMPLATE)


def build_tiny_qwen(path: str | Path, family: Family = "qwen2_5_vl", seed: int = 0) -> Path:
    """Write a tiny random ``family`` checkpoint and its processor to ``path``; returns it.

    The weights are a function of ``seed`` alone (``torch.manual_seed`` before the init);
    nothing is downloaded. ``config.json`` holds ``"robo_reward_random_weights": true``.
    """
    if family not in FAMILIES:
        raise ConfigError(f"unknown tiny family {family!r}; choose one of {', '.join(FAMILIES)}")
    require("transformers", "vlm-local", "tiny Qwen-VL checkpoints")
    import torch
    import transformers

    tokenizer = build_tokenizer()
    config = _config(family, tokenizer)
    config.robo_reward_random_weights = True
    cls = transformers.Qwen2_5_VLForConditionalGeneration if family == "qwen2_5_vl" else \
        transformers.Qwen3VLForConditionalGeneration
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config).eval()
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id], pad_token_id=tokenizer.pad_token_id,
    )
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    _processor(family, tokenizer).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m robo_reward.models.vlm.tiny OUT_DIR [--family F] [--seed N]``: prints the path."""
    parser = argparse.ArgumentParser(description="Write a tiny random Qwen-VL checkpoint (tests, demos).")
    parser.add_argument("out_dir")
    parser.add_argument("--family", choices=FAMILIES, default="qwen2_5_vl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_tiny_qwen(args.out_dir, args.family, args.seed))


if __name__ == "__main__":
    main()
