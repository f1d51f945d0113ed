"""Soak the live reward node: ``robo-reward serve`` for ``--minutes`` on each transport, fed two
cameras at 30 Hz, watching its memory, drops and latency over the run.

Per transport a fresh node (default model, views ``corner`` and ``topview``, a random domain on
loopback): ``dds`` runs in this Python, ``rclpy`` in the ROS 2 Kilted virtualenv
(``bash scripts/install_ros2.sh``; skipped when it is not there). This process publishes the
shipped Meta-World sample's frames (128×128 rgb8, looped) on Cyclone DDS and subscribes to the
rewards and diagnostics. Every ``--interval`` seconds, and at the end, per transport:

* the node's RSS (``/proc/PID/status`` VmRSS), its growth since the first interval (MiB, and
  MiB per hour over the run);
* rewards (in the interval and in all, against the sets published), invalid rewards, and
  every drop: frames sent but never received, sync queue overflow, unmatched, stale, the
  model queue;
* stamp → reward received p50 / p99 in the interval; at the end the first interval against
  the last (the drift).

    python bench/live_soak.py                          # 10 min per transport (dds, then rclpy)
    python bench/live_soak.py --minutes 1              # a quick check
    python bench/live_soak.py --transport dds --minutes 60

Writes ``bench/results/live_soak.txt`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from ros_stack import messages_of, python_of, start

from robo_reward.assets import SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.interfaces.messages import ImageMessage, image_message
from robo_reward.ros2.dds import DdsTransport
from robo_reward.types import Sampling

VIEWS = {"corner": "/cam/corner/image_raw", "topview": "/cam/topview/image_raw"}  # the default model's views
TASK = "open the drawer"
RATE = 30.0
DISTRO = "kilted"
S = 1_000_000_000


@dataclass
class Interval:
    """What one interval of the run saw."""

    end_s: float
    rss_mib: float
    rewards: int
    latency_ms: tuple[float, float] | None  # p50, p99 of stamp → reward received


@dataclass
class Soak:
    """One transport's run."""

    transport: str
    intervals: list[Interval] = field(default_factory=list)
    sets_sent: int = 0
    frames_sent: int = 0
    rewards: list[tuple[int, int, bool]] = field(default_factory=list)  # (stamp, received ns, valid)
    diagnostics: list[dict] = field(default_factory=list)
    report_lines: list[str] = field(default_factory=list)  # as printed at each interval
    exit_code: int | None = None


def sample_messages() -> list[dict[str, ImageMessage]]:
    """Per frame of the sample's first eval episode, its two views as rgb8 messages (stamp 0)."""
    batch = next(load_manifest(SAMPLE_DIR, split="eval")[0].iter_batches(1000, Sampling()))
    return [{view: image_message(topic, batch.views[view][i], 0, view) for view, topic in VIEWS.items()}
            for i in range(len(batch))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_node(transport: str, domain: int, log: Path) -> subprocess.Popen:
    args = ["-m", "robo_reward.cli", "serve", "--transport", transport, "--domain", str(domain), "--localhost-only",
            "--task", TASK, "--diagnostics-period", "5", "--log-level", "WARNING",
            *[arg for view, topic in VIEWS.items() for arg in ("--view", f"{view}={topic}")]]
    if transport == "rclpy":
        return start(DISTRO, domain, args, log)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT)


def percentiles(latencies_ms: list[float]) -> tuple[float, float] | None:
    if not latencies_ms:
        return None
    p50, p99 = np.percentile(latencies_ms, [50, 99])
    return float(p50), float(p99)


def drops(soak: Soak, final: bool) -> dict[str, int]:
    """Every drop the last diagnostics show; ``final`` (the node's last report, after the last
    frame): also the frames that never reached the node."""
    report = soak.diagnostics[-1] if soak.diagnostics else None
    if report is None:
        return {}
    views = report["views"].values()
    lost = {"not received": soak.frames_sent - sum(v["received"] + v["malformed"] for v in views)} if final else {}
    return {
        **lost,
        "overflow": sum(v["dropped_overflow"] for v in views),
        "unmatched": sum(v["dropped_unmatched"] for v in views),
        "stale": sum(v["dropped_stale"] for v in views),
        "model queue": report["dropped_pending"],
    }


def line(soak: Soak, interval: Interval) -> str:
    first = soak.intervals[0].rss_mib
    latency = ("–" if interval.latency_ms is None else
               f"p50 {interval.latency_ms[0]:6.2f} p99 {interval.latency_ms[1]:7.2f}")
    invalid = sum(not valid for _, _, valid in soak.rewards)
    dropped = drops(soak, final=False)
    return (f"{soak.transport:<6}{interval.end_s:7.0f} s"
            f"  RSS {interval.rss_mib:7.1f} MiB ({interval.rss_mib - first:+6.1f})"
            f"  rewards {interval.rewards:5d} (all {len(soak.rewards):6d}/{soak.sets_sent:6d}, invalid {invalid})"
            f"  latency ms {latency}  drops in the node {sum(dropped.values()) if dropped else '–'}")


