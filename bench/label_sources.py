"""Labeling throughput on real recording formats: a LeRobot v3.0 dataset and a rosbag2 bag.

The LeRobot dataset is the shared real SO-101 recording (AV1 video); the bag is written
here, with rosbags, from the first seconds of the shared real three-camera table-cleanup
recording: ``cam_high`` as raw ``rgb8`` Images at 30 Hz and ``cam_left_wrist`` as JPEG
CompressedImages at 15 Hz, both downscaled to 320×240, header stamps = receive times.
For each source, in one run on the same frames: decode only, model only, the ideal
pipeline, a by-hand baseline (decode an episode — for the bag, one sequential read —
then score it in large batches) and ``label_episodes`` end to end with the source's sink
(the new dataset, the new bag); see bench/_pipeline.py. The model is a perceptual model
fitted on the source's own episodes (or ``--model``).

    python bench/label_sources.py
    python bench/label_sources.py --lerobot DIR --bag PATH --topic front=/cam/image_raw --task "pick"
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _pipeline import Source, measure

from robo_reward.data.bags import BagEpisode, BagSink, ros2_typestore
from robo_reward.data.lerobot import LeRobotSink, open_lerobot
from robo_reward.data.video import read_frames
from robo_reward.errors import InputError
from robo_reward.labeling import LabelConfig
from robo_reward.models import RewardModel, load_model
from robo_reward.models.options import load_model_from_text
from robo_reward.types import Episode, Task

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
SHARED_LEROBOT = SHARED / "lerobot_v3/so101_pick_place"
SHARED_3CAM = SHARED / "real/table_cleanup_3cam/episode_001"
BAG_SIZE = (240, 320)


def bag_from_recording(path: Path, seconds: float) -> tuple[Path, dict[str, str]]:
    """A .mcap bag of real frames (see the module docstring)."""
    from PIL import Image
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robo_reward.interfaces.images import rgb_to_compressed, rgb_to_raw

    if not SHARED_3CAM.is_dir():
        raise InputError(f"the shared recording {SHARED_3CAM} is absent: pass --bag PATH --topic NAME=TOPIC")
    count = int(seconds * 30)
    cameras = {"/high/image_raw": ("cam_high", "rgb8", 1), "/wrist/image/compressed": ("cam_left_wrist", "jpeg", 2)}
    store = ros2_typestore()
    types = store.types
    events = []
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, (camera, kind, every) in cameras.items():
            msgtype = "sensor_msgs/msg/CompressedImage" if kind == "jpeg" else "sensor_msgs/msg/Image"
            connection = writer.add_connection(topic, msgtype, typestore=store)
            frames = read_frames(SHARED_3CAM / f"{camera}.mp4", np.arange(0, count, every))
            for k, full in enumerate(frames):
                image = np.asarray(Image.fromarray(full).resize(BAG_SIZE[::-1], Image.BOX))
                stamp = 1_700_000_000_000_000_000 + int(k * every * 1e9 / 30)
                header = types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](*divmod(stamp, 10**9)), "cam")
                if kind == "jpeg":
                    msg = types[msgtype](header, "jpeg", np.frombuffer(rgb_to_compressed(image), np.uint8))
                else:
                    height, width, step, data = rgb_to_raw(image, kind)
                    msg = types[msgtype](header, height, width, kind, 0, step, np.frombuffer(data, np.uint8))
                events.append((stamp, connection, store.serialize_cdr(msg, msgtype)))
        for stamp, connection, raw in sorted(events, key=lambda e: e[0]):
            writer.write(connection, stamp, raw)
    return path, {"high": "/high/image_raw", "wrist": "/wrist/image/compressed"}


def make_model(spec: str | None, options: list[str], demos: list[Episode]) -> RewardModel:
    """``--model``, or a perceptual model fitted on the source's own episodes."""
    return load_model_from_text(spec, options) if spec else load_model("perceptual", stride=4).fit(demos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lerobot", type=Path, default=SHARED_LEROBOT, help="LeRobot v3.0 dataset folder")
    parser.add_argument("--bag", type=Path, help="rosbag2 bag (default: written from the shared 3-camera recording)")
    parser.add_argument("--topic", action="append", default=[], metavar="NAME=TOPIC", help="camera topics of --bag")
    parser.add_argument("--task", default="clean the table", help="task of the bag")
    parser.add_argument("--bag-seconds", type=float, default=20.0, help="seconds of the recording in the bag")
    parser.add_argument("--model", help="model name or checkpoint (default: perceptual fitted on each source)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="--model option")
    parser.add_argument("--batch-size", type=int, default=LabelConfig().batch_size, help="as label's --batch-size")
    parser.add_argument("--hand-batch", type=int, default=64, help="batch of the by-hand baseline")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of every run (label's default)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N timings")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = LabelConfig(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = args.lerobot
        lerobot = Source(f"LeRobot {root}", lambda: open_lerobot(root), lambda eps: [LeRobotSink(eps)])
        measure(make_model(args.model, args.option, open_lerobot(root)), lerobot, config, args.hand_batch,
                args.repeats, scratch)
        if args.bag:
            bag, topics = args.bag, dict(item.split("=", 1) for item in args.topic)
        else:
            bag, topics = bag_from_recording(scratch / "bag", args.bag_seconds)
        task = Task(args.task)
        bags = Source(f"bag {bag}", lambda: [BagEpisode(bag, topics, task)], lambda eps: [BagSink(eps)])
        measure(make_model(args.model, args.option, bags.open()), bags, config, args.hand_batch, args.repeats,
                scratch)


if __name__ == "__main__":
    main()
