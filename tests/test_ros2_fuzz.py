"""Bad traffic on every topic of a real ``robo-reward serve --transport dds`` (a subprocess,
default model, Cyclone DDS on loopback, a random domain), interleaved with good image sets.

The views are the default model's, ``corner`` as raw ``rgb8`` and ``topview`` as JPEG
(``…/compressed``), their frames the shipped Meta-World sample's. Good sets are stamped on a
20 Hz grid; every bad image is stamped half a period after a good one, within the
synchroniser's slop, so that one let through would take a good frame's place in a set.

Timeline, on one 20 Hz grid without pauses: 1 s of good sets only, then three equal waves of
good sets with bad payloads between them, each followed by 1 s of good sets only and a
sample of the node's RSS, then SIGTERM. What is sent per kind:

* raw images: unknown encodings, a step shorter than a row, data longer or shorter than
  step·height, zero sizes, 50 MB claimed with 1 kB sent, 8 MB sent for a 64×64 image, a 3 MB
  image with a row too short, more pixels than the node decodes, a stamp whose nanosec is out
  of range, a good image stamped an hour ahead;
* compressed images: garbage, a truncated or headless JPEG, an empty payload, a GIF, PNG
  headers claiming 60000×60000 and 8000×8000, 4 MB of garbage;
* the task topic: an empty and a blank task, a task of 1 MB;
* DDS level, on every topic: CDR that Cyclone's writer refuses (truncated, a sequence longer
  than the payload, only the encapsulation header: it never leaves this process, and the
  reader side would drop such a sample the same way), and CDR that passes Cyclone's checks
  but does not deserialize (a string that is not UTF-8). ``std_msgs/Empty`` (one byte, any
  value) has no payload of the second kind: every Empty that arrives is a reset, so the reset
  topic only gets the first kind.

Checked: the node stays up; every good set is rewarded (≤ 5 % best-effort loss) and only good
frames are ever in a set; each reward equals an in-process ``LiveRewardStream`` of the same
model fed the frames the reward names (its source stamps), within 1e-5; the diagnostics
count every bad payload under its view and reason (≤ what was sent, ≥ 95 % of it, but for
best-effort payloads over 1 MiB, which DDS may lose whole); the RSS after the last wave stays
within a bound of the first's; SIGTERM ends the node with exit code 0, a final diagnostics
message and no traceback.

``ROBO_REWARD_FUZZ_RESULTS=bench/results/ros2_fuzz.json pytest tests/test_ros2_fuzz.py``
writes the measured figures there (docs/ros2.md quotes them).
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ros_stack import episode_frames, require, start, wait_until

pytest.importorskip("cyclonedds")

from cyclonedds._clayer import ddspy_write
from PIL import Image

from robo_reward.assets import DEFAULT_MODEL, SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.interfaces.images import rgb_to_raw
from robo_reward.interfaces.messages import CompressedImageMessage, ImageMessage, image_message
from robo_reward.models import load_model
from robo_reward.ros2 import dds_types
from robo_reward.ros2.dds import DdsTransport
from robo_reward.ros2.pattern import PATTERN_TASK, fit_pattern_model
from robo_reward.stream.runner import LiveRewardStream, StreamConfig
from robo_reward.types import Task

pytestmark = pytest.mark.slow

VIEWS = {"corner": "/cam/corner/image_raw", "topview": "/cam/topview/image_raw/compressed"}
TASK_TOPIC, RESET_TOPIC = "/robo_reward/task", "/robo_reward/episode_reset"
TASK = "open the drawer"
S = 1_000_000_000
PERIOD = S // 20
WAVES, WAVE_SETS, CLEAN_SETS = 3, 122, 20  # waves; good sets in each, and before, between and after them
RSS_BOUND_MIB = 8.0  # growth allowed from the first wave's end to the last's
# glibc raises its mmap threshold once a multi-MB buffer is freed and then keeps such buffers in
# its heap: the RSS swings by ±20 MB from wave to wave with nothing leaked. A fixed threshold
# hands them back at once, so the RSS follows what the node holds (within 1 MB here).
NODE_ENVIRONMENT = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
MIB = 1 << 20
NOT_UTF8 = object()  # in a list of bad payloads: CDR whose string field is not UTF-8, written as bytes


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def png_header(width: int, height: int) -> bytes:
    """A PNG of only its header and end: it claims ``width``×``height`` and holds no pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(
        b"IEND", b"")


