"""Labeling rosbag2 recordings (.mcap and .db3): bags written with rosbags, two cameras at
different rates (raw and compressed images), a new bag with a Reward topic read back with
rosbags; bad input; the real bags in ../shared/data/bags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rosbags")

from conftest import moving_square_frames
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from robo_reward.cli import main
from robo_reward.data.bags import BagEpisode
from robo_reward.interfaces.images import RAW_ENCODINGS, rgb_to_compressed, rgb_to_raw
from robo_reward.interfaces.messages import REWARD_MSG, REWARD_TYPE
from robo_reward.models import load_model
from robo_reward.types import Sampling, Task

REPO = Path(__file__).resolve().parents[1]
STORE = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000_000_000_000  # ns
LATENCY = 3_000_000  # receive time − header stamp, ns


def image_msg(rgb: np.ndarray, stamp: int, kind: str):
    """A sensor_msgs Image (kind = encoding) or CompressedImage (kind = jpeg/png) message."""
    types = STORE.types
    sec, nanosec = divmod(stamp, 1_000_000_000)
    header = types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                          frame_id="cam")
    if kind in ("jpeg", "png"):
        data = np.frombuffer(rgb_to_compressed(rgb, kind), dtype=np.uint8)
        return "sensor_msgs/msg/CompressedImage", types["sensor_msgs/msg/CompressedImage"](
            header=header, format=kind, data=data)
    # an encoding the toolkit does not know (e.g. yuv422) gets rgb8 pixels under its name
    height, width, step, raw = rgb_to_raw(rgb, kind if kind in RAW_ENCODINGS else "rgb8")
    return "sensor_msgs/msg/Image", types["sensor_msgs/msg/Image"](
        header=header, height=height, width=width, encoding=kind, is_bigendian=0, step=step,
        data=np.frombuffer(raw, dtype=np.uint8))


def write_bag(path: Path, storage: str, cameras: dict[str, tuple[str, float]], seconds: float = 2.0,
              reverse: bool = False) -> Path:
    """A bag with one topic per camera (topic → (kind, rate Hz)) of a moving square, plus /chatter strings."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        events = []
        for i, (topic, (kind, rate)) in enumerate(cameras.items()):
            count = int(seconds * rate)
            frames = moving_square_frames(count, size=48, color=(230, 40 + 90 * i, 40), reverse=reverse)
            msgtype = image_msg(frames[0], 0, kind)[0]
            conn = writer.add_connection(topic, msgtype, typestore=STORE)
            for k in range(count):
                stamp = T0 + round(k * 1e9 / rate)
                events.append((stamp + LATENCY, conn, *image_msg(frames[k], stamp, kind)))
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=STORE)
        for k in range(int(seconds * 4)):
            events.append((T0 + k * 250_000_000 + 1, chatter, "std_msgs/msg/String",
                           STORE.types["std_msgs/msg/String"](data=f"hello {k}")))
        for log, conn, msgtype, msg in sorted(events, key=lambda e: e[0]):
            writer.write(conn, log, STORE.serialize_cdr(msg, msgtype))
    return path


CAMERAS = {"/cam/front/image_raw": ("rgb8", 10.0), "/cam/wrist/compressed": ("jpeg", 5.0)}
TOPICS = ["--view", "front=/cam/front/image_raw", "--view", "wrist=/cam/wrist/compressed"]


@pytest.fixture(scope="module")
def bag_model(tmp_path_factory) -> Path:
    """A perceptual model fitted on a two-camera demo bag (views front, wrist), with `robo-reward fit --bag`."""
    folder = tmp_path_factory.mktemp("bag_model")
    demo = write_bag(folder / "demo", "mcap", CAMERAS, seconds=3.0)
    path = folder / "bag_model.pt"
    assert main(["fit", "perceptual", "--bag", str(demo), *TOPICS, "--task", "slide", "--out", str(path),
                 "--option", "num_steps=3", "--option", "features=pixels:12"]) == 0
    episode = BagEpisode(demo, {"front": "/cam/front/image_raw", "wrist": "/cam/wrist/compressed"}, Task("slide"))
    direct = load_model("perceptual", num_steps=3, features="pixels:12").fit([episode])
    batch = next(episode.iter_batches(8, Sampling()))
    fitted = load_model(path)
    np.testing.assert_allclose(fitted.score(batch, Task("slide")).progress, direct.score(batch, Task("slide")).progress)
    return path


def read_all(path: Path) -> tuple[list, list]:
    with Reader(path) as reader:
        connections = [(c.topic, c.msgtype, c.ext) for c in reader.connections]
        messages = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
    return connections, messages


def reward_store():
    store = get_typestore(Stores.LATEST)
    store.register(get_types_from_msg(REWARD_MSG, REWARD_TYPE))
    return store


