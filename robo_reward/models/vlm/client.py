"""One client for OpenAI-compatible chat completions (the protocol vLLM serves).

Standard library only (``urllib`` + threads). Used by the VLM reward protocols, e.g. GVL
(Ma et al. 2024, "Vision Language Models are In-Context Value Learners").

* **concurrency**: :meth:`ChatClient.complete_many` keeps up to ``concurrency`` requests
  in flight;
* **retries**: 429, 5xx, an unreadable body, connection errors and timeouts are retried
  with exponential backoff (``backoff_s · 2^k``, or a longer ``Retry-After`` up to 30 s;
  ``max_retries`` times); any other 4xx is
  a configuration error at once. The last failure raises :class:`ConfigError` naming the
  request's ``where`` (episode and frames), the HTTP status and body;
* **images**: uint8 (H, W, 3) arrays become ``image_url`` parts holding
  ``data:image/jpeg;base64,…`` (resized to ``image_size``), interleaved with text parts
  in order; a :class:`Clip` becomes a ``video_url`` part holding an H.264 mp4
  (``data:video/mp4;base64,…``);
* **continuing a message**: ``ChatRequest.continue_final`` sends vLLM's
  ``add_generation_prompt: false, continue_final_message: true``, so the answer continues
  the last message instead of opening an assistant turn (TOPReward scores the token after
  "The answer is:");
* **cache**: keyed by a SHA-256 of the model and the exact JSON payload (image bytes
  included), in memory and, with ``cache_dir``, as JSON files written atomically, so a
  relabel or a resumed run asks nothing twice;
* **logprobs**: ``top_logprobs=N`` sends ``logprobs: true, top_logprobs: N`` and returns
  each token's alternatives; :func:`expected_value` turns them into an expectation over
  numeric answers (VLAC's ``rich`` mode).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robo_reward.atomic import atomic_path
from robo_reward.errors import ConfigError, InputError
from robo_reward.interfaces.images import rgb_to_compressed
from robo_reward.interfaces.video import encode_mp4


@dataclass(frozen=True, eq=False)
class Clip:
    """A video content part: uint8 RGB frames (T, H, W, 3) played at ``fps``."""

    frames: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or len(self.frames) == 0:
            raise InputError(f"a clip holds uint8 frames (T, H, W, 3) with T >= 1, got shape {self.frames.shape}")
        if not self.fps > 0:
            raise InputError(f"a clip's fps must be > 0, got {self.fps}")


#: A content part: text, a uint8 RGB image (H, W, 3), or a clip.
Part = str | np.ndarray | Clip
CACHE_FORMAT = "robo_reward.vlm_cache/v1"
#: How many recently encoded images the client keeps (a malformed-answer retry resends them all).
ENCODED_CACHE = 1024


@dataclass(frozen=True)
class Message:
    """One chat message: a role and its content parts, in order."""

    role: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to ask for.

    Attributes:
        messages: the conversation, e.g. ``(Message("user", ("Frame 1:", image, …)),)``.
        where: what the request is about (episode, view, frames), for error messages.
        max_tokens, temperature: sampling options sent as is.
        top_logprobs: ask for this many alternatives per answer token (None: no logprobs).
        continue_final: continue the last message rather than answer it (no generation
            prompt; vLLM's ``continue_final_message``).
        sampling: further sampling options sent as they are, e.g. ``(("top_p", 0.9),
            ("top_k", 50))`` (``top_k`` is a vLLM extension).
    """

    messages: tuple[Message, ...]
    where: str = ""
    max_tokens: int = 512
    temperature: float = 0.0
    top_logprobs: int | None = None
    continue_final: bool = False
    sampling: tuple[tuple[str, float | int], ...] = ()


@dataclass(frozen=True)
class TokenLogprob:
    """One answer token, its log-probability and its top alternatives ``(token, logprob)``."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Completion:
    """The answer to one :class:`ChatRequest`.

    Attributes:
        text: the first choice's message content ("" when the server sent none).
        logprobs: per answer token, when asked for (empty otherwise).
        cached: True when answered from the cache without an HTTP call.
        attempts: HTTP calls made for it (0 when cached).
        finish_reason: the server's (``"stop"``, ``"length"`` when cut at max_tokens…).
        raw: the server's JSON response.
    """

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()
    finish_reason: str = ""
    cached: bool = False
    attempts: int = 0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class ChatBackend(Protocol):
    """What the VLM protocols ask of a backend: answers to chat requests, in request order.

    :class:`ChatClient` (an OpenAI-compatible server, e.g. vLLM) and
    :class:`robo_reward.models.vlm.local.TransformersBackend` (a local model) are the two."""

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer every request; raise ConfigError when one cannot be answered at all."""
        ...

    def describe(self) -> str:
        """One line naming the backend and model (it says RANDOM WEIGHTS where they are)."""
        ...


#: The longest ``Retry-After`` honoured, in seconds.
MAX_RETRY_AFTER_S = 30.0


