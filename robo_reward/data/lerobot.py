"""LeRobot datasets (format v3.0) as episodes, and the sinks that write their rewards.

Reading goes through LeRobot's own metadata (:class:`LeRobotDatasetMetadata`): every
camera feature (dtype ``video`` or ``image``) becomes a view named by the feature key's
last part (``observation.images.front`` → ``front``), the task text comes from the
dataset's tasks, timestamps from the ``timestamp`` column (seconds from the episode's
start, turned into int ns). In v3.0 many episodes share one mp4 per camera; an episode
is the span ``[from_timestamp, to_timestamp)`` of it, so its frames are decoded in one
forward pass from the keyframe before the span (no per-frame seeking).

Writing never touches the input:

* ``lerobot`` — a NEW dataset in the v3.0 layout, written directly: the videos (and any
  image folders) are hard links of the input's files (copies where the filesystem
  refuses a link; a linked file is never opened for writing), each data file is read
  with pyarrow and written anew with the added columns, and meta/ is the input's with
  the new features in ``info.json`` and their statistics (LeRobot's own
  ``compute_episode_stats``/``aggregate_stats``) in ``stats.json`` and in each
  episode's ``stats/<feature>/<stat>`` columns of meta/episodes. Every column of the
  input is kept as it is, with the model's estimates added as
  ``<quantity>.robo_reward`` (float32): ``reward.robo_reward`` (the reward of
  s_t → s_{t+1}), ``progress.robo_reward`` (Φ) and ``success_probability.robo_reward``
  (replacing those of an earlier run). Where the input lacks them, ``next.done`` (True
  on each episode's last frame, the LeRobot convention) and ``next.truncated`` (the
  recording stopped there rather than terminated, see ``LabelConfig.terminal``) are
  added. ``next.reward`` gets the model's reward only on request (``replace_reward``);
  ``next.success`` is never written. Plus the sidecar;
* ``sidecar`` — only ``progress.parquet`` keyed by ``(episode_index, frame_index)``:
  progress, success probability, uncertainty, reward and per-view progress.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from robo_reward.atomic import atomic_path
from robo_reward.data.align import sample_times
from robo_reward.data.video import open_video
from robo_reward.errors import InputError, UsageError, require
from robo_reward.interfaces.lerobot import view_names
from robo_reward.types import FrameBatch, Sampling, Task

if TYPE_CHECKING:
    from robo_reward.labels import EpisodeLabels, LabelConfig

CAMERA_DTYPES = ("video", "image")
_FLOAT = {"dtype": "float32", "shape": (1,), "names": None}
_BOOL = {"dtype": "bool", "shape": (1,), "names": None}
ESTIMATE_FEATURES = {  # the model's outputs, always written (replacing those of an earlier run)
    "reward.robo_reward": _FLOAT,
    "progress.robo_reward": _FLOAT,
    "success_probability.robo_reward": _FLOAT,
}
EPISODE_END_FEATURES = {"next.done": _BOOL, "next.truncated": _BOOL}  # written only where the input lacks them
REWARD_FEATURE = "next.reward"  # the model's reward goes here only with replace_reward
SIDECAR_FILE = "progress.parquet"
DATASET_DIR = "lerobot"
WRITE_MODES = ("lerobot", "sidecar")


@dataclass
class LeRobotEpisode:
    """One episode of a LeRobot v3.0 dataset on disk.

    Attributes:
        root: the dataset's folder.
        episode_index: the episode's ``episode_index``.
        cameras: view name → feature key, e.g. ``{"front": "observation.images.front"}``.
        camera_dtypes: feature key → ``"video"`` or ``"image"``.
        timestamps_s: (T,) float64 seconds from the episode's start (the ``timestamp`` column).
        frame_index: (T,) int64 ``frame_index`` of each row.
        video_spans: video feature key → (mp4 path, from_timestamp s) of this episode's span.
        data_file: the parquet file holding the episode's rows (for image features).
        fps: the dataset's frame rate (Hz).
    """

    name: str
    task: Task
    root: Path
    episode_index: int
    cameras: dict[str, str]
    camera_dtypes: dict[str, str]
    timestamps_s: np.ndarray
    frame_index: np.ndarray
    video_spans: dict[str, tuple[Path, float]]
    data_file: Path
    fps: float
    outcome: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def view_names(self) -> list[str]:
        return list(self.cameras)

    @cached_property
    def stamps_ns(self) -> np.ndarray:
        """(T,) int64 ns from the episode's start."""
        return np.round(self.timestamps_s * 1e9).astype(np.int64)

    def _picked(self, sampling: Sampling) -> np.ndarray:
        return sample_times(self.stamps_ns, sampling.stride, sampling.fps)

    def timestamps(self, sampling: Sampling) -> np.ndarray:
        return self.stamps_ns[self._picked(sampling)]

    def iter_batches(self, batch_size: int, sampling: Sampling) -> Iterator[FrameBatch]:
        picked = self._picked(sampling)
        readers = {view: self._frames(view, picked) for view in self.cameras}
        for start in range(0, len(picked), batch_size):
            rows = picked[start : start + batch_size]
            yield FrameBatch(
                views={view: np.stack([next(reader) for _ in rows]) for view, reader in readers.items()},
                timestamps_ns=self.stamps_ns[rows],
                frame_index=self.frame_index[rows],
                source=f"{self.root} episode {self.episode_index}",
            )

    def _frames(self, view: str, rows: np.ndarray) -> Iterator[np.ndarray]:
        key = self.cameras[view]
        where = f"{self.root} episode {self.episode_index} view '{view}' ({key})"
        if self.camera_dtypes[key] == "image":
            return self._image_frames(key, rows, where)
        path, start_s = self.video_spans[key]
        return decode_at(path, start_s + self.timestamps_s[rows], self.frame_index[rows], 0.5 / self.fps, where)

    def _image_frames(self, key: str, rows: np.ndarray, where: str) -> Iterator[np.ndarray]:
        import pyarrow.parquet as pq
        from PIL import Image

        table = pq.read_table(self.data_file, columns=[key, "frame_index"],
                              filters=[("episode_index", "=", self.episode_index)])
        order = np.argsort(table.column("frame_index").to_numpy(), kind="stable")
        cells = table.column(key).to_pylist()
        for row in rows:
            cell = cells[order[row]]
            payload = cell.get("bytes") if isinstance(cell, dict) else None
            if not payload:
                raise InputError(f"{where}: frame {self.frame_index[row]} has no embedded image bytes")
            with Image.open(io.BytesIO(payload)) as image:
                yield np.asarray(image.convert("RGB"), dtype=np.uint8)