def test_reward_msg_is_the_package_definition():
    assert (REPO / "ros2_ws/src/robo_reward_msgs/msg/Reward.msg").read_text() == REWARD_MSG


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_label_bag_writes_new_bag_with_reward_topic(storage, bag_model, tmp_path):
    bag = write_bag(tmp_path / "rec", storage, CAMERAS)
    before = {p.name: p.read_bytes() for p in bag.iterdir()}
    out = tmp_path / "run"
    assert main(["label", "--bag", str(bag), *TOPICS, "--slop", "0.02", "--task", "slide the square",
                 "--model", str(bag_model), "--batch-size", "4", "--out", str(out), "--no-report"]) == 0
    assert {p.name: p.read_bytes() for p in bag.iterdir()} == before, "the input bag must not change"
    table = pd.read_parquet(out / "scores.parquet")
    # front at 10 Hz is the reference; the 5 Hz wrist camera matches every other front image within 20 ms
    np.testing.assert_array_equal(table["frame_index"], np.arange(0, 20, 2))
    new_bag = out / "bags" / "rec"
    assert next(new_bag.glob("*.mcap" if storage == "mcap" else "*.db3"))
    connections, messages = read_all(new_bag)
    old_connections, old_messages = read_all(bag)
    assert connections[: len(old_connections)] == old_connections
    assert connections[-1][:2] == ("/robo_reward/reward", REWARD_TYPE)
    assert [m for m in messages if m[0] != "/robo_reward/reward"] == old_messages  # byte for byte, same times
    store = reward_store()
    rewards = [(t, store.deserialize_cdr(raw, REWARD_TYPE)) for topic, t, raw in messages
               if topic == "/robo_reward/reward"]
    assert len(rewards) == len(table) == 10
    for step, (log_time, msg) in enumerate(rewards):
        row = table.iloc[step]
        stamp = T0 + row["frame_index"] * 100_000_000  # the front image; the wrist image has the same stamp
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp == row["timestamp_ns"]
        assert [s.sec * 10**9 + s.nanosec for s in msg.source_stamps] == [stamp, stamp]
        assert log_time == stamp + LATENCY
        assert msg.step == step and list(msg.view_names) == ["front", "wrist"] and msg.valid
        assert msg.progress == pytest.approx(row["progress"]) and msg.task == "slide the square"
        np.testing.assert_allclose(msg.view_progress, [row["progress.front"], row["progress.wrist"]])
        # the reward of the transition into this set: γΦ_t − Φ_{t−1}, 0 on the first set
        expected = 0.0 if step == 0 else table["reward"].iloc[step - 1]
        assert msg.reward == pytest.approx(expected)
        assert msg.model.startswith("perceptual(")
    progress = table["progress"].to_numpy()
    assert progress[-1] > progress[0]


def test_unsynchronised_sets_are_dropped_by_slop(bag_model, tmp_path):
    cameras = {"/cam/front/image_raw": ("bgr8", 10.0), "/cam/wrist/compressed": ("png", 4.0)}
    bag = write_bag(tmp_path / "rates", "mcap", cameras)
    episode = BagEpisode(next(bag.glob("*.mcap")), {"front": "/cam/front/image_raw", "wrist": "/cam/wrist/compressed"},
                         Task("t"), slop_s=0.01)
    # wrist images at 0, 250, 500 … ms; front at 0, 100, 200 … ms → sets only at 0, 500, 1000, 1500 ms
    np.testing.assert_array_equal(episode.sets.message["front"], [0, 5, 10, 15])
    np.testing.assert_array_equal(episode.sets.message["wrist"], [0, 2, 4, 6])
    batch = next(episode.iter_batches(8, Sampling()))
    assert batch.views["front"].shape == (4, 48, 48, 3) and batch.views["wrist"].shape == (4, 48, 48, 3)
    # bgr8 decoded to RGB: the square's colour is red in front, and png keeps the wrist colours exactly
    assert tuple(batch.views["front"][0, 24, 2]) == (230, 40, 40)
    assert tuple(batch.views["wrist"][0, 24, 2]) == (230, 130, 40)


def assert_refused(args: list[str], out: Path, capsys, *needles: str, code: int = 1) -> None:
    """Refused with exit code ``code`` (1: bad input, 2: a wrong command line) and nothing written."""
    assert main(args) == code
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err
    assert not out.exists(), "nothing may be written on error"
    assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir()), "temporary left behind"