def bad_raw(rgb: np.ndarray) -> list[tuple[str, str, object]]:
    """(kind, reason the node should count, ImageMessage or a DDS Image struct) for the raw view."""
    height, width, step, data = rgb_to_raw(rgb)
    good = ImageMessage(0, "corner", height, width, "rgb8", 0, step, data)

    def raw(**fields: object) -> ImageMessage:
        return replace(good, **fields)

    header = dds_types.Header(dds_types.Time(1, 1_500_000_000), "corner")  # nanosec beyond 1e9
    return [
        ("unknown encoding 'yuv422'", "encoding", raw(encoding="yuv422")),
        ("unknown encoding 'RGB8'", "encoding", raw(encoding="RGB8")),
        ("empty encoding", "encoding", raw(encoding="")),
        ("step shorter than a row", "step", raw(step=step - 3)),
        ("step longer than a row, data of the true step", "data_length", raw(step=step + 4)),
        ("data 1 byte short", "data_length", raw(data=data[:-1])),
        ("data 100 bytes long", "data_length", raw(data=data + bytes(100))),
        ("width·height·channels ≠ len(data) (a 64×64 claim)", "data_length", raw(height=64, width=64, step=192)),
        ("zero width", "size", raw(width=0, step=0, data=b"")),
        ("zero height", "size", raw(height=0, data=b"")),
        ("50 MB claimed, 1 kB sent", "data_length", raw(height=5000, width=3333, step=9999, data=bytes(1024))),
        ("8 MB sent for a 64×64 image", "data_length", raw(height=64, width=64, step=192, data=bytes(8 * MIB))),
        ("100000×100000 claimed", "too_large", raw(height=100_000, width=100_000, step=300_000, data=b"")),
        ("stamp nanosec ≥ 1e9", "stamp", dds_types.Image(header, height, width, "rgb8", 0, step, data)),
        ("good image stamped 1 h ahead", "future_stamp", raw(stamp_ns=3600 * S)),
        ("encoding not UTF-8 (DDS level)", "undecodable", NOT_UTF8),
        ("3 MB image, 1024×1024 rgb8 with a row too short", "step", raw(height=1024, width=1024, step=3071,
                                                                        data=bytes(3071 * 1024))),
    ]