def decode_at(
    path: Path, targets_s: np.ndarray, frame_index: np.ndarray, tolerance_s: float, where: str
) -> Iterator[np.ndarray]:
    """Decode ``path`` once and yield the RGB frame (H, W, 3) uint8 nearest each target time.

    ``targets_s`` (non-decreasing seconds on the file's clock) name the wanted frames,
    ``frame_index`` their dataset frame numbers (for errors). Decoding starts at the
    keyframe before the first target; frames outside the wanted span are decoded but
    never converted to RGB. A target with no frame within ``tolerance_s`` is an
    InputError naming the file and frame.
    """
    import av

    if len(targets_s) == 0:
        return
    try:
        container = open_video(path)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        container.seek(max(int((targets_s[0] - tolerance_s) / time_base), 0), stream=stream, backward=True)
        cursor, previous = 0, None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                current = _Decoded(float(frame.pts * time_base), frame)
                while cursor < len(targets_s) and current.time >= targets_s[cursor]:
                    target = targets_s[cursor]
                    best = previous if previous is not None and target - previous.time <= current.time - target else current
                    if abs(best.time - target) > tolerance_s:
                        raise InputError(
                            f"{where}: {path} has no frame within {tolerance_s * 1e3:.1f} ms of t={target:.4f} s "
                            f"(frame_index {frame_index[cursor]}); nearest is at {best.time:.4f} s"
                        )
                    yield best.rgb()
                    cursor += 1
                if cursor == len(targets_s):
                    return
                previous = current
        except av.error.FFmpegError as exc:
            raise InputError(f"{where}: {path}: cannot decode frame_index {frame_index[cursor]}: {exc}") from exc
        while cursor < len(targets_s) and previous is not None and abs(previous.time - targets_s[cursor]) <= tolerance_s:
            yield previous.rgb()
            cursor += 1
        if cursor < len(targets_s):
            raise InputError(
                f"{where}: {path} ends before frame_index {frame_index[cursor]} (t={targets_s[cursor]:.4f} s): "
                "truncated video or wrong episode timestamps"
            )
    finally:
        container.close()


