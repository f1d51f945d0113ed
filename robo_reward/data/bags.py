"""rosbag2 recordings (.mcap and .db3) as episodes, and the sink that writes a reward topic.

One bag is one episode. The user names its camera topics (view → topic); each holds
``sensor_msgs/msg/Image`` or ``sensor_msgs/msg/CompressedImage`` messages, decoded by
:mod:`robo_reward.interfaces.images`. Cameras are synchronised by header stamp: every image
are cut into sets by :func:`robo_reward.sync.synchronise` — the live node's
approximate-time synchroniser fed the bag's messages in stamp order — so a bag yields
the sets a live node would have scored; every image of a set lies within ``slop``
seconds of the others. A topic whose header stamps are all zero falls back to the bag's
receive times. The stamp of a set is the latest of its views' stamps (as in
``robo_reward_msgs/msg/Reward``).

Reading takes two passes over the camera topics: the first reads only the header
stamps (straight from the CDR bytes), the second deserialises and decodes only the
images that are scored, batch by batch.

:class:`BagSink` writes a NEW bag (same storage format) holding every original topic —
same connections, same raw bytes and receive times — plus a reward topic of type
``robo_reward_msgs/msg/Reward``, registered from its .msg text. Message ``step`` t
carries the reward of the transition into set t (potential shaping: γΦ_t − Φ_{t−1},
0 on the first set), as the live node publishes it.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robo_reward.data.align import sample_times
from robo_reward.errors import InputError, UsageError, require
from robo_reward.sync import synchronise
from robo_reward.types import FrameBatch, Sampling, Task

if TYPE_CHECKING:
    from robo_reward.labels import EpisodeLabels, LabelConfig

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
DEFAULT_REWARD_TOPIC = "/robo_reward/reward"
DEFAULT_SLOP_S = 0.05
BAGS_DIR = "bags"
STORAGE_SUFFIXES = (".mcap", ".db3")


def bag_storage_file(path: Path) -> Path | None:
    """The single storage file of a bag folder without metadata.yaml (as some recorders leave them)."""
    if path.is_file() or (path / "metadata.yaml").is_file():
        return None
    files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
    if len(files) != 1:
        raise InputError(
            f"{path}: not a rosbag2 bag (no metadata.yaml and {len(files)} .mcap/.db3 files; give the file itself)"
        )
    return files[0]


@contextmanager
def open_bag(path: Path) -> Iterator[Any]:
    """An open :class:`rosbags.rosbag2.Reader`; unreadable, truncated or corrupt bags are InputErrors."""
    rosbag2 = require("rosbags.rosbag2", "ros2", "reading rosbag2 bags")
    if not path.exists():
        raise InputError(f"bag not found: {path}")
    target = bag_storage_file(path) if path.is_dir() else path
    try:
        reader = rosbag2.Reader(target or path)
        reader.open()
    except (rosbag2.ReaderError, OSError, sqlite3.Error, struct.error, ValueError, KeyError) as exc:
        raise InputError(f"{path}: cannot open the bag (truncated, corrupt or not a rosbag2 bag): {exc}") from exc
    try:
        yield reader
    except (rosbag2.ReaderError, sqlite3.Error, struct.error, EOFError) as exc:
        raise InputError(f"{path}: cannot read the bag (truncated or corrupt): {exc}") from exc
    finally:
        reader.close()


def header_stamp_ns(raw: bytes | memoryview, where: str) -> int:
    """The ``header.stamp`` (ns) of a CDR-serialised message whose first field is a std_msgs/Header."""
    if len(raw) < 12:
        raise InputError(f"{where}: message of {len(raw)} bytes is too short to hold a header (corrupt bag)")
    endian = "<" if raw[1] == 1 else ">"
    sec, nanosec = struct.unpack_from(f"{endian}iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


def ros2_typestore() -> Any:
    """A ROS 2 typestore that also knows ``robo_reward_msgs/msg/Reward`` (from its .msg text)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from robo_reward.interfaces.messages import REWARD_MSG, REWARD_TYPE

    store = get_typestore(Stores.LATEST)
    store.register(get_types_from_msg(REWARD_MSG, REWARD_TYPE))
    return store


@dataclass(frozen=True)
class ViewIndex:
    """The messages of one camera topic, in bag order: (N,) header stamps and receive times (ns)."""

    topic: str
    msgtype: str
    stamps_ns: np.ndarray
    log_ns: np.ndarray