def bad_compressed(jpeg: bytes) -> list[tuple[str, str, object]]:
    """(kind, reason the node should count, CompressedImageMessage or marker) for the JPEG view."""
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")

    def jpg(data: bytes) -> CompressedImageMessage:
        return CompressedImageMessage(0, "topview", "jpeg", data)

    return [
        ("not an image", "corrupt", jpg(b"this is not an image at all")),
        ("truncated JPEG", "corrupt", jpg(jpeg[: len(jpeg) // 2])),
        ("JPEG without its first 64 bytes", "corrupt", jpg(jpeg[64:])),
        ("empty payload", "empty", jpg(b"")),
        ("GIF payload", "format", jpg(gif.getvalue())),
        ("PNG header claiming 60000×60000", "too_large", jpg(png_header(60_000, 60_000))),
        ("PNG header claiming 8000×8000", "too_large", jpg(png_header(8000, 8000))),
        ("4 MB of garbage", "corrupt", jpg(random.Random(0).randbytes(4 * MIB))),
        ("format not UTF-8 (DDS level)", "undecodable", NOT_UTF8),
    ]


def write_raw(writer, payload: bytes) -> int:
    """Write serialized CDR as it is (cyclonedds' own ``write`` serializes a sample first)."""
    return ddspy_write(writer._ref, payload.ljust((len(payload) + 3) & ~3, b"\0"))


def not_utf8(sample, text: str) -> bytes:
    """``sample``'s CDR with the string ``text`` in it replaced by as many bytes that are not UTF-8."""
    data = sample.serialize(use_version_2=False)
    encoded = text.encode() + b"\0"
    assert data.count(encoded) == 1
    return data.replace(encoded, b"\xff" * len(text) + b"\0")


def refused_cdr(sample, length_at: int | None) -> list[bytes]:
    """CDR of ``sample`` that Cyclone's writer refuses: cut in half, the encapsulation header only,
    and (with ``length_at``, the offset of its first string's length) a length beyond the payload."""
    data = sample.serialize(use_version_2=False)
    beyond = [] if length_at is None else [data[:length_at] + b"\xff\xff\xff\x7f" + data[length_at + 4:]]
    return [data[: len(data) // 2], data[:4], *beyond]


class Fuzzer:
    """The checker side: publishers of good and bad traffic, subscribers of rewards and diagnostics."""

    def __init__(self, domain: int) -> None:
        self.transport = DdsTransport(domain, localhost_only=True, node_name="fuzzer")
        self.rewards: list = []
        self.diagnostics: list[dict] = []
        self.transport.subscribe_reward("/robo_reward/reward", self.rewards.append)
        self.transport.subscribe_string("/robo_reward/diagnostics",
                                        lambda text: self.diagnostics.append(json.loads(text)))
        self.images = {view: self.transport.image_publisher(topic) for view, topic in VIEWS.items()}
        self.task = self.transport.string_publisher(TASK_TOPIC)
        self.reset = self.transport.empty_publisher(RESET_TOPIC)
        self.sent: Counter = Counter()  # (topic, kind, reason) → payloads that left this process
        self.big: set[str] = set()  # kinds of over 1 MiB on a best-effort topic: DDS may lose them
        self.refused: Counter = Counter()  # topic → payloads Cyclone's writer refused
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self.transport.spin, args=(self._stop,), daemon=True)
        self._spinner.start()

    def publishers(self) -> list:
        return [*self.images.values(), self.task, self.reset]

    def send_bad(self, view: str, kind: str, reason: str, payload: object, stamp_ns: int) -> None:
        publisher = self.images[view]
        topic = publisher.topic
        if payload is NOT_UTF8:
            header = dds_types.Header(dds_types.Time(*divmod(stamp_ns, S)), view)
            sample, text = ((dds_types.Image(header, 2, 2, "rgb8", 0, 6, bytes(12)), "rgb8") if view == "corner"
                            else (dds_types.CompressedImage(header, "jpeg", b"x"), "jpeg"))
            assert write_raw(publisher._writer, not_utf8(sample, text)) == 0
        elif isinstance(payload, (ImageMessage, CompressedImageMessage)):
            if len(payload.data) > MIB:
                self.big.add(kind)
            # a payload's own stamp is 0, or the hour of the future-stamp kind
            publisher.publish(replace(payload, stamp_ns=stamp_ns + payload.stamp_ns))
        else:  # a DDS struct whose header the neutral message cannot express
            publisher._writer.write(payload)
        self.sent[(topic, kind, reason)] += 1

    def send_refused(self, publisher, sample, length_at: int | None) -> None:
        for payload in refused_cdr(sample, length_at):
            assert write_raw(publisher._writer, payload) < 0, f"Cyclone wrote {payload!r} on {publisher.topic}"
            self.refused[publisher.topic] += 1

    def close(self) -> None:
        self._stop.set()
        self._spinner.join(timeout=5)
        self.transport.close()




@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    """Run the whole timeline once; the tests below check what it recorded."""
    folder = tmp_path_factory.mktemp("fuzz")
    domain = random.SystemRandom().randint(100, 230)
    log_path = folder / "node.log"
    with open(log_path, "w") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "robo_reward.cli", "serve", "--transport", "dds", "--domain", str(domain),
             "--localhost-only", "--task", TASK, "--diagnostics-period", "3600", "--log-level", "WARNING",
             *[arg for view, topic in VIEWS.items() for arg in ("--view", f"{view}={topic}")]],
            stdout=log, stderr=subprocess.STDOUT, env=NODE_ENVIRONMENT)
        model = load_model(DEFAULT_MODEL)  # for the expected rewards, while the node starts
        fuzzer = Fuzzer(domain)
        try:
            yield {**run_timeline(node, fuzzer, log_path), "model": model}
        finally:
            if node.poll() is None:
                node.kill()
            fuzzer.close()


@pytest.fixture(scope="module")
def expected(fuzz) -> list:
    """The records an in-process LiveRewardStream of the default model, with the node's default
    options, makes from the frames each reward names (its source stamps), in the node's order."""
    records: list = []
    stream = LiveRewardStream(fuzz["model"], Task(TASK), StreamConfig(views=tuple(VIEWS)), records.append)
    for reward in fuzz["rewards"]:
        for view, stamp in zip(VIEWS, reward.source_stamps_ns):
            stream.push(view, fuzz["frames"][stamp][view])
        assert stream.process(timeout_s=0.0) == 1
    return records


def run_timeline(node: subprocess.Popen, fuzzer: Fuzzer, log_path: Path) -> dict:
    """The timeline of the module docstring; returns what it recorded."""
    samples = episode_frames(load_manifest(SAMPLE_DIR, split="eval")[0].name)
    jpeg = image_message(VIEWS["topview"], samples["topview"][0], 0, "topview").data
    bad = [("corner", *b) for b in bad_raw(samples["corner"][0])] + [("topview", *b) for b in bad_compressed(jpeg)]
    wait_until(lambda: all(p.subscription_count() for p in fuzzer.publishers()), 180,
               f"the reward node to come up (log: {log_path})")
    frames: dict[int, dict[str, object]] = {}  # good stamp → view → message
    counter = iter(range(10**6))
    rss: dict[str, float] = {}
    header = dds_types.Header(dds_types.Time(0, 0), "")
    # one grid without pauses: after a pause longer than the stale timeout, the first camera back
    # would find the other stale and be scored alone
    origin = (time.time_ns() // PERIOD + 1) * PERIOD

    def good_set(k: int) -> None:
        stamp = origin + k * PERIOD
        frames[stamp] = {view: image_message(topic, samples[view][k % len(samples[view])], stamp, view)
                         for view, topic in VIEWS.items()}
        time.sleep(max(0.0, (stamp - time.time_ns()) / 1e9))
        for view, message in frames[stamp].items():
            fuzzer.images[view].publish(message)

    def wave(first: int) -> None:
        tasks = ["", "   ", "x" * (1 << 20)]
        for k in range(first, first + WAVE_SETS):
            good_set(k)
            if k - first < len(tasks):  # the task topic is reliable: a few suffice
                fuzzer.task.publish(tasks[k - first])
                fuzzer.sent[(TASK_TOPIC, ("empty task", "blank task", "1 MB task")[k - first],
                             ("empty", "empty", "too_long")[k - first])] += 1
            elif k - first == len(tasks):
                assert write_raw(fuzzer.task._writer, not_utf8(dds_types.String("drawer"), "drawer")) == 0
                fuzzer.sent[(TASK_TOPIC, "task not UTF-8 (DDS level)", "undecodable")] += 1
                # the length offsets: after the encapsulation header (4 bytes), and after a stamp (8 more)
                for publisher, sample, length_at in (
                        (fuzzer.task, dds_types.String(TASK), 4), (fuzzer.reset, dds_types.Empty(), None),
                        (fuzzer.images["corner"], dds_types.Image(header, 2, 2, "rgb8", 0, 6, bytes(12)), 12),
                        (fuzzer.images["topview"], dds_types.CompressedImage(header, "jpeg", jpeg), 12)):
                    fuzzer.send_refused(publisher, sample, length_at)
            else:
                view, kind, reason, payload = bad[next(counter) % len(bad)]
                fuzzer.send_bad(view, kind, reason, payload, origin + k * PERIOD + PERIOD // 2)

    def clean(first: int) -> None:
        for k in range(first, first + CLEAN_SETS):
            good_set(k)

    clean(0)
    rss["warm"] = rss_mib(node.pid)
    fuzz_started = time.monotonic()
    for number in range(1, WAVES + 1):
        first = number * CLEAN_SETS + (number - 1) * WAVE_SETS
        wave(first)
        clean(first + WAVE_SETS)
        rss[f"wave {number}"] = rss_mib(node.pid)
    fuzz_s = time.monotonic() - fuzz_started
    good_stamps = set(frames)
    wait_until(lambda: fuzzer.rewards and fuzzer.rewards[-1].stamp_ns == max(good_stamps), 20,
               "the reward of the last good set")
    alive = node.poll() is None
    assert not fuzzer.diagnostics  # the period is an hour: the only diagnostics message is the final one
    node.send_signal(signal.SIGTERM)
    exit_code = node.wait(timeout=30)
    wait_until(lambda: fuzzer.diagnostics, 5, "the final diagnostics after SIGTERM")
    return {"rewards": list(fuzzer.rewards), "frames": frames, "good_stamps": good_stamps, "sent": fuzzer.sent,
            "big": fuzzer.big, "refused": fuzzer.refused, "final": fuzzer.diagnostics[-1], "rss": rss, "alive": alive,
            "exit_code": exit_code, "log": log_path.read_text(), "fuzz_s": fuzz_s}


def test_the_node_survives_and_sigterm_ends_it_cleanly(fuzz):
    assert fuzz["alive"]
    assert fuzz["exit_code"] == 0, fuzz["log"][-3000:]
    assert "Traceback" not in fuzz["log"], fuzz["log"][-3000:]
    assert fuzz["final"]["published"] == len(fuzz["rewards"])  # the final diagnostics, published on SIGTERM


def test_every_good_set_is_rewarded_from_good_frames_only(fuzz):
    rewards, good = fuzz["rewards"], fuzz["good_stamps"]
    stamps = [r.stamp_ns for r in rewards]
    assert stamps == sorted(set(stamps))
    assert all(r.valid and r.status == "" and r.view_valid == (True, True) for r in rewards), \
        [(r.stamp_ns, r.status) for r in rewards if r.status]
    assert all(set(r.source_stamps_ns) <= good for r in rewards), "a bad frame made it into a set"
    assert len(set(stamps) & good) >= 0.95 * len(good), f"{len(set(stamps) & good)}/{len(good)} good sets rewarded"


def test_rewards_equal_the_same_model_on_the_same_frames(fuzz, expected):
    rewards = fuzz["rewards"]
    for field in ("progress", "success_probability", "uncertainty", "reward"):
        np.testing.assert_allclose([getattr(r, field) for r in rewards], [getattr(e, field) for e in expected],
                                   atol=1e-5, err_msg=field)
    np.testing.assert_allclose([r.view_progress for r in rewards], [e.view_progress for e in expected], atol=1e-5)
    assert [(r.episode, r.step) for r in rewards] == [(e.episode, e.step) for e in expected]


def test_bad_payloads_are_counted_per_view_and_reason(fuzz):
    final, sent = fuzz["final"], fuzz["sent"]
    topic_view = {topic: view for view, topic in VIEWS.items()}
    for view, topic in VIEWS.items():
        small, big = Counter(), Counter()  # per reason: payloads sent, of at most / over 1 MiB
        for (to, kind, reason), count in sent.items():
            if to == topic:
                (big if kind in fuzz["big"] else small)[reason] += count
        counted = final["views"][view]["malformed_reasons"]
        assert set(counted) <= set(small) | set(big), (view, counted)
        for reason in set(small) | set(big):
            assert 0.95 * small[reason] <= counted.get(reason, 0) <= small[reason] + big[reason], \
                (view, reason, counted, dict(small), dict(big))
        assert final["views"][view]["malformed"] == sum(counted.values())
        # every DDS-level failure also counts on its topic
        assert final["undecodable"].get(topic, 0) == counted.get("undecodable", 0) + counted.get("stamp", 0)
    task = Counter()
    for (topic, _kind, reason), count in sent.items():
        if topic == TASK_TOPIC and reason != "undecodable":
            task[reason] += count
    assert final["task_refused"] == dict(task)  # the task topic is reliable: every one arrives
    assert final["undecodable"].get(TASK_TOPIC) == sent[(TASK_TOPIC, "task not UTF-8 (DDS level)", "undecodable")]
    assert set(final["undecodable"]) <= set(topic_view) | {TASK_TOPIC}
    assert final["task"] == TASK and final["episode"] == 0  # no bad payload changed the task or reset the episode


def test_memory_does_not_grow_without_bound(fuzz):
    rss = fuzz["rss"]
    assert rss[f"wave {WAVES}"] - rss["wave 1"] <= RSS_BOUND_MIB, rss


def test_write_the_figures_when_asked(fuzz, expected):
    target = os.environ.get("ROBO_REWARD_FUZZ_RESULTS")
    if not target:
        pytest.skip("set ROBO_REWARD_FUZZ_RESULTS=PATH to write the measured figures")
    final, good = fuzz["final"], fuzz["good_stamps"]
    rewarded = {r.stamp_ns for r in fuzz["rewards"]} & good
    worst = max(abs(getattr(r, f) - getattr(e, f)) for r, e in zip(fuzz["rewards"], expected)
                for f in ("progress", "success_probability", "uncertainty", "reward"))
    counted = {VIEWS[v]: final["views"][v]["malformed_reasons"] for v in VIEWS}
    counted[TASK_TOPIC] = {**final["task_refused"], "undecodable": final["undecodable"].get(TASK_TOPIC, 0)}
    kinds = [{"topic": topic, "kind": kind, "reason": reason, "sent": count, "over_1_mib": kind in fuzz["big"]}
             for (topic, kind, reason), count in sorted(fuzz["sent"].items())]
    per_reason: dict[tuple[str, str], dict[str, int]] = {}
    for kind in kinds:
        row = per_reason.setdefault((kind["topic"], kind["reason"]), {"sent": 0, "sent_over_1_mib": 0})
        row["sent"] += kind["sent"]
        row["sent_over_1_mib"] += kind["sent"] if kind["over_1_mib"] else 0
    results = {
        "what": "tests/test_ros2_fuzz.py: bad traffic on every topic of robo-reward serve --transport dds "
                f"(default model, corner rgb8 + topview JPEG, Cyclone DDS on loopback), {WAVES} waves",
        "payloads_sent": sum(fuzz["sent"].values()),
        "payloads_refused_by_cyclone_writer": dict(fuzz["refused"]),
        "kinds": kinds,
        "per_reason": [{"topic": topic, "reason": reason, **row, "counted": counted[topic].get(reason, 0)}
                       for (topic, reason), row in per_reason.items()],
        "undecodable_per_topic": final["undecodable"],
        "good_sets": len(good),
        "good_sets_rewarded": len(rewarded),
        "rewards_from_bad_frames": sum(not set(r.source_stamps_ns) <= good for r in fuzz["rewards"]),
        "largest_difference_to_in_process_stream": worst,
        "node_alive": fuzz["alive"],
        "sigterm_exit_code": fuzz["exit_code"],
        "rss_mib": {k: round(v, 1) for k, v in fuzz["rss"].items()},
        "fuzz_s": round(fuzz["fuzz_s"], 1),
    }
    Path(target).write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


def test_serve_on_rclpy_stops_cleanly_on_sigterm(tmp_path):
    """``serve --transport rclpy`` (ROS 2 Kilted from the wheels) on SIGTERM: exit 0, its final
    diagnostics message (Fast DDS → this Cyclone subscriber; the period is an hour, so no other
    comes), no traceback."""
    require("kilted")
    domain = random.SystemRandom().randint(100, 230)
    checkpoint = fit_pattern_model(("front", "wrist")).save(tmp_path / "pattern.pt")
    log = tmp_path / "node.log"
    node = start("kilted", domain, ["-m", "robo_reward.cli", "serve", "--transport", "rclpy", "--domain", str(domain),
                                    "--localhost-only", "--task", PATTERN_TASK, "--model", str(checkpoint),
                                    "--view", "front=/cam/front/image_raw", "--view", "wrist=/cam/wrist/image_raw",
                                    "--diagnostics-period", "3600"], log)
    checker = DdsTransport(domain, localhost_only=True, node_name="checker")
    diagnostics: list[dict] = []
    checker.subscribe_string("/robo_reward/diagnostics", lambda text: diagnostics.append(json.loads(text)))
    task = checker.string_publisher(TASK_TOPIC)  # its match says the node is up
    stop = threading.Event()
    spinner = threading.Thread(target=checker.spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        wait_until(lambda: task.subscription_count() or node.poll() is not None, 120,
                   f"the rclpy node's task subscription (log: {log})")
        assert node.poll() is None, log.read_text()[-3000:]
        time.sleep(1.0)  # discovery of the node's diagnostics writer, matched about when its task reader was
        node.send_signal(signal.SIGTERM)
        exit_code = node.wait(timeout=30)
        wait_until(lambda: diagnostics, 5, "the final diagnostics after SIGTERM")
    finally:
        stop.set()
        spinner.join(timeout=5)
        if node.poll() is None:
            node.kill()
        checker.close()
    assert exit_code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert len(diagnostics) == 1 and diagnostics[0]["published"] == 0 and diagnostics[0]["task"] == PATTERN_TASK
