"""ROS 2 message types as Cyclone DDS structs, so that plain DDS speaks ROS 2 on the wire.

ROS 2 (rmw_cyclonedds, rmw_fastrtps) maps a message ``pkg/msg/Name`` to the DDS type
``pkg::msg::dds_::Name_``: a final (plain CDR) keyless struct with the message's fields
in order. ``uint8[]`` payloads are declared ``bytes`` here: identical on the wire to
``sequence<uint8>``, and read back as one ``bytes`` object instead of a list (the fast
path for images). A test proves every struct's CDR bytes equal those of ``rosbags``'
ROS 2 serializer.

``robo_reward_msgs/msg/Reward`` is built from :data:`~robo_reward.interfaces.messages.REWARD_MSG`,
the text of ``Reward.msg``, by :func:`struct_from_msg`.

Importing this module needs ``cyclonedds`` (extra ``ros2``).
"""

# No `from __future__ import annotations`: cyclonedds reads the field annotations as objects.

from dataclasses import dataclass
from typing import Any

from robo_reward.errors import ConfigError, require
from robo_reward.interfaces.messages import REWARD_MSG, REWARD_TYPE

require("cyclonedds", "ros2", "the DDS transport")

import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct, make_idl_struct
from cyclonedds.idl.annotations import final


def dds_type_name(ros_type: str) -> str:
    """``sensor_msgs/msg/Image`` → ``sensor_msgs::msg::dds_::Image_``."""
    package, kind, name = ros_type.split("/")
    return f"{package}::{kind}::dds_::{name}_"


@dataclass
@final
class Time(IdlStruct, typename=dds_type_name("builtin_interfaces/msg/Time")):
    """``builtin_interfaces/msg/Time``: seconds and nanoseconds since the clock's epoch."""

    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
@final
class Header(IdlStruct, typename=dds_type_name("std_msgs/msg/Header")):
    """``std_msgs/msg/Header``."""

    stamp: Time
    frame_id: str = ""


@dataclass
@final
class String(IdlStruct, typename=dds_type_name("std_msgs/msg/String")):
    """``std_msgs/msg/String``."""

    data: str = ""


@dataclass
@final
class Empty(IdlStruct, typename=dds_type_name("std_msgs/msg/Empty")):
    """``std_msgs/msg/Empty``; IDL structs need a member, so ROS 2 adds this dummy byte."""

    structure_needs_at_least_one_member: t.uint8 = 0


@dataclass
@final
class Image(IdlStruct, typename=dds_type_name("sensor_msgs/msg/Image")):
    """``sensor_msgs/msg/Image``; ``data`` holds height · step bytes."""

    header: Header
    height: t.uint32
    width: t.uint32
    encoding: str
    is_bigendian: t.uint8
    step: t.uint32
    data: bytes


@dataclass
@final
class CompressedImage(IdlStruct, typename=dds_type_name("sensor_msgs/msg/CompressedImage")):
    """``sensor_msgs/msg/CompressedImage``; ``format`` is e.g. ``jpeg``."""

    header: Header
    format: str
    data: bytes


@dataclass
@final
class JointState(IdlStruct, typename=dds_type_name("sensor_msgs/msg/JointState")):
    """``sensor_msgs/msg/JointState``: radians, rad/s and N·m (metres for prismatic joints)."""

    header: Header
    name: t.sequence[str]
    position: t.sequence[t.float64]
    velocity: t.sequence[t.float64]
    effort: t.sequence[t.float64]


@dataclass
@final
class MultiArrayDimension(IdlStruct, typename=dds_type_name("std_msgs/msg/MultiArrayDimension")):
    """``std_msgs/msg/MultiArrayDimension``."""

    label: str
    size: t.uint32
    stride: t.uint32


@dataclass
@final
class MultiArrayLayout(IdlStruct, typename=dds_type_name("std_msgs/msg/MultiArrayLayout")):
    """``std_msgs/msg/MultiArrayLayout``."""

    dim: t.sequence[MultiArrayDimension]
    data_offset: t.uint32


