"""Frames/s through the VLM chat client (robo_reward.models.vlm.client) against a local
OpenAI-compatible fake server that answers every request after a fixed delay (default
200 ms, a stand-in for a vLLM server's latency; in its own process), at concurrency 1, 16
and 64, and again
from a warm cache — in one run, best of ``--repeat``, with ratios to concurrency 1.

Each request is a GVL query (Ma et al. 2024, "Vision Language Models are In-Context Value
Learners"): the first frame and ``--frames`` frames of one view, resized to 224×224 and
sent as JPEG data URLs. Frames/s counts the scored frames (not the first frame).

    python3 bench/vlm_client.py [--delay 0.2] [--frames 8] [--waves 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from robo_reward.models.vlm import gvl
from robo_reward.models.vlm.client import ChatClient, ChatRequest


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


def serve(delay_s: float, port, stats) -> None:
    """A fake server answering a well-formed GVL reply after ``delay_s``; counts calls and peak in-flight.

    Runs in its own process (as a vLLM server would), so that it does not compete with
    the client for the GIL; ``stats`` is a shared array (calls, in flight, peak)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                stats[0] += 1
                stats[1] += 1
                stats[2] = max(stats[2], stats[1])
            try:
                labels = [p["text"] for p in payload["messages"][0]["content"]
                          if p["type"] == "text" and p["text"].startswith("Frame ")]
                text = "\n".join(f"{label} Task Completion Percentages:{10 * k % 101}%" for k, label in enumerate(labels))
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
                time.sleep(delay_s)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                with lock:
                    stats[1] -= 1

    server = _Server(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever(poll_interval=0.05)


def start_server(delay_s: float):
    """The server process, its base URL and its shared stats."""
    port, stats = multiprocessing.Value("i", 0), multiprocessing.Array("i", 3, lock=False)
    process = multiprocessing.Process(target=serve, args=(delay_s, port, stats), daemon=True)
    process.start()
    while not port.value:
        time.sleep(0.01)
    return process, f"http://127.0.0.1:{port.value}/v1", stats


def make_requests(count: int, frames: int, salt: int) -> list[ChatRequest]:
    """``count`` distinct GVL queries of ``frames`` 128×128 frames each (smooth images, like renders)."""
    y, x = np.mgrid[0:128, 0:128]
    requests = []
    for r in range(count):
        base = (salt * 100003 + r * 7919) % 200
        images = np.stack([np.stack([(x + base + 3 * k) % 256, (y + 2 * base) % 256, (x + y + k) % 256], -1)
                           for k in range(frames + 1)]).astype(np.uint8)
        index = np.arange(1, frames + 1) + r * frames
        query = gvl.build_query("open the drawer", images[0], images[1:], index, where=f"bench request {r}")
        requests.append(query.request)
    return requests


def run(client: ChatClient, requests: list[ChatRequest], frames: int) -> tuple[float, float]:
    started = time.perf_counter()
    answers = client.complete_many(requests)
    elapsed = time.perf_counter() - started
    assert len(answers) == len(requests)
    return len(requests) * frames / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.2, help="server answer delay in seconds")
    parser.add_argument("--frames", type=int, default=8, help="frames per request")
    parser.add_argument("--waves", type=int, default=4, help="requests per run = waves × concurrency (at least 16)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per setting (fresh requests each)")
    args = parser.parse_args()
    process, base_url, stats = start_server(args.delay)
    print(f"server delay {args.delay * 1000:.0f} ms, {args.frames} frames/request (+ the first frame), 224x224 JPEG")
    print(f"{'run':<22}{'requests':>9}{'seconds':>9}{'frames/s':>10}{'x conc.1':>10}{'peak in flight':>16}")
    reference = None
    with tempfile.TemporaryDirectory() as cache:
        for level, concurrency in enumerate((1, 16, 64)):
            count = max(16, args.waves * concurrency)
            client = ChatClient(base_url, "bench", concurrency=concurrency, image_size=224,
                                cache_dir=Path(cache) / f"c{concurrency}")
            stats[2] = 0
            rate, elapsed = 0.0, 0.0
            for trial in range(args.repeat):  # new pixels every time: no cache hit
                requests = make_requests(count, args.frames, level * args.repeat + trial)
                trial_rate, trial_elapsed = run(client, requests, args.frames)
                if trial_rate > rate:
                    rate, elapsed = trial_rate, trial_elapsed
            reference = reference or rate
            print(f"{f'concurrency {concurrency}':<22}{count:>9}{elapsed:>9.2f}{rate:>10.1f}{rate / reference:>9.1f}x"
                  f"{stats[2]:>16}")
        calls = stats[0]
        rate, elapsed = run(client, requests, args.frames)  # same requests, same client: memory cache
        print(f"{'warm cache (memory)':<22}{count:>9}{elapsed:>9.2f}{rate:>10.1f}{rate / reference:>9.1f}x"
              f"{stats[0] - calls:>13} calls")
        fresh = ChatClient(base_url, "bench", concurrency=64, image_size=224, cache_dir=Path(cache) / "c64")
        rate, elapsed = run(fresh, requests, args.frames)  # a new client: from the disk cache
        print(f"{'warm cache (disk)':<22}{count:>9}{elapsed:>9.2f}{rate:>10.1f}{rate / reference:>9.1f}x"
              f"{stats[0] - calls:>13} calls")
    process.terminate()
    process.join()


if __name__ == "__main__":
    main()