def run(transport: str, minutes: float, interval_s: float, frames: list[dict[str, ImageMessage]]) -> Soak:
    soak = Soak(transport)
    domain = random.SystemRandom().randint(100, 230)
    folder = Path(tempfile.mkdtemp(prefix=f"live_soak_{transport}_"))
    node = start_node(transport, domain, folder / "node.log")
    bench = DdsTransport(domain, localhost_only=True, node_name="soak")
    publishers = {view: bench.image_publisher(topic) for view, topic in VIEWS.items()}
    bench.subscribe_reward("/robo_reward/reward",
                           lambda r: soak.rewards.append((r.stamp_ns, time.time_ns(), r.valid)))
    bench.subscribe_string("/robo_reward/diagnostics", lambda text: soak.diagnostics.append(json.loads(text)))
    stop = threading.Event()
    spinner = threading.Thread(target=bench.spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 300
        while not all(p.subscription_count() for p in publishers.values()):
            if node.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{transport}: the node did not come up: {(folder / 'node.log').read_text()[-2000:]}")
            time.sleep(0.1)
        time.sleep(1.0)  # the reward and diagnostics readers match about then too
        period = round(S / RATE)
        origin = (time.time_ns() // S + 1) * S
        duration_s = minutes * 60
        next_report, counted = interval_s, 0
        k = 0
        while k * period < duration_s * S:
            stamp = origin + k * period
            time.sleep(max(0.0, (stamp - time.time_ns()) / 1e9))
            for view, message in frames[k % len(frames)].items():
                publishers[view].publish(replace(message, stamp_ns=stamp))
            soak.sets_sent += 1
            soak.frames_sent += len(VIEWS)
            k += 1
            elapsed = (time.time_ns() - origin) / 1e9
            if elapsed >= next_report or k * period >= duration_s * S:
                if k * period >= duration_s * S:
                    time.sleep(2.0)  # the last rewards
                window = soak.rewards[counted:]
                counted += len(window)
                soak.intervals.append(Interval(elapsed, rss_mib(node.pid), len(window),
                                               percentiles([(got - s) / 1e6 for s, got, _ in window])))
                soak.report_lines.append(line(soak, soak.intervals[-1]))
                print(soak.report_lines[-1], flush=True)
                next_report += interval_s
        node.send_signal(signal.SIGTERM)
        soak.exit_code = node.wait(timeout=60)
        time.sleep(0.5)  # the final diagnostics
    finally:
        stop.set()
        spinner.join(timeout=5)
        if node.poll() is None:
            node.kill()
        bench.close()
    return soak


def summary(soak: Soak) -> list[str]:
    first, last = soak.intervals[0], soak.intervals[-1]
    hours = (last.end_s - first.end_s) / 3600
    growth = last.rss_mib - first.rss_mib
    rate = f"{growth / hours:+.1f} MiB/hour" if hours > 0 else "–"
    invalid = sum(not valid for _, _, valid in soak.rewards)
    dropped = drops(soak, final=True)

    def latency(i: Interval) -> str:
        return "–" if i.latency_ms is None else f"p50 {i.latency_ms[0]:.2f} / p99 {i.latency_ms[1]:.2f} ms"

    drift = ("–" if first.latency_ms is None or last.latency_ms is None else
             f"p50 {last.latency_ms[0] - first.latency_ms[0]:+.2f} ms, "
             f"p99 {last.latency_ms[1] - first.latency_ms[1]:+.2f} ms")
    return [
        f"{soak.transport}: {last.end_s / 60:.1f} min, {soak.sets_sent} sets sent ({len(VIEWS)} views × {RATE:g} Hz)",
        (f"  RSS {first.rss_mib:.1f} → {last.rss_mib:.1f} MiB from the first interval to the last: {growth:+.1f} MiB, "
         f"{rate} (over {hours * 60:.1f} min)"),
        (f"  rewards {len(soak.rewards)} / {soak.sets_sent} sets "
         f"({len(soak.rewards) / max(soak.sets_sent, 1):.3f}), invalid {invalid}"),
        "  drops " + ", ".join(f"{k} {v}" for k, v in dropped.items()),
        f"  stamp → reward received: first interval {latency(first)}, last {latency(last)}; drift {drift}",
        f"  SIGTERM: exit code {soak.exit_code}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="run time per transport")
    parser.add_argument("--transport", nargs="+", default=["dds", "rclpy"], choices=("dds", "rclpy"))
    parser.add_argument("--interval", type=float, help="seconds between reports (default: a quarter of the run, "
                        "at most 60)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "live_soak.txt")
    args = parser.parse_args()
    interval_s = args.interval or min(60.0, args.minutes * 60 / 4)
    frames = sample_messages()
    lines = [(f"live soak: {args.minutes:g} min per transport, 2 cameras × {RATE:g} Hz (128×128 rgb8, the "
              f"shipped sample looped), default model, loopback; reports every {interval_s:g} s")]
    print(lines[0], flush=True)
    for transport in args.transport:
        if transport == "rclpy" and not (python_of(DISTRO).exists() and messages_of(DISTRO).exists()):
            lines.append(f"rclpy: skipped, ROS 2 {DISTRO} is not installed here (bash scripts/install_ros2.sh)")
            print(lines[-1], flush=True)
            continue
        soak = run(transport, args.minutes, interval_s, frames)
        lines += soak.report_lines + summary(soak)
        print("\n".join(summary(soak)), flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
