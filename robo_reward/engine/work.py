"""The work folder of a labeling run: finished episodes kept until the output is whole.

``.<out>.partial/`` beside the output folder holds ``run.json`` (model, config and
episode list of the run) and one ``NNNNNN.npz`` per finished episode (its position in
the run), each written atomically. A resumed run must match ``run.json``; it then
labels only the episodes that have no part yet. The folder is removed once the
output has been written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from robo_reward.atomic import atomic_path
from robo_reward.errors import InputError
from robo_reward.labels import EpisodeLabels
from robo_reward.types import Scores

FORMAT = "robo_reward.label-work/v1"
RUN_FILE = "run.json"


class WorkFolder:
    """Per-episode part files of one run (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def beside(cls, out: Path) -> WorkFolder:
        out = Path(out)
        return cls(out.parent / f".{out.name}.partial")

    def exists(self) -> bool:
        return self.path.is_dir()

    def prepare(self, run: dict[str, Any], resume: bool, discard: bool) -> WorkFolder:
        """Create the folder for ``run``, or check that an existing one belongs to it.

        ``discard`` removes an existing folder; otherwise an existing folder needs
        ``resume`` and the same model, config and episodes.
        """
        expected = {"format": FORMAT} | json.loads(json.dumps(run))
        if self.exists() and discard:
            self.remove()
        if self.exists():
            if not resume:
                raise InputError(
                    f"an unfinished run of this output is kept in {self.path}: pass --resume to continue it, "
                    "or --overwrite to start over"
                )
            try:
                found = json.loads((self.path / RUN_FILE).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"{self.path}: unreadable work folder ({exc}); pass --overwrite to start over") from exc
            differs = [key for key in expected if found.get(key) != expected[key]]
            if differs:
                raise InputError(
                    f"cannot resume {self.path}: its {', '.join(differs)} differ from this run's "
                    f"(it was made with model {found.get('model')!r}); resume with the same inputs and options, "
                    "or pass --overwrite to start over"
                )
            return self
        self.path.mkdir(parents=True)
        with atomic_path(self.path / RUN_FILE) as tmp:
            tmp.write_text(json.dumps(expected, indent=2))
        return self

    def part(self, position: int) -> Path:
        return self.path / f"{position:06d}.npz"

    def has(self, position: int) -> bool:
        return self.part(position).is_file()

    def count(self) -> int:
        return len(list(self.path.glob("*.npz"))) if self.exists() else 0

    def save(self, position: int, labels: EpisodeLabels) -> Path:
        """Keep one finished episode (atomically)."""
        views = list(labels.scores.per_view)
        meta = {"episode": labels.episode, "task": labels.task, "outcome": labels.outcome,
                "terminated": labels.terminated, "views": views}
        thumbs = labels.thumbnails
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "frame_index": labels.frame_index,
            "timestamps_ns": labels.timestamps_ns,
            "progress": labels.scores.progress,
            "success": labels.scores.success,
            "uncertainty": labels.scores.uncertainty,
            "per_view": np.stack([labels.scores.per_view[v] for v in views]) if views else np.zeros((0, 0)),
            "reward": labels.reward,
            "thumb_frames": np.array([frame for frame, _ in thumbs], dtype=np.int64),
            "thumb_images": np.stack([image for _, image in thumbs]) if thumbs else np.zeros((0, 1, 1, 3), np.uint8),
        }
        if labels.progress_reversed is not None:
            arrays["progress_reversed"] = labels.progress_reversed
        path = self.part(position)
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.savez(handle, **arrays)
        return path

    def load(self, position: int) -> EpisodeLabels:
        path = self.part(position)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {key: data[key] for key in data.files if key != "meta"}
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: unreadable part of an unfinished run ({exc}); pass --overwrite") from exc
        return EpisodeLabels(
            episode=meta["episode"],
            task=meta["task"],
            outcome=meta["outcome"],
            frame_index=arrays["frame_index"],
            timestamps_ns=arrays["timestamps_ns"],
            scores=Scores(
                progress=arrays["progress"],
                success=arrays["success"],
                per_view=dict(zip(meta["views"], arrays["per_view"])),
                uncertainty=arrays["uncertainty"],
            ),
            reward=arrays["reward"],
            terminated=meta["terminated"],
            thumbnails=list(zip(arrays["thumb_frames"].tolist(), arrays["thumb_images"])),
            progress_reversed=arrays.get("progress_reversed"),
        )

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
