"""ROS 2 messages: CDR bytes of the Cyclone DDS structs equal rosbags' ROS 2 serializer,
Reward.msg has one source, and image payloads decode (or fail clearly) in every encoding."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from robo_reward.errors import ConfigError, InputError, MalformedMessage
from robo_reward.interfaces.images import (
    RAW_ENCODINGS,
    compressed_to_rgb,
    raw_to_rgb,
    rgb_to_compressed,
    rgb_to_raw,
)
from robo_reward.interfaces.messages import REWARD_MSG, REWARD_TYPE, join_stamp, split_stamp

pytest.importorskip("cyclonedds")
rosbags_typesys = pytest.importorskip("rosbags.typesys")

from rosbags.interfaces import Nodetype

from robo_reward.ros2 import dds_types as d

REWARD_MSG_FILE = Path(__file__).resolve().parents[1] / "ros2_ws/src/robo_reward_msgs/msg/Reward.msg"
DTYPES = {"bool": np.bool_, "uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16,
          "uint32": np.uint32, "int32": np.int32, "uint64": np.uint64, "int64": np.int64,
          "float32": np.float32, "float64": np.float64}


@pytest.fixture(scope="module")
def typestore():
    store = rosbags_typesys.get_typestore(rosbags_typesys.Stores.ROS2_HUMBLE)
    store.register(rosbags_typesys.get_types_from_msg(REWARD_MSG_FILE.read_text(), REWARD_TYPE))
    return store


def to_rosbags(store, msgtype: str, value):
    """The rosbags message equal to a DDS struct, field by field from rosbags' own definition."""
    kwargs = {}
    for name, (node, desc) in store.fielddefs[msgtype][1]:
        field = getattr(value, name)
        if node == Nodetype.NAME:
            kwargs[name] = to_rosbags(store, desc, field)
        elif node == Nodetype.BASE:
            kwargs[name] = field
        else:
            assert node == Nodetype.SEQUENCE, f"{msgtype}.{name}: unexpected node {node}"
            (sub_node, sub_desc), _bound = desc
            if sub_node == Nodetype.NAME:
                kwargs[name] = [to_rosbags(store, sub_desc, v) for v in field]
            elif sub_desc[0] == "string":
                kwargs[name] = list(field)
            elif isinstance(field, bytes):
                kwargs[name] = np.frombuffer(field, dtype=np.uint8)
            else:
                kwargs[name] = np.array(field, dtype=DTYPES[sub_desc[0]])
    return store.types[msgtype](**kwargs)


def header(sec: int = 1_700_000_000, nanosec: int = 123_456_789, frame_id: str = "cam") -> d.Header:
    return d.Header(d.Time(sec, nanosec), frame_id)


SAMPLES = {
    "builtin_interfaces/msg/Time": lambda: d.Time(-5, 999_999_999),
    "std_msgs/msg/Header": lambda: header(frame_id="odd"),
    "std_msgs/msg/String": lambda: d.String("open the drawer — ünïcode"),
    "std_msgs/msg/Empty": lambda: d.Empty(),
    "std_msgs/msg/MultiArrayDimension": lambda: d.MultiArrayDimension("x", 4, 4),
    "std_msgs/msg/MultiArrayLayout": lambda: d.MultiArrayLayout([d.MultiArrayDimension("ab", 2, 6),
                                                                 d.MultiArrayDimension("c", 3, 3)], 1),
    "std_msgs/msg/Float32MultiArray": lambda: d.Float32MultiArray(
        d.MultiArrayLayout([d.MultiArrayDimension("", 3, 3)], 0), [0.5, -1.25, 3.0]),
    "sensor_msgs/msg/Image": lambda: d.Image(header(frame_id="front"), 2, 3, "rgb8", 0, 9, bytes(range(18))),
    "sensor_msgs/msg/CompressedImage": lambda: d.CompressedImage(header(), "jpeg", b"\xff\xd8\xff\xe0odd"),
    "sensor_msgs/msg/JointState": lambda: d.JointState(
        header(frame_id=""), ["panda_joint1", "j2"], [0.1, -0.2], [1.5, 2.5], []),
    REWARD_TYPE: lambda: d.Reward(
        header=header(frame_id=""), reward=-0.0123, progress=0.5, success_probability=0.25, uncertainty=0.2,
        valid=True, status="view 'wrist' stale", task="open the drawer", model="perceptual", episode=3, step=17,
        view_names=["front", "wrist"], view_progress=[0.5, math.nan], view_valid=[True, False],
        source_stamps=[d.Time(1, 2), d.Time(0, 0)]),
}


def test_every_defined_type_has_a_sample():
    assert set(SAMPLES) == set(d.ROS_TYPES)


@pytest.mark.parametrize("msgtype", sorted(SAMPLES))
def test_cdr_bytes_equal_rosbags(typestore, msgtype):
    sample = SAMPLES[msgtype]()
    assert type(sample) is d.ROS_TYPES[msgtype]
    ours = sample.serialize()
    theirs = bytes(typestore.serialize_cdr(to_rosbags(typestore, msgtype, sample), msgtype))
    assert ours[:4] == b"\x00\x01\x00\x00"  # CDR little-endian encapsulation, like ROS 2
    assert ours == theirs
    # and our reader takes rosbags' bytes back to the same message
    again = d.ROS_TYPES[msgtype].deserialize(theirs)
    assert again.serialize() == ours


def test_dds_type_names_follow_ros2():
    assert d.Image.__idl_typename__ == "sensor_msgs::msg::dds_::Image_"
    assert d.Reward.__idl_typename__ == "robo_reward_msgs::msg::dds_::Reward_"
    assert [f.name for f in d.Empty.__dataclass_fields__.values()] == ["structure_needs_at_least_one_member"]