@dataclass(frozen=True)
class ImageSets:
    """Synchronised image sets of a bag, in stamp order.

    Attributes:
        message: view → (S,) int64 message number (bag order within its topic) of each set.
        stamps_ns: view → (S,) int64 header stamp of each set's image.
        log_ns: (S,) int64 latest receive time among each set's images.
    """

    message: dict[str, np.ndarray]
    stamps_ns: dict[str, np.ndarray]
    log_ns: np.ndarray

    @property
    def set_stamps_ns(self) -> np.ndarray:
        """(S,) the stamp of each set: the latest of its views' stamps."""
        return np.max(np.stack(list(self.stamps_ns.values())), axis=0)


@dataclass
class BagEpisode:
    """One rosbag2 recording: named camera topics of one task.

    Attributes:
        path: the bag folder, or its .mcap / .db3 file.
        topics: view name → image topic; the first view is the time reference.
        slop_s: the largest stamp difference (s) between the images of one set.
    """

    path: Path
    topics: dict[str, str]
    task: Task
    slop_s: float = DEFAULT_SLOP_S
    name: str = ""
    outcome: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.topics:
            raise UsageError(f"{self.path}: name at least one camera topic (--view NAME=TOPIC)")
        if self.slop_s < 0:
            raise InputError(f"--slop must be >= 0 s, got {self.slop_s}")
        self.name = self.name or (self.path.stem if self.path.is_file() else self.path.name)

    @property
    def view_names(self) -> list[str]:
        return list(self.topics)

    @property
    def storage(self) -> str:
        """``mcap`` or ``sqlite3``: the storage format of the input (and of the output bag)."""
        target = bag_storage_file(self.path) if self.path.is_dir() else self.path
        if target is None:
            return "mcap" if any(self.path.glob("*.mcap")) else "sqlite3"
        return "mcap" if target.suffix == ".mcap" else "sqlite3"

    @cached_property
    def bag_topics(self) -> frozenset[str]:
        """Every topic in the bag."""
        with open_bag(self.path) as reader:
            return frozenset(c.topic for c in reader.connections)

    @cached_property
    def index(self) -> dict[str, ViewIndex]:
        """First pass: the stamps of every image on the named topics."""
        with open_bag(self.path) as reader:
            connections = self._connections(reader)
            view_of = {c.id: view for view, conns in connections.items() for c in conns}
            stamps: dict[str, list[int]] = {view: [] for view in self.topics}
            logs: dict[str, list[int]] = {view: [] for view in self.topics}
            for connection, log_ns, raw in reader.messages(connections=[c for cs in connections.values() for c in cs]):
                view = view_of[connection.id]
                where = f"{self.path} topic {connection.topic} frame {len(stamps[view])}"
                stamps[view].append(header_stamp_ns(raw, where))
                logs[view].append(log_ns)
        index = {}
        for view, topic in self.topics.items():
            if not stamps[view]:
                raise InputError(f"{self.path}: topic '{topic}' (view '{view}') has no messages")
            stamp = np.asarray(stamps[view], dtype=np.int64)
            log = np.asarray(logs[view], dtype=np.int64)
            index[view] = ViewIndex(topic, connections[view][0].msgtype, log if not stamp.any() else stamp, log)
        return index

    def _connections(self, reader: Any) -> dict[str, list[Any]]:
        found = {}
        for view, topic in self.topics.items():
            conns = [c for c in reader.connections if c.topic == topic]
            if not conns:
                images = sorted({c.topic for c in reader.connections if c.msgtype in IMAGE_TYPES})
                raise InputError(
                    f"{self.path}: no topic '{topic}' (view '{view}') in the bag; its image topics: "
                    f"{', '.join(images) or 'none'}"
                )
            wrong = [c.msgtype for c in conns if c.msgtype not in IMAGE_TYPES]
            if wrong:
                raise InputError(
                    f"{self.path}: topic '{topic}' (view '{view}') carries {wrong[0]}, not an image type "
                    f"({' or '.join(IMAGE_TYPES)})"
                )
            found[view] = conns
        return found

    @cached_property
    def sets(self) -> ImageSets:
        """The synchronised image sets (one image of every view, all within slop)."""
        index = self.index
        found = synchronise({view: index[view].stamps_ns for view in self.view_names}, round(self.slop_s * 1e9),
                            where=f"{self.path} (topics {', '.join(self.topics.values())}, --slop {self.slop_s} s)")
        message = found.indices
        stamps = {view: index[view].stamps_ns[m] for view, m in message.items()}
        log = np.max(np.stack([index[view].log_ns[m] for view, m in message.items()]), axis=0)
        return ImageSets(message=message, stamps_ns=stamps, log_ns=log)

    def _picked(self, sampling: Sampling) -> np.ndarray:
        return sample_times(self.sets.set_stamps_ns, sampling.stride, sampling.fps)

    def timestamps(self, sampling: Sampling) -> np.ndarray:
        return self.sets.set_stamps_ns[self._picked(sampling)]

    def iter_batches(self, batch_size: int, sampling: Sampling) -> Iterator[FrameBatch]:
        """Second pass: decode the images of the sampled sets, ``batch_size`` sets at a time.

        A sample's ``frame_index`` is the reference image's message number on its topic.
        """
        picked = self._picked(sampling)
        sets = self.sets
        wanted = {view: sets.message[view][picked] for view in self.view_names}
        uses = {view: np.bincount(w, minlength=len(self.index[view].stamps_ns)) for view, w in wanted.items()}
        store = ros2_typestore()
        images: dict[str, dict[int, np.ndarray]] = {view: {} for view in self.view_names}
        cursor, start = 0, 0
        with open_bag(self.path) as reader:
            connections = self._connections(reader)
            view_of = {c.id: view for view, conns in connections.items() for c in conns}
            counters = dict.fromkeys(self.view_names, 0)
            for connection, _, raw in reader.messages(connections=[c for cs in connections.values() for c in cs]):
                view = view_of[connection.id]
                number = counters[view]
                counters[view] += 1
                if uses[view][number]:
                    where = f"{self.path} topic {connection.topic} frame {number}"
                    images[view][number] = decode_image(store, raw, connection.msgtype, where)
                while cursor < len(picked) and all(wanted[v][cursor] in images[v] for v in self.view_names):
                    cursor += 1
                    if cursor - start == batch_size:
                        yield self._batch(picked, start, cursor, wanted, images, uses)
                        start = cursor
        if cursor < len(picked):
            raise InputError(f"{self.path}: the bag changed while it was read (set {cursor} lost its images)")
        if start < cursor:
            yield self._batch(picked, start, cursor, wanted, images, uses)

    def _batch(
        self,
        picked: np.ndarray,
        start: int,
        stop: int,
        wanted: dict[str, np.ndarray],
        images: dict[str, dict[int, np.ndarray]],
        uses: dict[str, np.ndarray],
    ) -> FrameBatch:
        views = {}
        for view in self.view_names:
            numbers = wanted[view][start:stop]
            views[view] = _stack([images[view][n] for n in numbers], self.path, self.topics[view], numbers)
            for n in numbers:
                uses[view][n] -= 1
                if not uses[view][n]:
                    del images[view][n]
        rows = picked[start:stop]
        return FrameBatch(
            views=views,
            timestamps_ns=self.sets.set_stamps_ns[rows],
            frame_index=self.sets.message[self.view_names[0]][rows],
            source=f"bag {self.path}",
        )


