"""Errors raised by robo_reward.

Every error about bad input names what was wrong (file, topic, view, frame) so that a
person can find it; the CLI turns any :class:`RoboRewardError` into a one-line message
and a non-zero exit.
"""

from __future__ import annotations


class RoboRewardError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(RoboRewardError, ValueError):
    """Bad input: missing or corrupt file, unknown view, empty task, unusable stream."""


class ModelOutputError(RoboRewardError, ValueError):
    """A reward model produced unusable output (NaN, inf, wrong shape)."""


class ConfigError(RoboRewardError, ValueError):
    """A configuration that cannot work (unknown model, gamma mismatch, missing weights)."""


class DependencyNotInstalled(RoboRewardError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


def require(module: str, extra: str, purpose: str = ""):
    """Import ``module`` or raise :class:`DependencyNotInstalled` naming ``extra``.

    Heavy optional dependencies (open_clip, rosbags, lerobot, ray, mujoco…) are imported
    through this function at the point of use, never at package import time.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise DependencyNotInstalled(
            f"'{module}' is needed{what} but is not installed: pip install 'robo_reward[{extra}]'"
        ) from exc
