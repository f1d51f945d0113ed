"""A local transformers backend for the VLM reward protocols (Qwen2.5-VL, Qwen3-VL).

:class:`TransformersBackend` answers :class:`~robo_reward.models.vlm.client.ChatRequest`
the way an OpenAI-compatible vLLM server answers the same request sent by
:class:`~robo_reward.models.vlm.client.ChatClient`, so a protocol behaves the same on both:

* **prompt**: the checkpoint's chat template renders the messages with content items
  ``{"type": "text" | "image" | "video"}`` in part order (vLLM's "openai" content format),
  ``add_generation_prompt = not continue_final`` and ``continue_final_message =
  continue_final``; the prompt is tokenized without extra special tokens (as vLLM's chat
  endpoint does);
* **images and clips**: resized to ``image_size``×``image_size`` (bicubic) when given, then
  given to the checkpoint's processor as they are (no JPEG / H.264 round trip). A clip's
  frames are all kept, with their fps (``do_sample_frames=False`` and ``video_metadata``:
  Qwen2.5-VL's temporal positions and Qwen3-VL's frame timestamps follow the clip's fps);
* **sampling**: driven by the request alone (like ``vllm serve --generation-config vllm``;
  the checkpoint's ``generation_config.json`` sampling defaults, e.g. Qwen2.5-VL's
  ``repetition_penalty=1.05``, are not applied, its EOS tokens are): greedy when
  ``temperature == 0``, else sampling with ``temperature`` and ``request.sampling``
  (``top_p``, ``top_k`` with ``-1``/``0`` = off, ``min_p``, ``repetition_penalty``,
  ``seed``: a seeded request is generated alone under ``torch.manual_seed(seed)``);
* **batching**: up to ``batch_size`` requests of the same sampling settings per
  ``generate`` call, left-padded (greedy answers equal one-at-a-time answers);
* **answer**: text decoded without special tokens; ``finish_reason`` ``"stop"`` after an
  EOS token, ``"length"`` at ``max_tokens``;
* **logprobs**: with ``top_logprobs = k``, every generated token (the EOS token included,
  as vLLM does) with its log-probability and the k most likely tokens, from the log-softmax
  of the raw logits (before temperature / top-p / top-k: vLLM's default ``raw_logprobs``),
  sorted from the most likely. Token strings are ``tokenizer.decode([id])`` of each token
  alone, as vLLM shows them: a byte-level BPE token keeps its leading space (``" True"``),
  a special token reads as itself (``"<|im_end|>"``);
* **cache**: answers are kept in memory, keyed by :meth:`ChatClient.cache_key` of the
  request's content (pixel hashes included), so a repeated request is not generated again.

:attr:`Completion.raw` is an OpenAI-style chat completion (``choices[0].message.content``,
``logprobs.content``, ``usage``), the shape vLLM returns, with the generated ids in
``choices[0].token_ids`` (as vLLM's ``return_token_ids``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robo_reward.errors import ConfigError, InputError, require
from robo_reward.models.vlm.client import ChatClient, ChatRequest, Clip, Completion, Part, parse_completion

#: ``request.sampling`` keys understood besides ``seed`` (``GenerationConfig`` fields of the same name).
SAMPLING_KEYS = ("top_p", "top_k", "min_p", "repetition_penalty")
#: Model classes by the checkpoint's ``model_type`` (others: ``AutoModelForImageTextToText``).
MODEL_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen3_vl": "Qwen3VLForConditionalGeneration"}


@dataclass(frozen=True)
class PreparedRequest:
    """One request as the processor takes it: the rendered prompt and its visuals, in part order."""

    prompt: str
    images: list[Any]  # PIL images
    videos: list[np.ndarray]  # (T, H, W, 3) uint8
    fps: list[float]


def _resized(image: np.ndarray, size: int | None) -> np.ndarray:
    """uint8 (H, W, 3) → (size, size, 3) bicubic (as :func:`~.client.encode_image`), or as it is."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise InputError(f"an image part must be uint8 (H, W, 3), got shape {array.shape}")
    if size is None or array.shape[:2] == (size, size):
        return array
    from PIL import Image

    return np.asarray(Image.fromarray(array).resize((size, size), Image.BICUBIC))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class TransformersBackend:
    """A :class:`~robo_reward.models.vlm.client.ChatBackend` running a Qwen-VL checkpoint locally.

    Args:
        model_path: a local checkpoint folder or a hub id (``Qwen/Qwen2.5-VL-3B-Instruct``,
            ``teetone/RoboReward-4B``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
        dtype: ``"auto"`` (the checkpoint's), ``"float32"``, ``"bfloat16"``, ``"float16"``.
        batch_size: most requests per ``generate`` call.
        image_size: images and clip frames are resized to this square size (None: as they are).
        cache: keep answers in memory and answer a repeated request from there.
    """

    def __init__(
        self,
        model_path: str,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 8,
        image_size: int | None = None,
        cache: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        transformers = require("transformers", "vlm-local", "the local VLM backend")
        import torch

        self.model_path = str(model_path)
        self.device = device
        self.batch_size = int(batch_size)
        self.image_size = image_size
        self.cache = cache
        if dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
        try:
            config = transformers.AutoConfig.from_pretrained(self.model_path)
            cls_name = MODEL_CLASSES.get(config.model_type, "AutoModelForImageTextToText")
            cls = getattr(transformers, cls_name, None)
            if cls is None:
                raise ConfigError(f"'{self.model_path}' is a {config.model_type} model, which transformers "
                                  f"{transformers.__version__} cannot run (no {cls_name}); upgrade transformers")
            self.model = cls.from_pretrained(self.model_path, dtype=dtype if dtype == "auto" else getattr(torch, dtype))
            self.processor = transformers.AutoProcessor.from_pretrained(self.model_path)
        except OSError as exc:
            raise ConfigError(f"cannot load the VLM checkpoint '{self.model_path}': {exc}") from exc
        self.model.to(device).eval()
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.random_weights = bool(getattr(config, "robo_reward_random_weights", False))
        eos = self.model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            eos.append(self.tokenizer.eos_token_id)
        if not eos:
            raise ConfigError(f"'{self.model_path}' names no EOS token (generation_config.json nor tokenizer)")
        self.eos_ids = tuple(dict.fromkeys(eos))
        pad = self.tokenizer.pad_token_id
        self.pad_id = self.eos_ids[0] if pad is None else pad
        self._memory: dict[str, dict[str, Any]] = {}
        self._token_strings: dict[int, str] = {}
        self.generate_calls = 0  # generate() calls made (for tests and benchmarks)

    def describe(self) -> str:
        text = f"local transformers model '{self.model_path}' on {self.device}"
        if self.random_weights:
            text += " (RANDOM WEIGHTS: a test checkpoint, its answers are noise)"
        return text

    # -- requests → processor inputs -----------------------------------------------------

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """What the answer to ``request`` depends on (pixels as SHA-256), for the cache key."""
        messages = []
        for message in request.messages:
            content: list[dict[str, Any]] = []
            for part in message.parts:
                if isinstance(part, str):
                    content.append({"type": "text", "text": part})
                elif isinstance(part, Clip):
                    content.append({"type": "video", "sha256": _digest(part.frames), "fps": float(part.fps),
                                    "shape": list(part.frames.shape)})
                else:
                    content.append({"type": "image", "sha256": _digest(part), "shape": list(np.shape(part))})
            messages.append({"role": message.role, "content": content})
        return {"model": self.model_path, "backend": "transformers", "image_size": self.image_size,
                "messages": messages, "max_tokens": int(request.max_tokens),
                "temperature": float(request.temperature), "top_logprobs": request.top_logprobs,
                "continue_final": bool(request.continue_final), "sampling": sorted(request.sampling)}

    def prepare(self, request: ChatRequest) -> PreparedRequest:
        """The rendered prompt of ``request`` and its images / clips, in part order."""
        from PIL import Image

        images: list[Any] = []
        videos: list[np.ndarray] = []
        fps: list[float] = []

        def content(part: Part) -> dict[str, Any]:
            if isinstance(part, str):
                return {"type": "text", "text": part}
            if isinstance(part, Clip):
                videos.append(np.stack([_resized(f, self.image_size) for f in part.frames]))
                fps.append(float(part.fps))
                return {"type": "video"}
            images.append(Image.fromarray(_resized(part, self.image_size)))
            return {"type": "image"}

        conversation = [{"role": m.role, "content": [content(p) for p in m.parts]} for m in request.messages]
        try:
            prompt = self.processor.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=not request.continue_final,
                continue_final_message=request.continue_final,
            )
        except ValueError as exc:
            raise ConfigError(f"{request.where or 'request'}: the chat template of '{self.model_path}' "
                              f"cannot render it: {exc}") from exc
        return PreparedRequest(prompt=prompt, images=images, videos=videos, fps=fps)

    def inputs(self, chunk: Sequence[ChatRequest]) -> dict[str, Any]:
        """The processor's batch for ``chunk`` on the model's device: ``input_ids`` and
        ``attention_mask`` (B, L) left-padded, and where there are visuals ``pixel_values``
        (patches, C·t·p·p) with ``image_grid_thw`` (images, 3), ``pixel_values_videos`` with
        ``video_grid_thw`` (clips, 3) (and Qwen2.5-VL's ``second_per_grid_ts`` (clips,))."""
        prepared = [self.prepare(r) for r in chunk]
        images = [i for p in prepared for i in p.images]
        videos = [v for p in prepared for v in p.videos]
        fps = [f for p in prepared for f in p.fps]
        kwargs: dict[str, Any] = {}
        if videos:
            # every frame kept, played at its clip's fps: Qwen2.5-VL reads ``fps``, Qwen3-VL the metadata
            kwargs["videos_kwargs"] = {
                "do_sample_frames": False, "fps": fps, "input_data_format": "channels_last",
                "video_metadata": [{"total_num_frames": len(v), "fps": f, "frames_indices": list(range(len(v)))}
                                   for v, f in zip(videos, fps)],
            }
        try:
            inputs = self.processor(text=[p.prompt for p in prepared], images=images or None,
                                    videos=videos or None, padding=True, add_special_tokens=False,
                                    return_tensors="pt", **kwargs)
        except ValueError as exc:
            where = "; ".join(r.where or "request" for r in chunk[:3])
            raise ConfigError(f"{where}: the processor of '{self.model_path}' cannot take it: {exc}") from exc
        dtype = self.model.dtype
        return {k: v.to(self.device, dtype) if k.startswith("pixel_values") else v.to(self.device)
                for k, v in inputs.items()}

    # -- generation ----------------------------------------------------------------------

    def _generation_config(self, request: ChatRequest, max_new_tokens: int) -> Any:
        from transformers import GenerationConfig

        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "eos_token_id": list(self.eos_ids),
                                   "pad_token_id": self.pad_id}
        sampling = dict(request.sampling)
        unknown = sorted(set(sampling) - set(SAMPLING_KEYS) - {"seed"})
        if unknown:
            raise ConfigError(f"{request.where or 'request'}: sampling options {unknown} are not supported by the "
                              f"local backend (supported: {sorted(SAMPLING_KEYS)} and 'seed')")
        if request.temperature > 0:
            options |= {"do_sample": True, "temperature": float(request.temperature), "top_k": 0}
            options |= {k: v for k, v in sampling.items() if k != "seed"}
            options["top_k"] = max(int(options["top_k"]), 0)  # vLLM's -1 (off) is transformers' 0
        else:
            options |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            if "repetition_penalty" in sampling:
                options["repetition_penalty"] = float(sampling["repetition_penalty"])
        return GenerationConfig(**options)

    def _token_string(self, token_id: int) -> str:
        text = self._token_strings.get(token_id)
        if text is None:
            text = self._token_strings[token_id] = self.tokenizer.decode([token_id]) or ""
        return text

    def _generate(self, chunk: Sequence[ChatRequest]) -> list[dict[str, Any]]:
        """One ``generate`` call for requests of the same sampling settings → raw responses."""
        import torch

        inputs = self.inputs(chunk)
        want_logprobs = any(r.top_logprobs for r in chunk)
        config = self._generation_config(chunk[0], max(int(r.max_tokens) for r in chunk))
        seed = dict(chunk[0].sampling).get("seed")
        with torch.random.fork_rng(devices=[self.device] if str(self.device).startswith("cuda") else []):
            if seed is not None:
                torch.manual_seed(int(seed))
            with torch.inference_mode():
                out = self.model.generate(**inputs, generation_config=config, use_model_defaults=False,
                                          return_dict_in_generate=True, output_logits=want_logprobs)
        self.generate_calls += 1
        prompt_len = inputs["input_ids"].shape[1]
        generated = out.sequences[:, prompt_len:].tolist()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        eos = set(self.eos_ids)
        responses = []
        for row, request in enumerate(chunk):
            tokens = generated[row][: int(request.max_tokens)]
            stop = next((i for i, t in enumerate(tokens) if t in eos), None)
            tokens = tokens if stop is None else tokens[: stop + 1]
            finish = "length" if stop is None else "stop"
            content = None
            if request.top_logprobs:
                content = []
                for step, token in enumerate(tokens):
                    logprobs = torch.log_softmax(out.logits[step][row].float(), dim=-1)  # raw logits (V,)
                    values, ids = torch.topk(logprobs, int(request.top_logprobs))
                    content.append({
                        "token": self._token_string(token), "logprob": float(logprobs[token]),
                        "top_logprobs": [{"token": self._token_string(i), "logprob": v}
                                         for i, v in zip(ids.tolist(), values.tolist())],
                    })
            text = self.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            responses.append({
                "object": "chat.completion", "model": self.model_path,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish, "token_ids": tokens,
                             "logprobs": None if content is None else {"content": content}}],
                "usage": {"prompt_tokens": int(prompt_tokens[row]), "completion_tokens": len(tokens),
                          "total_tokens": int(prompt_tokens[row]) + len(tokens)},
            })
        return responses

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer ``requests`` in order: cached answers first, the rest in batches of up to
        ``batch_size`` requests that share temperature and sampling options."""
        requests = list(requests)
        keys = [ChatClient.cache_key(self.body(r)) for r in requests]
        results: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for index, (request, key) in enumerate(zip(requests, keys)):
            hit = self._memory.get(key) if self.cache else None
            if hit is not None:
                results[index] = parse_completion(hit, cached=True)
            else:
                groups.setdefault((float(request.temperature), tuple(sorted(request.sampling))), []).append(index)
        for (_, sampling), indices in groups.items():
            size = 1 if "seed" in dict(sampling) else self.batch_size
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                for index, raw in zip(chunk, self._generate([requests[i] for i in chunk])):
                    if self.cache:
                        self._memory[keys[index]] = raw
                    results[index] = parse_completion(raw, attempts=1)
        return results  # type: ignore[return-value]