def _stack(frames: list[np.ndarray], path: Path, topic: str, numbers: np.ndarray) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        first = frames[0].shape
        odd = next(n for n, f in zip(numbers, frames) if f.shape != first)
        raise InputError(f"{path} topic {topic} frame {odd}: image size changed within the topic ({sorted(shapes)})")
    return np.stack(frames)


def decode_image(store: Any, raw: bytes | memoryview, msgtype: str, where: str) -> np.ndarray:
    """One Image / CompressedImage message (CDR bytes) → uint8 RGB (H, W, 3); errors name ``where``."""
    from robo_reward.interfaces.images import compressed_to_rgb, raw_to_rgb

    try:
        msg = store.deserialize_cdr(raw, msgtype)
    except Exception as exc:  # the CDR deserialiser raises struct/index/value errors on corrupt bytes
        raise InputError(f"{where}: cannot deserialise {msgtype} (corrupt message): {exc}") from exc
    try:
        if msgtype == IMAGE_TYPE:
            return raw_to_rgb(msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data.tobytes())
        return compressed_to_rgb(msg.format, msg.data.tobytes())
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc


def open_bags(
    paths: Sequence[Path], topics: Mapping[str, str], task: Task, slop_s: float = DEFAULT_SLOP_S
) -> list[BagEpisode]:
    """One episode per bag; each must hold every named topic."""
    episodes = [BagEpisode(path=Path(p), topics=dict(topics), task=task, slop_s=slop_s) for p in paths]
    for episode in episodes:
        episode.index  # noqa: B018 — read the stamps now so that a bad bag fails before any labeling
    return episodes