class _Decoded:
    """A decoded frame and its time (s); converted to RGB at most once."""

    def __init__(self, time: float, frame: Any) -> None:
        self.time = time
        self._frame = frame
        self._rgb: np.ndarray | None = None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self._frame.to_ndarray(format="rgb24")
        return self._rgb


def _check_local_dataset(root: Path) -> None:
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise InputError(f"{root}: not a LeRobot dataset ({info_path} is missing)")
    try:
        version = json.loads(info_path.read_text()).get("codebase_version", "")
    except json.JSONDecodeError as exc:
        raise InputError(f"{info_path}: not valid JSON ({exc})") from exc
    if not str(version).startswith("v3."):
        raise InputError(
            f"{root}: LeRobot dataset format {version or 'unknown'} is not supported; convert it to v3.0 with "
            "`python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id=… --root=…`"
        )
    for needed in ("meta/tasks.parquet", "meta/episodes", "data"):
        if not (root / needed).exists():
            raise InputError(f"{root}: not a complete LeRobot v3.0 dataset ({root / needed} is missing)")


def resolve_dataset(source: str | Path, download_root: Path | None = None) -> tuple[str, Path]:
    """(repo_id, local root) of a dataset folder, or of a Hub repo id downloaded to ``download_root``."""
    path = Path(source)
    if path.is_dir():
        _check_local_dataset(path)
        return f"local/{path.resolve().name}", path
    text = str(source)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise InputError(f"LeRobot dataset not found: {source} (give a dataset folder or a Hub repo id 'user/name')")
    lerobot_dataset = require("lerobot.datasets.lerobot_dataset", "lerobot", "reading LeRobot datasets")
    try:
        dataset = lerobot_dataset.LeRobotDataset(text, root=download_root)
    except Exception as exc:  # hub, network and format errors come in many types
        raise InputError(
            f"LeRobot dataset '{text}' is not a local folder, and fetching it from the Hugging Face Hub failed: {exc}"
        ) from exc
    return text, Path(dataset.root)


def open_lerobot(source: str | Path, task: Task | None = None, download_root: Path | None = None) -> list[LeRobotEpisode]:
    """Every episode of a LeRobot v3.0 dataset (a folder, or a Hub repo id where there is a network).

    ``task`` overrides the dataset's task texts. A dataset with no camera feature is an error.
    """
    import pyarrow.parquet as pq

    repo_id, root = resolve_dataset(source, download_root)
    lerobot_dataset = require("lerobot.datasets.lerobot_dataset", "lerobot", "reading LeRobot datasets")
    try:
        meta = lerobot_dataset.LeRobotDatasetMetadata(repo_id, root=root)
    except Exception as exc:  # LeRobot raises many types for a malformed dataset
        raise InputError(f"{root}: not a readable LeRobot dataset: {exc}") from exc
    cameras = view_names(meta.camera_keys)
    if not cameras:
        features = ", ".join(f"{k} ({v['dtype']})" for k, v in meta.features.items())
        raise InputError(f"{root}: the dataset has no camera features (dtype video or image); its features: {features}")
    dtypes = {key: meta.features[key]["dtype"] for key in cameras.values()}
    rows = _episode_rows(root, meta.data_path, meta.episodes, pq)
    task_text = meta.tasks.reset_index().set_index("task_index").iloc[:, 0].to_dict()
    outcomes = recorded_outcomes(root)
    episodes = []
    for record in meta.episodes:
        index = int(record["episode_index"])
        if index not in rows:
            raise InputError(f"{root}: episode {index} is listed in meta/episodes but has no rows in data/")
        frames = rows[index]
        spans = {
            key: (root / meta.get_video_file_path(index, key), float(record[f"videos/{key}/from_timestamp"]))
            for key, dtype in dtypes.items()
            if dtype == "video"
        }
        text = task or Task(str(task_text.get(int(frames["task_index"].mode().iloc[0]), record["tasks"][0])))
        episodes.append(
            LeRobotEpisode(
                name=f"episode_{index:06d}",
                task=text,
                root=root,
                episode_index=index,
                cameras=cameras,
                camera_dtypes=dtypes,
                timestamps_s=frames["timestamp"].to_numpy(dtype=np.float64),
                frame_index=frames["frame_index"].to_numpy(dtype=np.int64),
                video_spans=spans,
                data_file=root / meta.get_data_file_path(index),
                fps=float(meta.fps),
                outcome=outcomes.get(index),
                metadata={"dataset": str(root), "repo_id": repo_id},
            )
        )
    if not episodes:
        raise InputError(f"{root}: the dataset has no episodes")
    return episodes