@dataclass
@final
class Float32MultiArray(IdlStruct, typename=dds_type_name("std_msgs/msg/Float32MultiArray")):
    """``std_msgs/msg/Float32MultiArray`` (the simulated robot's action topic)."""

    layout: MultiArrayLayout
    data: t.sequence[t.float32]


def _type_info_as_sequences(struct: type[IdlStruct]) -> type[IdlStruct]:
    """Give ``struct``, whose ``bytes`` fields (de)serialize fast, its XTypes type information.

    cyclonedds cannot describe a ``bytes`` member to XTypes, though it encodes it exactly
    as ``sequence<uint8>``; so the type information (sent in discovery, used for type
    matching) is taken from a twin struct declaring those members ``sequence<uint8>``,
    which is what the ROS 2 IDL says. This sets cyclonedds' cached type data directly.
    """
    fields = {
        name: t.sequence[t.uint8] if hint is bytes else hint
        for name, hint in struct.__annotations__.items()
    }
    twin = make_idl_struct(struct.__name__, struct.__idl_typename__, fields)
    twin.__idl__.fill_type_data()
    struct.__idl__.populate()
    struct.__idl__._xt_data = twin.__idl__._xt_data
    struct.__idl__._xt_bytedata = twin.__idl__._xt_bytedata
    return struct


_type_info_as_sequences(Image)
_type_info_as_sequences(CompressedImage)

_PRIMITIVES: dict[str, Any] = {
    "bool": bool,
    "byte": t.uint8,
    "char": t.uint8,
    "int8": t.int8,
    "uint8": t.uint8,
    "int16": t.int16,
    "uint16": t.uint16,
    "int32": t.int32,
    "uint32": t.uint32,
    "int64": t.int64,
    "uint64": t.uint64,
    "float32": t.float32,
    "float64": t.float64,
    "string": str,
}
_NESTED: dict[str, type[IdlStruct]] = {
    "std_msgs/Header": Header,
    "builtin_interfaces/Time": Time,
}


def struct_from_msg(ros_type: str, text: str) -> type[IdlStruct]:
    """A final DDS struct for the ``.msg`` definition ``text`` of ``ros_type``.

    Supports the primitive types, ``string``, unbounded arrays ``T[]`` and the nested
    types ``std_msgs/Header`` and ``builtin_interfaces/Time``; constants and comments are
    skipped. Raises ConfigError naming the line of anything else.
    """
    fields: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" in line:  # a constant: no field on the wire
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ConfigError(f"{ros_type}.msg line {number}: cannot parse '{raw}'")
        type_name, field = parts[:2]  # a third part is a default value, not on the wire
        is_array = type_name.endswith("[]")
        base = type_name[:-2] if is_array else type_name
        if base == "uint8" and is_array:
            fields[field] = bytes
            continue
        element = _PRIMITIVES.get(base) or _NESTED.get(base.replace("/msg/", "/"))
        if element is None:
            raise ConfigError(f"{ros_type}.msg line {number}: unsupported type '{type_name}'")
        fields[field] = t.sequence[element] if is_array else element
    name = ros_type.split("/")[-1]
    return final(make_idl_struct(name, dds_type_name(ros_type), fields))


Reward = struct_from_msg(REWARD_TYPE, REWARD_MSG)

#: ROS 2 type name → DDS struct, for every message this transport speaks.
ROS_TYPES: dict[str, type[IdlStruct]] = {
    "builtin_interfaces/msg/Time": Time,
    "std_msgs/msg/Header": Header,
    "std_msgs/msg/String": String,
    "std_msgs/msg/Empty": Empty,
    "std_msgs/msg/MultiArrayDimension": MultiArrayDimension,
    "std_msgs/msg/MultiArrayLayout": MultiArrayLayout,
    "std_msgs/msg/Float32MultiArray": Float32MultiArray,
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/CompressedImage": CompressedImage,
    "sensor_msgs/msg/JointState": JointState,
    REWARD_TYPE: Reward,
}