@dataclass
class BagSink:
    """Writes, per labeled bag, a new bag with every original message plus the reward topic."""

    episodes: Sequence[BagEpisode]
    reward_topic: str = DEFAULT_REWARD_TOPIC

    def check(self, config: LabelConfig) -> None:
        for episode in self.episodes:
            if self.reward_topic in episode.bag_topics:
                raise InputError(
                    f"{episode.path}: already has a topic {self.reward_topic}; choose another --reward-topic"
                )

    def write(self, results: Sequence[EpisodeLabels], folder: Path, run: Mapping[str, Any]) -> list[Path]:
        by_name = {r.episode: r for r in results}
        written = []
        for episode in self.episodes:
            target = folder / BAGS_DIR / episode.name
            target.parent.mkdir(parents=True, exist_ok=True)
            self._write_bag(episode, by_name[episode.name], target, run)
            written.append(target)
        return written

    def _write_bag(self, episode: BagEpisode, labels: EpisodeLabels, target: Path, run: Mapping[str, Any]) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        from robo_reward.interfaces.messages import REWARD_TYPE

        store = ros2_typestore()
        rewards = reward_messages(episode, labels, run, store)
        plugin = StoragePlugin.MCAP if episode.storage == "mcap" else StoragePlugin.SQLITE3
        with open_bag(episode.path) as reader, Writer(target, version=Writer.VERSION_LATEST,
                                                      storage_plugin=plugin) as writer:
            mapping = {c.id: _copy_connection(writer, c, store) for c in reader.connections}
            reward_connection = writer.add_connection(self.reward_topic, REWARD_TYPE, typestore=store)
            pending = 0
            for connection, log_ns, raw in reader.messages():
                while pending < len(rewards) and rewards[pending][0] < log_ns:
                    writer.write(reward_connection, *rewards[pending])
                    pending += 1
                writer.write(mapping[connection.id], log_ns, raw)
            for item in rewards[pending:]:
                writer.write(reward_connection, *item)


def _copy_connection(writer: Any, connection: Any, store: Any) -> Any:
    """Add ``connection`` to ``writer`` as it is (topic, type, definition, QoS, serialization)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import get_types_from_msg

    msgdef = connection.msgdef.data if connection.msgdef.format != MessageDefinitionFormat.NONE else ""
    digest = connection.digest
    if not msgdef or not digest:
        if connection.msgtype not in store.fielddefs:
            if not msgdef or connection.msgdef.format != MessageDefinitionFormat.MSG:
                raise InputError(f"topic {connection.topic}: unknown message type {connection.msgtype} "
                                 "without a definition in the bag; cannot copy it")
            store.register(get_types_from_msg(msgdef, connection.msgtype))
        msgdef = msgdef or store.generate_msgdef(connection.msgtype, ros_version=2)[0]
        digest = digest or store.hash_rihs01(connection.msgtype)
    for existing in writer.connections:
        if (existing.topic, existing.msgtype, existing.ext) == (connection.topic, connection.msgtype, connection.ext):
            return existing
    return writer.add_connection(
        connection.topic,
        connection.msgtype,
        msgdef=msgdef,
        rihs01=digest,
        serialization_format=connection.ext.serialization_format,
        offered_qos_profiles=connection.ext.offered_qos_profiles,
    )


def reward_messages(
    episode: BagEpisode, labels: EpisodeLabels, run: Mapping[str, Any], store: Any
) -> list[tuple[int, bytes]]:
    """(receive time ns, CDR bytes) of the Reward message of each scored set, in time order.

    The receive time is the latest receive time among the set's images; ``header.stamp``
    the set's stamp; ``source_stamps`` each view's image stamp.
    """
    from robo_reward.interfaces.messages import REWARD_TYPE, split_stamp

    types = store.types
    reward_cls, header_cls, time_cls = types[REWARD_TYPE], types["std_msgs/msg/Header"], types[
        "builtin_interfaces/msg/Time"]
    sets = episode.sets
    reference = episode.view_names[0]
    row_of = {int(m): i for i, m in enumerate(sets.message[reference])}
    rows = np.array([row_of[int(f)] for f in labels.frame_index], dtype=np.int64)
    shaped = run["config"]["reward"] == "shaped"
    arriving = np.concatenate([[0.0], labels.reward[:-1]]) if shaped else labels.reward
    views = episode.view_names
    per_view = np.stack([labels.scores.per_view.get(v, np.full(len(rows), np.nan)) for v in views], axis=1)
    messages = []
    for step, row in enumerate(rows):
        msg = reward_cls(
            header=header_cls(stamp=time_cls(*split_stamp(sets.set_stamps_ns[row])), frame_id=""),
            reward=float(arriving[step]),
            progress=float(labels.scores.progress[step]),
            success_probability=float(labels.scores.success[step]),
            uncertainty=float(labels.scores.uncertainty[step]),
            valid=True,
            status="",
            task=labels.task,
            model=str(run["model"]),
            episode=0,
            step=step,
            view_names=list(views),
            view_progress=per_view[step].astype(np.float64),
            view_valid=np.isfinite(per_view[step]),
            source_stamps=[time_cls(*split_stamp(sets.stamps_ns[v][row])) for v in views],
        )
        messages.append((int(sets.log_ns[row]), bytes(store.serialize_cdr(msg, REWARD_TYPE))))
    messages.sort(key=lambda item: item[0])
    return messages
