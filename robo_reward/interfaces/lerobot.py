"""LeRobot's feature-key conventions, shared by the dataset reader and the models that
read LeRobot checkpoints (without importing lerobot)."""

from __future__ import annotations

from collections.abc import Sequence


def view_names(camera_keys: Sequence[str]) -> dict[str, str]:
    """View name → feature key: the key's last part, or the whole key where two last parts collide."""
    last = [key.rsplit(".", 1)[-1] for key in camera_keys]
    return {(name if last.count(name) == 1 else key): key for name, key in zip(last, camera_keys)}
