"""Shared fixtures: synthetic episodes with real encoded video, the shared real recordings,
and a tiny open_clip configuration with random weights (math, not semantics)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never reach a network; set before huggingface_hub loads
try:  # MuJoCo reads MUJOCO_GL once, at its first import: pick the backend before any test imports it
    from robo_reward.envs.cameras import choose_mujoco_gl

    choose_mujoco_gl()
except ImportError:
    pass

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from robo_reward.data.video import write_video

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared real recordings not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_clip_arch(tmp_path_factory) -> str:
    """Register a tiny open_clip architecture 'robo-tiny' (random weights only)."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("clip_cfg")
    (folder / "robo-tiny.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(folder)
    return "robo-tiny"


def moving_square_frames(length: int, size: int = 48, color=(230, 40, 40), reverse: bool = False,
                         stop_at: float = 1.0) -> np.ndarray:
    """(T, size, size, 3) uint8: a square sliding left → right over a grey floor.

    ``stop_at`` < 1 freezes the square part-way (a partial episode).
    """
    frames = np.full((length, size, size, 3), 90, dtype=np.uint8)
    frames[:, size // 2 :, :, :] = 60
    side = size // 5
    for t in range(length):
        fraction = min(t / max(length - 1, 1), stop_at)
        if reverse:
            fraction = 1.0 - fraction
        x = int(round(fraction * (size - side)))
        frames[t, size // 2 - side // 2 : size // 2 + side // 2 + 1, x : x + side] = color
    return frames


def write_episode(folder: Path, name: str, length: int, fps: float = 20.0, views=("front", "side"),
                  **kwargs) -> dict[str, Path]:
    """Encode a synthetic moving-square episode as one H.264 mp4 per view."""
    paths = {}
    for i, view in enumerate(views):
        frames = moving_square_frames(length, color=(230, 40 + 80 * i, 40), **kwargs)
        paths[view] = write_video(folder / f"{name}_{view}.mp4", frames, fps)
    return paths


def write_manifest(folder: Path, episodes: list[dict]) -> Path:
    for entry in episodes:
        entry["views"] = {k: str(Path(v).relative_to(folder)) for k, v in entry["views"].items()}
    path = folder / "episodes.json"
    path.write_text(json.dumps({"format": "robo_reward.episodes/v1", "episodes": episodes}))
    return path


@pytest.fixture(scope="session")
def square_episodes(tmp_path_factory) -> Path:
    """A manifest of synthetic two-view episodes: 3 fit demos, and eval successes, partials, failures."""
    folder = tmp_path_factory.mktemp("squares")
    entries = []
    for i in range(3):
        entries.append({"name": f"fit{i}", "views": write_episode(folder, f"fit{i}", 30 + 4 * i),
                        "outcome": "success", "split": "fit"})
    for i in range(2):
        entries.append({"name": f"ok{i}", "views": write_episode(folder, f"ok{i}", 32 + 2 * i),
                        "outcome": "success", "split": "eval"})
        entries.append({"name": f"half{i}", "views": write_episode(folder, f"half{i}", 32, stop_at=0.4),
                        "outcome": "partial", "split": "eval"})
        entries.append({"name": f"fail{i}", "views": write_episode(folder, f"fail{i}", 32, stop_at=0.0),
                        "outcome": "failure", "split": "eval"})
    for entry in entries:
        entry["task"] = {"instruction": "slide the square to the right"}
    write_manifest(folder, entries)
    return folder


@pytest.fixture
def serve():
    """Start real chat-completions servers on 127.0.0.1 (see vlm_server.py); closed after the test."""
    from vlm_server import FakeServer

    servers: list[FakeServer] = []

    def start(answer: Callable[[dict, int], tuple]) -> FakeServer:
        servers.append(FakeServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def recorder():
    """The LeRobot demo recipe, datasets/metaworld_demos/record_lerobot.py, as a module."""
    import importlib.util
    import sys

    pytest.importorskip("gymnasium")
    import robo_reward.envs  # noqa: F401  (picks MUJOCO_GL before mujoco loads)

    pytest.importorskip("metaworld")
    pytest.importorskip("panda_gym")
    pytest.importorskip("lerobot")
    path = Path(__file__).resolve().parents[1] / "datasets" / "metaworld_demos" / "record_lerobot.py"
    spec = importlib.util.spec_from_file_location("record_lerobot", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