def test_bad_bags_are_refused_and_nothing_is_written(bag_model, tmp_path, capsys):
    out = tmp_path / "out"
    good = write_bag(tmp_path / "good", "mcap", CAMERAS, seconds=1.0)
    base = ["label", "--model", str(bag_model), "--task", "t", "--out", str(out)]
    assert_refused([*base, "--bag", str(good), "--view", "front=/cam/front/image_raw", "--view", "wrist=/nope"],
                   out, capsys, str(good), "no topic '/nope'", "view 'wrist'", "/cam/wrist/compressed")
    odd = write_bag(tmp_path / "odd", "sqlite3", {"/cam/front/image_raw": ("yuv422", 10.0),
                                                  "/cam/wrist/compressed": ("jpeg", 5.0)}, seconds=1.0)
    assert_refused([*base, "--bag", str(odd), *TOPICS], out, capsys,
                   str(odd), "topic /cam/front/image_raw frame 0", "unsupported image encoding 'yuv422'")
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    data = next(good.glob("*.mcap")).read_bytes()
    (cut_dir / "cut.mcap").write_bytes(data[: len(data) * 2 // 3])
    assert_refused([*base, "--bag", str(cut_dir / "cut.mcap"), *TOPICS], out, capsys, "cut.mcap", "truncated")
    cut_db3 = tmp_path / "cut_db3"
    cut_db3.mkdir()
    for part in odd.iterdir():
        data = part.read_bytes()
        (cut_db3 / part.name).write_bytes(data[: len(data) // 2] if part.suffix == ".db3" else data)
    assert_refused([*base, "--bag", str(cut_db3), *TOPICS], out, capsys, "cut_db3", "truncated")
    assert_refused([*base, "--bag", str(good), "--view", "front=/chatter"], out, capsys,
                   "/chatter", "std_msgs/msg/String", "not an image type")
    assert_refused([*base, "--bag", str(good), "--view", "front=/cam/front/image_raw", "--view",
                    "front=/cam/wrist/compressed"], out, capsys, "view 'front' given twice", code=2)
    assert_refused([*base, "--bag", str(good)], out, capsys, "--view NAME=TOPIC", code=2)
    assert_refused([*base, "--bag", str(good), *TOPICS, "--episodes", str(tmp_path)], out, capsys,
                   "choose exactly one input", code=2)
    assert_refused([*base, "--bag", str(good), *TOPICS, "--reward-topic", "/chatter"], out, capsys,
                   "already has a topic /chatter")
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main([*base, "--bag", str(good), *TOPICS]) == 1
    assert "output exists" in capsys.readouterr().err and (out / "mine.txt").read_text() == "keep"


def test_real_mcap_bag_from_ros2_humble(shared_data, bag_model, tmp_path):
    source = shared_data / "bags/humble_sensor_msgs_mcap"
    out = tmp_path / "run"
    assert main(["label", "--bag", str(source), "--view", "front=/image", "--view", "wrist=/compressed_image",
                 "--task", "look", "--model", str(bag_model), "--out", str(out)]) == 0
    new_bag = out / "bags" / source.name
    connections, messages = read_all(new_bag)
    old_connections, old_messages = read_all(next(source.glob("*.mcap")))
    assert connections[:-1] == old_connections and len(old_messages) == 194
    assert [m for m in messages if m[0] != "/robo_reward/reward"] == old_messages
    rewards = [reward_store().deserialize_cdr(raw, REWARD_TYPE) for topic, _, raw in messages
               if topic == "/robo_reward/reward"]
    image_stamp = 1757502238482648699  # header stamp of /image and /compressed_image (640×480 rgb8 and jpeg)
    assert len(rewards) == 1
    assert rewards[0].header.stamp.sec * 10**9 + rewards[0].header.stamp.nanosec == image_stamp
    assert 0.0 <= rewards[0].progress <= 1.0 and rewards[0].reward == 0.0


def test_real_db3_bag_mono8(shared_data, tmp_path, capsys):
    source = shared_data / "bags/images_db3"
    bag = BagEpisode(source, {"cam": "/image"}, Task("look"))
    model = load_model("perceptual", num_steps=2, features="pixels:2").fit([bag]).save(tmp_path / "m.pt")
    out = tmp_path / "run"
    # the deprecated --topic still works (old scripts) and says what to write instead
    assert main(["label", "--bag", str(source), "--topic", "cam=/image", "--task", "look", "--model", str(model),
                 "--out", str(out), "--reward-topic", "/reward"]) == 0
    assert "--topic is deprecated; use --view cam=/image" in capsys.readouterr().err
    table = pd.read_parquet(out / "scores.parquet")
    np.testing.assert_array_equal(table["timestamp_ns"], [0, 1_000_000_000, 2_000_000_000])
    connections, messages = read_all(out / "bags" / "images_db3")
    assert [c[:2] for c in connections] == [("/image", "sensor_msgs/msg/Image"), ("/reward", REWARD_TYPE)]
    assert [m for m in messages if m[0] == "/image"] == read_all(source)[1]
    assert sum(m[0] == "/reward" for m in messages) == 3