RECORDED_EPISODES = "meta/robo_reward_episodes.json"
"""Per-episode facts the demo recipe (datasets/metaworld_demos/record_lerobot.py) records
beside a dataset: ``{"episodes": [{"episode_index", "outcome", …}], …}``."""
DEPTH_PREFIX = "observation.depth."
"""The recipe's depth features, ``observation.depth.<view>``: float32 (H, W) metres."""


def read_recorded(root: str | Path) -> dict[str, Any]:
    """The dataset's :data:`RECORDED_EPISODES` (``episodes``, ``action_repeat``, ``render``…),
    empty where it has none."""
    path = Path(root) / RECORDED_EPISODES
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc


def recorded_outcomes(root: Path) -> dict[int, str]:
    """episode_index → outcome (success | partial | failure) from the dataset's
    :data:`RECORDED_EPISODES`, empty where it has none."""
    try:
        records = read_recorded(root).get("episodes", [])
        return {int(r["episode_index"]): str(r["outcome"]) for r in records if r.get("outcome")}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{root / RECORDED_EPISODES}: not a list of episodes with episode_index and outcome "
                         f"({exc})") from exc


def _episode_rows(root: Path, data_path: str, records: Any, pq: Any) -> dict[int, pd.DataFrame]:
    """episode_index → its rows (timestamp, frame_index, task_index) sorted by frame_index."""
    files = sorted({(int(r["data/chunk_index"]), int(r["data/file_index"])) for r in records})
    tables = []
    for chunk, file in files:
        path = root / data_path.format(chunk_index=chunk, file_index=file)
        try:
            tables.append(pq.read_table(path, columns=["episode_index", "frame_index", "timestamp", "task_index"])
                          .to_pandas())
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) for corrupt files
            raise InputError(f"{path}: cannot read the LeRobot data file: {exc}") from exc
    table = pd.concat(tables, ignore_index=True)
    return {int(k): g.sort_values("frame_index") for k, g in table.groupby("episode_index", sort=True)}


def progress_table(results: Sequence[EpisodeLabels], episodes: Sequence[LeRobotEpisode]) -> pd.DataFrame:
    """The sidecar: one row per scored frame, keyed by (episode_index, frame_index)."""
    by_name = {e.name: e for e in episodes}
    frames = []
    for labels in results:
        table = labels.to_frame()
        table.insert(0, "episode_index", by_name[labels.episode].episode_index)
        frames.append(table.drop(columns=["episode", "task", "outcome", "timestamp_ns"]))
    return pd.concat(frames, ignore_index=True)


