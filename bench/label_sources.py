"""Labeling throughput on real recording formats: a LeRobot v3.0 dataset and a rosbag2 bag.

For each source, in one run and on the same frames (frames/s = synchronised image sets
scored per second):

* end to end  — ``label_episodes`` with the source's sink: open the source, decode,
  synchronise, score, shape, write scores.parquet and the new dataset / new bag (no
  HTML report);
* model only  — ``model.score`` on the same micro-batches, decoded beforehand (the
  ceiling end to end can reach);
* naive loop  — decode one frame, score it alone: LeRobot's own per-frame loader
  (``LeRobotDataset[i]``) and, for the bag, a reader query per image (timed on a subset).

    python bench/label_sources.py                        # shared SO-101 dataset (else synthetic) + a synthetic bag
    python bench/label_sources.py --lerobot DIR --bag PATH --topic front=/cam/image_raw --task "pick"
    python bench/label_sources.py --model clip --option pretrained=none --repeats 1   # a heavier forward
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robo_reward.data.bags import BagEpisode, BagSink, ros2_typestore
from robo_reward.data.lerobot import LeRobotSink, open_lerobot
from robo_reward.labeling import LabelConfig, label_episodes
from robo_reward.models import RewardModel, load_model
from robo_reward.types import FrameBatch, Task

SHARED_LEROBOT = Path(__file__).resolve().parents[2] / "shared/data/lerobot_v3/so101_pick_place"
SIZE = (240, 320)  # synthetic frames, H × W


def scene(count: int, shade: int) -> np.ndarray:
    """(count, H, W, 3) uint8: a block crossing a textured floor left → right."""
    height, width = SIZE
    rng = np.random.default_rng(shade)
    floor = rng.integers(60, 120, size=(height, width, 3), dtype=np.uint8)
    frames = np.repeat(floor[None], count, axis=0)
    for t in range(count):
        x = int(t / max(count - 1, 1) * (width - 60))
        frames[t, height // 3 : height // 3 + 50, x : x + 60] = (230, shade, 40)
    return frames


def synthetic_lerobot(root: Path, episodes: int = 4, frames: int = 120) -> Path:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    camera = {"dtype": "video", "shape": (*SIZE, 3), "names": ["height", "width", "channels"]}
    dataset = LeRobotDataset.create("bench/blocks", fps=30, root=root, vcodec="h264",
                                    features={"observation.images.front": camera, "observation.images.wrist": camera})
    for _ in range(episodes):
        front, wrist = scene(frames, 40), scene(frames, 160)
        for t in range(frames):
            dataset.add_frame({"observation.images.front": front[t], "observation.images.wrist": wrist[t],
                               "task": "push the block right"})
        dataset.save_episode()
    dataset.finalize()
    return root


def synthetic_bag(path: Path, seconds: float = 20.0) -> tuple[Path, dict[str, str]]:
    """A .mcap bag: front camera 30 Hz rgb8, wrist camera 15 Hz jpeg (header stamps = receive times)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robo_reward.interfaces.images import rgb_to_compressed, rgb_to_raw

    store = ros2_typestore()
    types = store.types
    cameras = {"/front/image_raw": ("rgb8", 30.0, 40), "/wrist/image/compressed": ("jpeg", 15.0, 160)}
    events = []
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, (kind, rate, shade) in cameras.items():
            msgtype = "sensor_msgs/msg/CompressedImage" if kind == "jpeg" else "sensor_msgs/msg/Image"
            connection = writer.add_connection(topic, msgtype, typestore=store)
            frames = scene(int(seconds * rate), shade)
            for k, image in enumerate(frames):
                stamp = 1_700_000_000_000_000_000 + int(k * 1e9 / rate)
                sec, nanosec = divmod(stamp, 1_000_000_000)
                header = types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](sec, nanosec), "cam")
                if kind == "jpeg":
                    msg = types[msgtype](header, "jpeg", np.frombuffer(rgb_to_compressed(image), np.uint8))
                else:
                    height, width, step, data = rgb_to_raw(image, kind)
                    msg = types[msgtype](header, height, width, kind, 0, step, np.frombuffer(data, np.uint8))
                events.append((stamp, connection, store.serialize_cdr(msg, msgtype)))
        for stamp, connection, raw in sorted(events, key=lambda e: e[0]):
            writer.write(connection, stamp, raw)
    return path, {"front": "/front/image_raw", "wrist": "/wrist/image/compressed"}


def best_of(repeats: int, runs: dict[str, Callable[[], None]]) -> dict[str, float]:
    """Best wall time (s) of each run; the runs take turns, so a busy spell hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def report(name: str, frames: int, naive_frames: int, times: dict[str, float]) -> None:
    e2e, forward, naive_rate = times["e2e"], times["model"], naive_frames / times["naive"]
    print(f"\n{name}: {frames} image sets")
    print(f"  end to end   : {frames / e2e:9.1f} sets/s")
    print(f"  model only   : {frames / forward:9.1f} sets/s  (pre-decoded batches: the ceiling)")
    print(f"  naive loop   : {naive_rate:9.1f} sets/s  (decode one frame, score it alone)")
    print(f"  end to end / model only = {forward / e2e:.3f}   end to end / naive = {frames / e2e / naive_rate:.1f}x")


def make_model(spec: str | None, options: dict[str, str], demos: list) -> RewardModel:
    """The model ``--model``/``--option`` name, or a perceptual model fitted on the source's own episodes."""
    if spec:
        return load_model(spec, **options)
    return load_model("perceptual", stride=4).fit(demos)


