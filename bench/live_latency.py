"""Live reward latency over ROS 2 (loopback) against the model's forward alone, for both
transports of the node in one run.

Three pattern cameras publish 128×128 rgb8 images at 30 Hz on Cyclone DDS from one process;
``robo-reward serve`` (a second process, the embedded default model) synchronises, scores
and publishes rewards; this process subscribes to them (Cyclone DDS). The node runs once per
``--transport``: ``dds`` (Cyclone DDS, this Python) and ``rclpy`` (ROS 2 Kilted from the
wheels, Fast DDS: ``bash scripts/install_ros2.sh``; skipped, and said so, when it is not
there). Measured per transport:

* stamp → reward received here (p50, p99): the whole live path, transport both ways;
* the node's own stamp → publish and model forward percentiles (from its diagnostics);
* the reward rate over the camera rate, and every drop the node counted;
* the baseline: scoring alone (a Scorer with the episode context) in this process on the same images, batch sizes
  as the node used them; the ratios live / forward say what the live path adds.

    python bench/live_latency.py                  # 3 cameras, 30 Hz, 10 s, dds then rclpy
    python bench/live_latency.py --rate 15 --seconds 20 --compressed --size 480 640 --transport dds

Writes what it prints to ``bench/results/live_latency.txt`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from ros_stack import messages_of, python_of, start

from robo_reward.assets import DEFAULT_MODEL
from robo_reward.interfaces.messages import image_message
from robo_reward.models import load_model
from robo_reward.ros2.dds import DdsTransport
from robo_reward.ros2.pattern import pattern_camera_process, pattern_image
from robo_reward.scoring import Scorer
from robo_reward.types import FrameBatch, Task

VIEWS = ("corner", "topview", "side")
S = 1_000_000_000


def percentiles_ms(values_s: list[float]) -> str:
    if not values_s:
        return "p50 –, p99 –"
    p50, p99 = np.percentile(np.asarray(values_s) * 1e3, [50, 99])
    return f"p50 {p50:7.2f} ms, p99 {p99:7.2f} ms"


def forward_alone(model, views: dict[str, str], size: tuple[int, int], batch_size: int, repeats: int) -> list[float]:
    """Seconds per scoring call (a Scorer with the episode's context, as the node scores) on batches of pattern images as the node decodes them."""
    rng = np.random.default_rng(0)
    images = {v: np.stack([image_message(t, pattern_image(i, p, size), 0, v).decode()
                           for p in rng.random(batch_size)]) for i, (v, t) in enumerate(views.items())}
    batch = FrameBatch(views=images, timestamps_ns=np.arange(batch_size))
    scorer = Scorer(model, Task("open the drawer"), batch_size)
    scorer.score(batch)  # warm-up; the first set becomes the episode context, as in the node
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score(batch)
        times.append(time.perf_counter() - start)
    return times


DISTRO = "kilted"


def measure(transport: str, args: argparse.Namespace, cameras: dict[str, str]) -> dict:
    """One node on ``transport`` fed by the pattern cameras: what it published, what came back."""
    domain = random.SystemRandom().randint(100, 230)
    warmup, measured = 3.0, args.seconds
    folder = Path(tempfile.mkdtemp(prefix=f"live_latency_{transport}_"))
    command = ["-m", "robo_reward.cli", "serve", "--transport", transport, "--domain", str(domain),
               "--localhost-only", "--task", "open the drawer", "--model", args.model, "--diagnostics-period", "1",
               "--torch-threads", str(args.torch_threads), "--log-level", "WARNING",
               *[a for v, t in cameras.items() for a in ("--view", f"{v}={t}")]]
    if transport == "rclpy":
        node = start(DISTRO, domain, command, folder / "node.log")
    else:
        node = subprocess.Popen([sys.executable, *command])
    context = multiprocessing.get_context("spawn")
    ready, begin = context.Event(), context.Queue()
    camera_process = context.Process(
        target=pattern_camera_process,
        args=(domain, [(cameras, 0.0, warmup + measured)], args.rate, ready, begin, str(folder / "published.json")),
        kwargs={"size": tuple(args.size)},
    )
    camera_process.start()
    bench = DdsTransport(domain, localhost_only=True, node_name="bench")
    received: list[tuple[int, int]] = []  # (stamp ns, receive ns)
    diagnostics: list[dict] = []
    bench.subscribe_reward("/robo_reward/reward", lambda r: received.append((r.stamp_ns, time.time_ns())))
    bench.subscribe_string("/robo_reward/diagnostics", lambda text: diagnostics.append(json.loads(text)))
    stop = threading.Event()
    spinner = threading.Thread(target=bench.spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 300
        while not diagnostics and time.monotonic() < deadline:
            time.sleep(0.1)
        if not diagnostics or not ready.wait(timeout=max(1.0, deadline - time.monotonic())):
            raise SystemExit(f"{transport}: the reward node or the cameras did not come up")
        t0 = (time.time_ns() // S + 1) * S
        begin.put(t0)
        camera_process.join(timeout=warmup + measured + 60)
        time.sleep(2.5)  # the last rewards and a final diagnostics message
        report = diagnostics[-1]
    finally:
        stop.set()
        spinner.join(timeout=5)
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=30)
        bench.close()
    published = json.loads((folder / "published.json").read_text())
    first, end = t0 + int(warmup * S), t0 + int((warmup + measured) * S)
    window = [(s, r) for s, r in received if first <= s < end]
    frames = {v: sum(first <= s < end for s in stamps) for v, stamps in published.items()}
    return {"latency": [(r - s) / 1e9 for s, r in window], "report": report, "published": published,
            "sets": min(frames.values())}


def describe(transport: str, result: dict, forward: list[float], batch: int, args: argparse.Namespace) -> list[str]:
    """The figures of one transport's run, against scoring alone."""
    report, latency, published = result["report"], result["latency"], result["published"]
    views = report["views"]
    drops = {
        "transport (sent, not received)": sum(len(published[v]) - views[v]["received"] for v in VIEWS),
        "sync queue overflow": sum(views[v]["dropped_overflow"] for v in VIEWS),
        "unmatched": sum(views[v]["dropped_unmatched"] for v in VIEWS),
        "stale": sum(views[v]["dropped_stale"] for v in VIEWS),
        "model queue (oldest dropped)": report["dropped_pending"],
    }
    live_p50, live_p99 = np.percentile(latency, [50, 99])
    fwd_p50, fwd_p99 = np.percentile(forward, [50, 99])
    node = report["latency_ms"]
    return [
        f"[{transport}] stamp → reward received : {percentiles_ms(latency)}   ({len(latency)} rewards)",
        (f"[{transport}] node stamp → publish    : p50 {node['stamp_to_publish']['p50']} ms, "
         f"p99 {node['stamp_to_publish']['p99']} ms (node's last 2000)"),
        (f"[{transport}] node model forward      : p50 {node['model_forward']['p50']} ms, "
         f"p99 {node['model_forward']['p99']} ms per call, mean batch {report['mean_batch']}"),
        f"[{transport}] forward alone (baseline): {percentiles_ms(forward)} per call of {batch} set(s)",
        f"[{transport}] ratio live / forward    : p50 {live_p50 / fwd_p50:.1f}×, p99 {live_p99 / fwd_p99:.1f}×",
        (f"[{transport}] reward rate / camera rate = {len(latency) / args.seconds:.2f} Hz / {args.rate:g} Hz "
         f"= {len(latency) / max(result['sets'], 1):.3f} of the image sets"),
        f"[{transport}] drops over the whole run: " + ", ".join(f"{k} {v}" for k, v in drops.items()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="model name or checkpoint")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate, Hz")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (after 3 s of warm-up)")
    parser.add_argument("--compressed", action="store_true", help="JPEG CompressedImage instead of raw rgb8")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("HEIGHT", "WIDTH"),
                        help="camera image size, pixels (the default model's sample is 128×128)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="CPU threads of the model, in the node and for the baseline alike")
    parser.add_argument("--transport", nargs="+", default=["dds", "rclpy"], choices=("dds", "rclpy"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "live_latency.txt")
    args = parser.parse_args()

    suffix = "/image_raw/compressed" if args.compressed else "/image_raw"
    cameras = {view: f"/cam/{view}{suffix}" for view in VIEWS}
    results, lines = {}, []
    for transport in args.transport:
        if transport == "rclpy" and not (python_of(DISTRO).exists() and messages_of(DISTRO).exists()):
            lines.append(f"[rclpy] skipped: ROS 2 {DISTRO} is not installed here (bash scripts/install_ros2.sh)")
            continue
        results[transport] = measure(transport, args, cameras)

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    model = load_model(args.model)
    header = [
        f"model: {model.describe()}, torch threads {torch.get_num_threads()}",
        (f"{len(VIEWS)} cameras × {args.rate:g} Hz, {args.size[1]}×{args.size[0]} "
         f"{'JPEG' if args.compressed else 'rgb8'} on Cyclone DDS, loopback, {args.seconds:g} s measured after 3 s; "
         f"node transports: dds (Cyclone DDS), rclpy (ROS 2 {DISTRO}, Fast DDS)"),
    ]
    forward_by_batch: dict[int, list[float]] = {}
    for transport, result in results.items():
        batch = max(1, round(result["report"]["mean_batch"]))
        if batch not in forward_by_batch:
            forward_by_batch[batch] = forward_alone(model, cameras, tuple(args.size), batch, repeats=200)
        lines += describe(transport, result, forward_by_batch[batch], batch, args)
    output = "\n".join(header + lines)
    print(output)
    args.out.write_text(output + "\n")


if __name__ == "__main__":
    main()
