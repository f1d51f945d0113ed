"""A real HTTP server on 127.0.0.1 speaking the chat-completions protocol, for the VLM tests
(real sockets, real JSON), and helpers to read the requests it receives."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

# A reply: (status, JSON-able body or raw bytes, delay in seconds before answering[, extra headers]).
Reply = tuple


def chat_body(text: str, logprobs: list | None = None) -> dict:
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {"id": "x", "object": "chat.completion", "choices": [choice]}


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # many connections at once in the concurrency test
    daemon_threads = True


class FakeServer:
    """A threaded HTTP server answering ``POST /v1/chat/completions`` with ``answer(payload, call)``."""

    def __init__(self, answer: Callable[[dict, int], Reply]) -> None:
        self.answer = answer
        self.payloads: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    call = len(server.payloads)
                    server.payloads.append(payload)
                    server.headers.append(dict(self.headers.items()))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    assert self.path == "/v1/chat/completions"
                    status, body, delay, *extra = server.answer(payload, call)
                    time.sleep(delay)
                    data = body if isinstance(body, bytes) else json.dumps(body).encode()
                    self.send_response(status)
                    for key, value in (extra[0] if extra else {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        return len(self.payloads)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def parts_of(payload: dict) -> list[dict]:
    (message,) = payload["messages"]
    assert message["role"] == "user"
    return message["content"]


def decode(part: dict) -> np.ndarray:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def shade(value: int, size: int = 32) -> np.ndarray:
    return np.full((size, size + 8, 3), value, dtype=np.uint8)