def test_image_payload_is_bytes_fast_path():
    image = d.Image(header(), 1, 1, "mono8", 0, 1, b"\x07")
    assert isinstance(d.Image.deserialize(image.serialize()).data, bytes)
    assert d.Image.__idl__.get_type_info() is not None  # type information for discovery exists


def test_reward_msg_has_one_source():
    assert REWARD_MSG_FILE.read_text() == REWARD_MSG
    rosbags_fields = [name for name, _ in rosbags_typesys.get_types_from_msg(REWARD_MSG, REWARD_TYPE)[REWARD_TYPE][1]]
    assert list(d.Reward.__dataclass_fields__) == rosbags_fields


def test_struct_from_msg_skips_comments_constants_and_defaults():
    struct = d.struct_from_msg("pkg/msg/Thing", "# doc\nint32 LIMIT=3\nfloat64 x 0.5  # default\nuint8[] blob\n")
    assert list(struct.__dataclass_fields__) == ["x", "blob"]
    assert struct.__idl_typename__ == "pkg::msg::dds_::Thing_"
    assert struct(1.5, b"ab").serialize() == b"\x00\x01\x00\x00" + np.float64(1.5).tobytes() + b"\x02\0\0\0ab"


@pytest.mark.parametrize("text", ["geometry_msgs/Pose pose", "float64[3] fixed", "lonely"])
def test_struct_from_msg_refuses_what_it_cannot_encode(text):
    with pytest.raises(ConfigError, match="line 1"):
        d.struct_from_msg("pkg/msg/Bad", text)


def test_stamps_split_and_join():
    assert split_stamp(1_700_000_000_123_456_789) == (1_700_000_000, 123_456_789)
    assert join_stamp(*split_stamp(42)) == 42


@pytest.mark.parametrize("encoding", sorted(RAW_ENCODINGS))
def test_raw_round_trip(encoding):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    height, width, step, data = rgb_to_raw(rgb, encoding)
    decoded = raw_to_rgb(height, width, encoding, 0, step, data)
    assert decoded.shape == (5, 7, 3) and decoded.dtype == np.uint8
    if encoding.startswith("mono"):
        grey = np.rint(rgb.astype(float) @ [0.299, 0.587, 0.114])
        assert np.abs(decoded[..., 0].astype(float) - grey).max() <= 1
        assert (decoded[..., 0] == decoded[..., 2]).all()
    else:
        assert (decoded == rgb).all()


def test_bgr_channels_are_swapped_and_row_padding_ignored():
    bgr = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    padded = bgr.tobytes() + b"\xee\xee"  # step 8 for a 6-byte row
    assert raw_to_rgb(1, 2, "bgr8", 0, 8, padded).tolist() == [[[3, 2, 1], [6, 5, 4]]]


def test_mono16_big_endian():
    data = np.array([[0, 65535]], dtype=">u2").tobytes()
    assert raw_to_rgb(1, 2, "mono16", 1, 4, data)[0, :, 0].tolist() == [0, 255]


@pytest.mark.parametrize("fields, message, reason", [
    ((2, 2, "yuv422", 0, 4, bytes(8)), "unsupported image encoding", "encoding"),
    ((2, 2, "rgb8", 0, 6, bytes(11)), "expected step·height = 12", "data_length"),
    ((2, 2, "rgb8", 0, 6, bytes(13)), "expected step·height = 12", "data_length"),  # cv_bridge refuses it too
    ((2, 2, "rgb8", 0, 5, bytes(10)), "step 5 < 6", "step"),
    ((0, 2, "rgb8", 0, 6, b""), "empty image", "size"),
    ((1 << 13, 1 << 13, "mono8", 0, 1 << 13, b""), "more than 33554432 pixels", "too_large"),
])
def test_malformed_raw_images_are_named(fields, message, reason):
    with pytest.raises(MalformedMessage, match=message) as raised:
        raw_to_rgb(*fields)
    assert raised.value.reason == reason


def test_a_stamp_with_nanoseconds_out_of_range_is_malformed():
    with pytest.raises(MalformedMessage, match="nanosec must be in") as raised:
        join_stamp(1, 1_000_000_000)
    assert raised.value.reason == "stamp"


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_round_trip(fmt):
    rgb = np.zeros((16, 24, 3), dtype=np.uint8)
    rgb[4:12, 6:18] = (200, 30, 30)
    decoded = compressed_to_rgb(fmt, rgb_to_compressed(rgb, fmt))
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < (0.01 if fmt == "png" else 10.0)  # JPEG is lossy


def png_header_only(width: int, height: int) -> bytes:
    """A PNG holding only its header (IHDR) and end: it claims a size but has no pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(
        b"IEND", b"")


def test_malformed_compressed_images_are_named():
    jpeg = rgb_to_compressed(np.full((32, 32, 3), 128, np.uint8), "jpeg")
    # garbage, a truncated JPEG, nothing, a PNG without pixel data, a decompression bomb
    for payload, reason in ((b"", "empty"), (b"not an image", "corrupt"), (jpeg[: len(jpeg) // 2], "corrupt"),
                            (png_header_only(8, 8), "corrupt"), (png_header_only(8000, 8000), "too_large"),
                            (png_header_only(40_000, 40_000), "too_large")):
        with pytest.raises(MalformedMessage, match="compressed image") as raised:
            compressed_to_rgb("jpeg", payload)
        assert raised.value.reason == reason, payload[:16]
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(InputError, match="GIF payload"):
        compressed_to_rgb("gif", gif.getvalue())