def bench_lerobot(root: Path, model_spec: str | None, options: dict[str, str], config: LabelConfig, repeats: int,
                  naive_sets: int, scratch: Path) -> None:
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    episodes = open_lerobot(root)
    model = make_model(model_spec, options, episodes)
    batches = [(b, e.task) for e in episodes for b in e.iter_batches(config.batch_size, config.sampling)]
    frames = sum(len(b) for b, _ in batches)

    def end_to_end() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            fresh = open_lerobot(root)
            label_episodes(model, fresh, config, Path(tmp) / "run", report=False, sinks=[LeRobotSink(fresh)])

    loader = LeRobotDataset(episodes[0].metadata["repo_id"], root=root, video_backend="pyav")
    keys = [episodes[0].cameras[v] for v in episodes[0].view_names]
    picks = np.linspace(0, len(loader) - 1, min(naive_sets, len(loader))).round().astype(int)

    def naive() -> None:
        for index in picks:
            item = loader[int(index)]
            views = {view: (item[key].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()[None]
                     for view, key in zip(episodes[0].view_names, keys)}
            model.score(FrameBatch(views=views, timestamps_ns=np.array([0])), episodes[0].task)

    times = best_of(repeats, {"e2e": end_to_end, "model": lambda: [model.score(b, t) for b, t in batches],
                              "naive": naive})
    print(f"model: {model.describe()}")
    report(f"LeRobot {root} ({len(episodes)} episodes, views {episodes[0].view_names})", frames, len(picks), times)


def bench_bag(path: Path, topics: dict[str, str], task: Task, model_spec: str | None, options: dict[str, str],
              config: LabelConfig, repeats: int, naive_sets: int, scratch: Path) -> None:
    from robo_reward.data.bags import decode_image, open_bag

    episode = BagEpisode(path, topics, task)
    model = make_model(model_spec, options, [episode])
    batches = list(episode.iter_batches(config.batch_size, config.sampling))
    frames = sum(len(b) for b in batches)

    def end_to_end() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            fresh = BagEpisode(path, topics, task)
            label_episodes(model, [fresh], config, Path(tmp) / "run", report=False, sinks=[BagSink([fresh])])

    sets = episode.sets
    rows = np.linspace(0, len(sets.log_ns) - 1, min(naive_sets, len(sets.log_ns))).round().astype(int)
    store = ros2_typestore()

    def naive() -> None:
        with open_bag(path) as reader:
            by_topic = {c.topic: c for c in reader.connections}
            for row in rows:
                views = {}
                for view, topic in topics.items():
                    number = int(sets.message[view][row])
                    when = int(episode.index[view].log_ns[number])
                    connection, _, raw = next(reader.messages([by_topic[topic]], start=when, stop=when + 1))
                    views[view] = decode_image(store, raw, connection.msgtype, topic)[None]
                model.score(FrameBatch(views=views, timestamps_ns=np.array([0])), task)

    times = best_of(repeats, {"e2e": end_to_end, "model": lambda: [model.score(b, task) for b in batches],
                              "naive": naive})
    print(f"model: {model.describe()}")
    report(f"bag {path} (views {list(topics)})", frames, len(rows), times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lerobot", type=Path, help="LeRobot v3.0 dataset folder (default: the shared SO-101 "
                                                     "dataset if present, else a synthetic one)")
    parser.add_argument("--bag", type=Path, help="rosbag2 bag (default: a synthetic two-camera .mcap)")
    parser.add_argument("--topic", action="append", default=[], metavar="NAME=TOPIC", help="camera topics of --bag")
    parser.add_argument("--task", default="push the block right", help="task of --bag")
    parser.add_argument("--model", help="model name or checkpoint (default: perceptual fitted on each source)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a string option of a registered --model, e.g. pretrained=none")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    parser.add_argument("--naive-sets", type=int, default=100, help="image sets timed in the naive loop")
    args = parser.parse_args()

    config = LabelConfig(batch_size=args.batch_size)
    options = dict(item.split("=", 1) for item in args.option)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = args.lerobot or (SHARED_LEROBOT if SHARED_LEROBOT.is_dir() else synthetic_lerobot(scratch / "ds"))
        bench_lerobot(root, args.model, options, config, args.repeats, args.naive_sets, scratch)
        if args.bag:
            bag, topics = args.bag, dict(item.split("=", 1) for item in args.topic)
        else:
            bag, topics = synthetic_bag(scratch / "bag")
        bench_bag(bag, topics, Task(args.task), args.model, options, config, args.repeats, args.naive_sets, scratch)


if __name__ == "__main__":
    main()
