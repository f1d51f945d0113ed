"""Errors raised by robo_reward.

Every error about bad input names what was wrong (file, topic, view, frame) so that a
person can find it; the CLI turns any :class:`RoboRewardError` into a one-line message
and a non-zero exit (:func:`exit_code`): 2 for a :class:`UsageError` (the command line
itself is wrong, as argparse's own errors), 1 for everything else.
"""

from __future__ import annotations


class RoboRewardError(Exception):
    """Base class of the errors this package raises on purpose."""


#: Exit code of a command whose arguments parsed but whose input, model or run failed.
EXIT_FAILURE = 1
#: Exit code of a wrong command line (argparse's own code for usage errors).
EXIT_USAGE = 2


class UsageError(RoboRewardError, ValueError):
    """The command line (or a node's parameters) is wrong: an argument is missing, cannot be
    parsed (``NAME=SOURCE``, ``KEY=VALUE``, an option value of the wrong type) or does not fit
    with another (two inputs, ``--replace-reward`` with ``--write sidecar``). Exit code 2."""


class InputError(RoboRewardError, ValueError):
    """Bad input: missing or corrupt file, unknown view, empty task, unusable stream."""


class MalformedMessage(InputError):
    """A received message that cannot be used (an image that does not decode, a bad stamp,
    a task that is refused), with ``reason``: a short key the live node's diagnostics count
    it under, e.g. ``encoding``, ``data_length``, ``corrupt``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ModelOutputError(RoboRewardError, ValueError):
    """A reward model produced unusable output (NaN, inf, wrong shape)."""


class ConfigError(RoboRewardError, ValueError):
    """A configuration that cannot work (unknown model, gamma mismatch, missing weights)."""


class DependencyNotInstalled(RoboRewardError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


def exit_code(exc: RoboRewardError) -> int:
    """The process exit code for ``exc``: :data:`EXIT_USAGE` for a :class:`UsageError`, else
    :data:`EXIT_FAILURE` (bad input, unusable model output, a configuration or model that
    cannot work, a missing dependency, an existing output)."""
    return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURE


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