@dataclass
class LeRobotSink:
    """Writes the labels of one dataset's episodes: a new dataset with rewards, or the sidecar only.

    ``replace_reward`` also writes the model's reward into ``next.reward`` (replacing the
    dataset's own), for training on it directly.
    """

    episodes: Sequence[LeRobotEpisode]
    mode: str = "lerobot"
    replace_reward: bool = False

    def __post_init__(self) -> None:
        if self.mode not in WRITE_MODES:
            raise UsageError(f"unknown --write mode '{self.mode}'; choose from {', '.join(WRITE_MODES)}")
        if self.replace_reward and self.mode != "lerobot":
            raise UsageError("--replace-reward writes next.reward into a new dataset: use it with --write lerobot")
        roots = {e.root for e in self.episodes}
        if len(roots) != 1:
            raise InputError(f"a LeRobot sink writes one dataset at a time, got {sorted(map(str, roots))}")

    def check(self, config: LabelConfig) -> None:
        if self.mode == "lerobot" and (config.stride != 1 or config.fps is not None):
            raise UsageError(
                f"{self.episodes[0].root}: --write lerobot needs a score for every frame: use --stride 1 without "
                "--fps, or --write sidecar"
            )

    def write(self, results: Sequence[EpisodeLabels], folder: Path, run: Mapping[str, Any]) -> list[Path]:
        """Write into the (temporary) output folder; returns the paths written."""
        table = progress_table(results, self.episodes)
        table.to_parquet(folder / SIDECAR_FILE, index=False)
        if self.mode == "sidecar":
            return [folder / SIDECAR_FILE]
        return [folder / SIDECAR_FILE, self._write_dataset(results, folder / DATASET_DIR)]

    def _write_dataset(self, results: Sequence[EpisodeLabels], target: Path) -> Path:
        """Assemble the new dataset in ``target`` (inside the run's temporary folder), in the v3.0 layout.

        Videos (and any image folders) are hard links of the input's files (copies where the
        filesystem refuses a link); every file written here is a new one, so a linked file is
        never opened for writing. Data files get the new columns, meta/ gets their features
        and statistics; everything else is copied as it is.
        """
        compute_stats = require("lerobot.datasets.compute_stats", "lerobot", "writing LeRobot datasets")
        root = self.episodes[0].root
        info = json.loads((root / "meta" / "info.json").read_text())
        specs = ESTIMATE_FEATURES | {name: spec for name, spec in EPISODE_END_FEATURES.items()
                                     if name not in info["features"]}
        if self.replace_reward:
            specs[REWARD_FEATURE] = _FLOAT
        columns = self._reward_columns(results)
        # the features as modify_features wrote them: the input's, less those replaced, then the new ones
        info["features"] = {key: value for key, value in info["features"].items() if key not in specs} | {
            name: {**spec, "shape": list(spec["shape"])} for name, spec in specs.items()}
        target.mkdir(parents=True)
        for folder in ("videos", "images"):
            _link_tree(root / folder, target / folder)
        _write_data_files(root, target, info["features"], specs, columns)
        # per-episode statistics as LeRobot's save_episode computes them: (T, 1) arrays of each episode's rows
        episode_stats = {}
        with warnings.catch_warnings():  # numpy's histogram converts bool to uint8, as it does in LeRobot
            warnings.filterwarnings("ignore", message="Converting input from bool", category=RuntimeWarning)
            for episode in self.episodes:
                values = {name: columns[episode.episode_index][name][episode.frame_index].reshape(-1, 1)
                          for name in specs}
                episode_stats[episode.episode_index] = compute_stats.compute_episode_stats(values, specs)
        _write_meta(root, target, info, specs, episode_stats,
                    compute_stats.aggregate_stats(list(episode_stats.values())))
        return target

    def _reward_columns(self, results: Sequence[EpisodeLabels]) -> dict[int, dict[str, np.ndarray]]:
        """episode_index → per-frame arrays (indexed by frame_index) of every feature the sink may write."""
        by_name = {r.episode: r for r in results}
        columns = {}
        for episode in self.episodes:
            labels = by_name.get(episode.name)
            if labels is None:
                raise InputError(f"{episode.root}: episode {episode.episode_index} was not labeled")
            if not np.array_equal(np.sort(labels.frame_index), np.sort(episode.frame_index)):
                raise InputError(
                    f"{episode.root} episode {episode.episode_index}: --write lerobot needs a score for every frame "
                    f"({len(episode.frame_index)}), got {len(labels.frame_index)}: use --stride 1 without --fps, "
                    "or --write sidecar"
                )
            size = int(episode.frame_index.max()) + 1
            estimates = {"reward.robo_reward": labels.reward, "progress.robo_reward": labels.scores.progress,
                         "success_probability.robo_reward": labels.scores.success}
            per_frame: dict[str, np.ndarray] = {}
            for name, values in estimates.items():
                per_frame[name] = np.zeros(size, dtype=np.float32)
                per_frame[name][labels.frame_index] = values
            per_frame[REWARD_FEATURE] = per_frame["reward.robo_reward"]
            per_frame["next.done"], per_frame["next.truncated"] = np.zeros(size, bool), np.zeros(size, bool)
            per_frame["next.done"][-1] = True
            per_frame["next.truncated"][-1] = not labels.terminated
            columns[episode.episode_index] = per_frame
        return columns



