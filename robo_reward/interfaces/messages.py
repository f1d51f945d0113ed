"""Transport-neutral ROS 2 messages: camera images in, the Reward record out.

The node logic sees only these plain Python objects; each transport converts its
native messages (rclpy's generated classes, or the Cyclone DDS structs of
:mod:`robo_reward.ros2.dds_types`) to and from them. Nothing here imports ROS or DDS.

Stamps are integer nanoseconds since the epoch of the sender's clock; ROS 2 carries
them as ``builtin_interfaces/Time`` ``(sec: int32, nanosec: uint32)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robo_reward.errors import MalformedMessage
from robo_reward.interfaces.images import compressed_to_rgb, raw_to_rgb, rgb_to_compressed, rgb_to_raw

#: The text of ``robo_reward_msgs/msg/Reward.msg`` (``ros2_ws/src/robo_reward_msgs/msg``),
#: which stays the single source of the message: a test asserts the two are identical.
REWARD_MSG = """\
# A reward computed by robo_reward from one synchronized set of camera images.
#
# header.stamp is the stamp of the scored image set (the latest stamp among its views);
# header.frame_id is empty. When valid is false the float values are NaN.

std_msgs/Header header

# Potential-shaped reward of the transition from the previous scored set to this one:
# reward = gamma * progress - previous progress (Ng, Harada & Russell 1999); 0 on the
# first set of an episode. It leaves the optimal policy unchanged.
float64 reward
# Task progress, the potential Phi in [0, 1], fused over the valid views.
float64 progress
# Probability that the task is done, in [0, 1].
float64 success_probability
# Spread between the views plus a share for every missing view; >= 0, 0 when unknown.
float64 uncertainty
# False when the model failed or no view could be used; status says why.
bool valid
# Empty when all is well, else why the reward is degraded or invalid,
# e.g. "view 'wrist' stale" or "model error: ...".
string status

# The task instruction and the reward model that produced this reward.
string task
string model

# Episode counter (it grows on every episode reset or task change) and the index of this
# set within the episode.
uint32 episode
uint32 step

# Per view, in the same order: its name, its progress alone (NaN when missing), whether
# it took part in the fusion, and the stamp of its image (of its latest image if missing,
# zero if none was ever received).
string[] view_names
float64[] view_progress
bool[] view_valid
builtin_interfaces/Time[] source_stamps
"""

REWARD_TYPE = "robo_reward_msgs/msg/Reward"


def split_stamp(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds → ``(sec, nanosec)`` with ``0 <= nanosec < 1e9``."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return sec, nanosec


def join_stamp(sec: int, nanosec: int) -> int:
    """``builtin_interfaces/Time`` fields → integer nanoseconds.

    Raises MalformedMessage (reason ``stamp``) for ``nanosec`` outside [0, 1e9), which the
    message definition does not allow.
    """
    if not 0 <= nanosec < 1_000_000_000:
        raise MalformedMessage(f"stamp {sec} s + {nanosec} ns: nanosec must be in [0, 1e9)", "stamp")
    return int(sec) * 1_000_000_000 + int(nanosec)


@dataclass(frozen=True)
class ImageMessage:
    """``sensor_msgs/msg/Image``: raw pixels, rows of ``step`` bytes.

    Attributes:
        stamp_ns: header stamp, ns.
        frame_id: header frame id.
        height: rows, pixels.
        width: columns, pixels.
        encoding: pixel encoding, e.g. ``rgb8`` (see :data:`robo_reward.interfaces.images.RAW_ENCODINGS`).
        is_bigendian: 1 when multi-byte pixels are big-endian.
        step: bytes per row (>= width · bytes per pixel).
        data: ``height · step`` bytes.
    """

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes

    def decode(self) -> np.ndarray:
        """uint8 RGB (height, width, 3); raises InputError if the message is malformed."""
        return raw_to_rgb(self.height, self.width, self.encoding, self.is_bigendian, self.step, self.data)


@dataclass(frozen=True)
class CompressedImageMessage:
    """``sensor_msgs/msg/CompressedImage``: a JPEG or PNG file in ``data``.

    Attributes:
        stamp_ns: header stamp, ns.
        frame_id: header frame id.
        format: image_transport's format string, e.g. ``jpeg`` or ``rgb8; png compressed rgb8``.
        data: the encoded image.
    """

    stamp_ns: int
    frame_id: str
    format: str
    data: bytes

    def decode(self) -> np.ndarray:
        """uint8 RGB (H, W, 3); raises InputError if the payload is not a readable image."""
        return compressed_to_rgb(self.format, self.data)


@dataclass(frozen=True)
class JointStateMessage:
    """``sensor_msgs/msg/JointState``: per joint, its name, position (rad, or m for a
    prismatic joint), velocity (rad/s or m/s) and effort (N·m or N)."""

    stamp_ns: int
    name: tuple[str, ...]
    position: tuple[float, ...]
    velocity: tuple[float, ...]
    effort: tuple[float, ...]


def is_compressed_topic(topic: str) -> bool:
    """image_transport's convention: ``…/compressed`` carries ``sensor_msgs/CompressedImage``."""
    return topic.rstrip("/").endswith("/compressed")


def image_message(
    topic: str, rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8"
) -> ImageMessage | CompressedImageMessage:
    """uint8 RGB (H, W, 3) as a message for ``topic``: JPEG for ``…/compressed``, else raw ``encoding``."""
    if is_compressed_topic(topic):
        return CompressedImageMessage(stamp_ns, frame_id, "jpeg", rgb_to_compressed(rgb, "jpeg"))
    height, width, step, data = rgb_to_raw(rgb, encoding)
    return ImageMessage(stamp_ns, frame_id, height, width, encoding, 0, step, data)