class _Retryable(Exception):
    """A failure worth another try (429, 5xx, connection error, timeout, unreadable body)."""

    def __init__(self, message: str, wait_s: float = 0.0) -> None:
        super().__init__(message)
        self.wait_s = wait_s


def _retry_after(value: str | None) -> float:
    """Seconds of a ``Retry-After: <seconds>`` header (0 when absent or a date)."""
    try:
        return min(max(float(value or 0), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return 0.0


def encode_image(image: np.ndarray, size: int | None = None, quality: int = 90) -> str:
    """uint8 (H, W, 3) → ``data:image/jpeg;base64,…``, resized to ``size``×``size`` if given."""
    from PIL import Image

    array = np.asarray(image)
    if size is not None and array.dtype == np.uint8 and array.ndim == 3 and array.shape[:2] != (size, size):
        array = np.asarray(Image.fromarray(array).resize((size, size), Image.BICUBIC))
    return "data:image/jpeg;base64," + base64.b64encode(rgb_to_compressed(array, "jpeg", quality)).decode("ascii")


def encode_clip(clip: Clip, size: int | None = None) -> str:
    """A clip → ``data:video/mp4;base64,…`` (H.264), frames resized to ``size``×``size`` if given
    (else to even sizes, which H.264 needs)."""
    from PIL import Image

    frames = np.asarray(clip.frames, dtype=np.uint8)
    height, width = frames.shape[1:3]
    target = (size, size) if size is not None else (width - width % 2 or 2, height - height % 2 or 2)
    if (width, height) != target:
        frames = np.stack([np.asarray(Image.fromarray(f).resize(target, Image.BICUBIC)) for f in frames])
    return "data:video/mp4;base64," + base64.b64encode(encode_mp4(frames, clip.fps)).decode("ascii")


def parse_completion(raw: Mapping[str, Any], cached: bool = False, attempts: int = 0) -> Completion:
    """The first choice of an OpenAI-style chat completion response."""
    choices = raw.get("choices") or []
    if not choices:
        raise ValueError("the response has no choices")
    choice = choices[0]
    text = (choice.get("message") or {}).get("content") or ""
    tokens = []
    for entry in ((choice.get("logprobs") or {}).get("content") or []):
        top = tuple((str(t["token"]), float(t["logprob"])) for t in entry.get("top_logprobs") or [])
        tokens.append(TokenLogprob(str(entry["token"]), float(entry["logprob"]), top))
    return Completion(text=str(text), logprobs=tuple(tokens), cached=cached, attempts=attempts,
                      finish_reason=str(choice.get("finish_reason") or ""), raw=raw)


def expected_value(
    token_logprobs: TokenLogprob | Sequence[tuple[str, float]],
    candidates: Mapping[str, float] | Sequence[str],
    min_ratio: float = 0.0,
) -> float:
    """Expectation of a numeric answer over one token's alternatives (VLAC's ``rich`` mode).

    ``candidates`` maps answer tokens to values (a sequence of numeric tokens maps each
    to ``float(token)``). Alternatives that are candidates (surrounding whitespace
    ignored) are renormalised: ``Σ v·p / Σ p``; with ``min_ratio`` > 0 only those with
    ``p > min_ratio · p_max`` count (VLAC keeps p > 0.1 · top). Raises InputError when
    no alternative is a candidate.
    """
    alternatives = token_logprobs.top if isinstance(token_logprobs, TokenLogprob) else tuple(token_logprobs)
    if isinstance(token_logprobs, TokenLogprob) and not alternatives:
        alternatives = ((token_logprobs.token, token_logprobs.logprob),)
    values = dict(candidates) if isinstance(candidates, Mapping) else {str(c): float(c) for c in candidates}
    probs: dict[str, float] = {}
    for token, logprob in alternatives:
        key = token.strip()
        if key in values and math.isfinite(logprob):
            probs[key] = probs.get(key, 0.0) + math.exp(logprob)
    if probs and min_ratio > 0:
        top = max(probs.values())
        probs = {k: p for k, p in probs.items() if p > min_ratio * top}
    total = sum(probs.values())
    if total <= 0:
        seen = [t for t, _ in alternatives]
        raise InputError(f"no answer candidate among the token alternatives {seen[:10]} (candidates {list(values)[:10]})")
    return sum(values[k] * p for k, p in probs.items()) / total


class ChatClient:
    """A client of ``{base_url}/chat/completions`` (OpenAI-compatible, e.g. a vLLM server).

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1``.
        model: the served model name, e.g. ``Qwen/Qwen2.5-VL-3B-Instruct``.
        api_key_env: environment variable holding the API key (falls back to
            ``OPENAI_API_KEY``; no key: no Authorization header).
        timeout_s: per HTTP call.
        max_retries: further tries after a retryable failure.
        backoff_s: first backoff; doubles on every retry.
        concurrency: most requests in flight in :meth:`complete_many`.
        cache_dir: folder of the on-disk cache (None: in memory only).
        image_size: images are resized to this square size (None: sent as they are).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "ROBO_REWARD_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        concurrency: int = 16,
        cache_dir: str | Path | None = None,
        image_size: int | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ConfigError(
                f"need concurrency >= 1, max_retries >= 0, timeout_s > 0, backoff_s >= 0; got {concurrency}, "
                f"{max_retries}, {timeout_s}, {backoff_s}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = os.environ.get(api_key_env) or os.environ.get("OPENAI_API_KEY") or None
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.concurrency = int(concurrency)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.image_size = image_size
        self._memory: dict[str, dict[str, Any]] = {}
        self._encoded: OrderedDict[tuple, str] = OrderedDict()  # recent images → data URLs (a first frame recurs)
        self._lock = threading.Lock()
        self.http_calls = 0  # HTTP calls made (for tests and benchmarks)

    def describe(self) -> str:
        return f"'{self.model}' served at {self.url}"

    # -- payload and cache ---------------------------------------------------------------

    def payload(self, request: ChatRequest) -> dict[str, Any]:
        """The exact JSON body sent for ``request``."""
        messages = []
        for message in request.messages:
            messages.append({"role": message.role, "content": [self._content(part) for part in message.parts]})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": int(request.max_tokens),
            "temperature": float(request.temperature),
        }
        if request.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = int(request.top_logprobs)
        if request.continue_final:
            body["add_generation_prompt"] = False
            body["continue_final_message"] = True
        body.update(dict(request.sampling))
        return body

    def _content(self, part: Part) -> dict[str, Any]:
        if isinstance(part, str):
            return {"type": "text", "text": part}
        if isinstance(part, Clip):
            return {"type": "video_url", "video_url": {"url": encode_clip(part, self.image_size)}}
        return {"type": "image_url", "image_url": {"url": self._encode(part)}}

    def _encode(self, image: np.ndarray) -> str:
        """:func:`encode_image`, memoised by the pixels' hash for the last ``ENCODED_CACHE`` images."""
        array = np.ascontiguousarray(image)
        key = (hashlib.blake2b(array.data, digest_size=16).hexdigest(), array.shape, str(array.dtype), self.image_size)
        with self._lock:
            url = self._encoded.get(key)
            if url is not None:
                self._encoded.move_to_end(key)
                return url
        url = encode_image(array, self.image_size)
        with self._lock:
            self._encoded[key] = url
            while len(self._encoded) > ENCODED_CACHE:
                self._encoded.popitem(last=False)
        return url

    @staticmethod
    def cache_key(body: Mapping[str, Any]) -> str:
        """SHA-256 of the model and the exact payload (image bytes included)."""
        text = json.dumps({"model": body.get("model"), "payload": body}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _cache_file(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        path = self._cache_file(key)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is asked again and rewritten
        if entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
            return None
        with self._lock:
            self._memory[key] = entry["response"]
        return entry["response"]

    def _cache_put(self, key: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._memory[key] = response
        path = self._cache_file(key)
        if path is not None:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"format": CACHE_FORMAT, "key": key, "model": self.model,
                                           "response": response}))

    # -- HTTP ----------------------------------------------------------------------------

    def _post(self, data: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        with self._lock:
            self.http_calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                body = reply.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")[:500]
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}: {text}", _retry_after(exc.headers.get("Retry-After"))) from exc
            raise ConfigError(f"HTTP {exc.code} from {self.url}: {text}") from exc
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
                raise _Retryable(f"no answer from {self.url} within timeout_s={self.timeout_s:g} s") from exc
            raise _Retryable(f"cannot reach {self.url} ({type(exc).__name__}: {reason})") from exc
        try:
            response = json.loads(body)
            parse_completion(response)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _Retryable(f"unreadable response ({exc}): {body[:500].decode('utf-8', 'replace')!r}") from exc
        return response

    def complete(self, request: ChatRequest) -> Completion:
        """Answer one request (cache first, then HTTP with bounded retries)."""
        body = self.payload(request)
        key = self.cache_key(body)
        hit = self._cache_get(key)
        if hit is not None:
            return parse_completion(hit, cached=True)
        data = json.dumps(body).encode("utf-8")
        last, wait_s = "", 0.0
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(max(self.backoff_s * 2 ** (attempt - 1), wait_s))
            try:
                response = self._post(data)
            except _Retryable as exc:
                last, wait_s = str(exc), exc.wait_s
                continue
            except ConfigError as exc:
                raise ConfigError(f"{request.where or 'request'}: {exc}") from exc
            self._cache_put(key, response)
            return parse_completion(response, attempts=attempt + 1)
        raise ConfigError(
            f"{request.where or 'request'}: the VLM server at {self.url} failed {self.max_retries + 1} time(s); "
            f"last: {last}"
        )

    def complete_many(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer ``requests`` with up to ``concurrency`` in flight; results in request order.

        The first request that fails for good raises (the others still finish)."""
        requests = list(requests)
        if len(requests) <= 1 or self.concurrency == 1:
            return [self.complete(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = [pool.submit(self.complete, r) for r in requests]
            return [f.result() for f in futures]