def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file under ``source`` into ``target`` (a copy where linking fails)."""
    if not source.is_dir():
        return
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)  # shares the inode: the input's file, never to be written through
        except OSError:  # another filesystem, no permission, too many links, no hard links at all
            shutil.copy2(path, destination)


def _write_data_files(root: Path, target: Path, features: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]],
                      columns: Mapping[int, Mapping[str, np.ndarray]]) -> None:
    """Each data file of ``root`` again under ``target``: the input's columns as they are, then ``specs``'s.

    A row's values are those of its ``(episode_index, frame_index)``. The schema's
    ``huggingface`` metadata describes the new features (as LeRobot writes it).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    lerobot_utils = require("lerobot.datasets.utils", "lerobot", "writing LeRobot datasets")
    hf_features = lerobot_utils.get_hf_features_from_features(
        {key: {**value, "shape": tuple(value["shape"])} for key, value in features.items()})
    hf_metadata = hf_features.arrow_schema.metadata or {}
    for path in sorted((root / "data").glob("*/*.parquet")):
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read the LeRobot data file: {exc}") from exc
        episode_of_row = table.column("episode_index").to_numpy()
        frame_of_row = table.column("frame_index").to_numpy()
        by_episode = np.argsort(episode_of_row, kind="stable")  # each episode's rows, one slice each
        episode_indices, starts = np.unique(episode_of_row[by_episode], return_index=True)
        slices = [(int(e), by_episode[a:b]) for e, a, b in zip(episode_indices, starts, [*starts[1:], len(by_episode)])]
        table = table.drop_columns([name for name in specs if name in table.column_names])
        for name, spec in specs.items():
            column = np.empty(len(episode_of_row), dtype=spec["dtype"])
            for episode_index, rows in slices:
                column[rows] = columns[episode_index][name][frame_of_row[rows]]
            table = table.append_column(name, pa.array(column))
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **hf_metadata})
        destination = target / path.relative_to(root)
        with atomic_path(destination) as tmp:
            pq.write_table(table, tmp, compression="snappy", use_dictionary=True)


def _write_meta(root: Path, target: Path, info: Mapping[str, Any], specs: Mapping[str, Any],
                episode_stats: Mapping[int, Mapping[str, Mapping[str, np.ndarray]]],
                stats: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """meta/ of the new dataset: the input's, with ``info``, and the statistics of ``specs``'s features.

    ``stats.json`` and each episode's ``stats/<feature>/<stat>`` columns in meta/episodes
    get those of the new features (replacing any the input had for them); tasks and
    everything else are copied byte for byte.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    lerobot_utils = require("lerobot.datasets.utils", "lerobot", "writing LeRobot datasets")
    source, meta = root / "meta", target / "meta"
    episode_files = sorted((source / "episodes").glob("*/*.parquet"))
    rewritten = {source / "info.json", source / "stats.json", *episode_files}
    for path in sorted(source.rglob("*")):
        if path.is_file() and path not in rewritten:
            destination = meta / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
    for path in episode_files:
        table = pq.read_table(path)
        kept = [name for name in table.column_names if not any(name.startswith(f"stats/{f}/") for f in specs)]
        stats_columns = [i for i, name in enumerate(kept) if name.startswith("stats/")]
        at = stats_columns[-1] + 1 if stats_columns else len(kept)
        table = table.select(kept)
        order = [int(i) for i in table.column("episode_index").to_pylist()]
        for feature in specs:  # as LeRobot's _flush_metadata_buffer: each statistic's .tolist() per episode
            for stat in next(iter(episode_stats.values()))[feature]:
                values = pa.array([episode_stats[i][feature][stat].tolist() for i in order])
                table = table.add_column(at, f"stats/{feature}/{stat}", values)
                at += 1
        with atomic_path(meta / path.relative_to(source)) as tmp:
            pq.write_table(table, tmp, compression="snappy", use_dictionary=True)
    old_stats = source / "stats.json"
    previous = json.loads(old_stats.read_text()) if old_stats.is_file() else {}
    merged = {key: value for key, value in previous.items() if key not in specs}
    merged |= lerobot_utils.serialize_dict({name: stats[name] for name in specs})
    for name, content in (("stats.json", merged), ("info.json", info)):
        with atomic_path(meta / name) as tmp:
            tmp.write_text(json.dumps(content, indent=4, ensure_ascii=False))  # as LeRobot's write_json
