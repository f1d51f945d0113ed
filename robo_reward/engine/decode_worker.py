"""Decoding in a child process, ahead of the scorer: the local engine's ``prefetch``.

``python -m robo_reward.engine.decode_worker`` reads one job from standard input — the
episodes of a run, the batch size, the sampling, how many passes over each episode to
decode (2 when reversed episodes are scored too), a scratch folder and how many batches
it may run ahead — and decodes every micro-batch in the order the scorer consumes them.
Pixels travel through a file per batch in the scratch folder (in ``/dev/shm`` where it
exists: memory, one copy each way), the rest as a small pickle on standard output; the
scorer acknowledges each batch it has read with one byte on the child's standard input,
and the child waits for acknowledgements once it is ``depth`` batches ahead.

A separate program rather than a thread or a forked child: it never shares a lock with
torch's thread pools (no deadlock), never imports torch, and, unlike a
``multiprocessing`` spawn, never re-imports the caller's ``__main__``. Both ends are
this package, so the pickles it exchanges are its own.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from robo_reward.errors import InputError, RoboRewardError
from robo_reward.types import Episode, FrameBatch, Sampling

BATCH, END, ERROR = "batch", "end", "error"


def _send(stream: IO[bytes], item: tuple[Any, ...]) -> None:
    pickle.dump(item, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _write_batch(batch: FrameBatch, path: Path) -> dict[str, Any]:
    """Write the batch's pixels to ``path``; return everything else, with each view's shape."""
    with open(path, "wb") as handle:
        handle.writelines(np.ascontiguousarray(images).data for images in batch.views.values())
    return {"views": [(name, images.shape) for name, images in batch.views.items()],
            "timestamps_ns": batch.timestamps_ns, "frame_index": batch.frame_index, "state": batch.state,
            "view_valid": batch.view_valid, "source": batch.source, "depth": batch.depth}


def _read_batch(path: Path, meta: dict[str, Any]) -> FrameBatch:
    pixels = np.fromfile(path, dtype=np.uint8)
    views, offset = {}, 0
    for name, shape in meta["views"]:
        size = int(np.prod(shape))
        views[name] = pixels[offset : offset + size].reshape(shape)
        offset += size
    return FrameBatch(views=views, timestamps_ns=meta["timestamps_ns"], frame_index=meta["frame_index"],
                      state=meta["state"], view_valid=meta["view_valid"], source=meta["source"],
                      depth=meta["depth"])


def decode_job(episodes: Sequence[Episode], batch_size: int, sampling: Sampling, passes: int, folder: Path,
               depth: int, out: IO[bytes], acks: IO[bytes]) -> None:
    """Write ``(BATCH, episode, pass, file, rest)`` for each micro-batch of each pass of each
    episode, ``(END, episode, pass)`` after each pass, and ``(ERROR, episode, error)`` on the
    first failure (then stop); wait for an acknowledgement once ``depth`` batches ahead."""
    outstanding, count = 0, 0
    for number, episode in enumerate(episodes):
        try:
            for pass_number in range(passes):
                for batch in episode.iter_batches(batch_size, sampling):
                    if outstanding >= depth:
                        if not acks.read(1):
                            return  # the scorer is gone
                        outstanding -= 1
                    path = folder / f"{count:08d}.bin"
                    _send(out, (BATCH, number, pass_number, str(path), _write_batch(batch, path)))
                    outstanding, count = outstanding + 1, count + 1
                _send(out, (END, number, pass_number))
        except RoboRewardError as exc:
            _send(out, (ERROR, number, exc))
            return
        except Exception as exc:  # noqa: BLE001 - a decoder bug must reach the scorer as a named error
            _send(out, (ERROR, number, InputError(f"episode '{episode.name}': decoding failed: {exc!r}")))
            return


def main() -> None:
    job = pickle.load(sys.stdin.buffer)
    try:
        decode_job(*job, out=sys.stdout.buffer, acks=sys.stdin.buffer)
    except BrokenPipeError:  # the scorer stopped reading (an error, Ctrl-C): nothing left to do
        pass


class DecodeProcess:
    """Runs :func:`decode_job` in a child process; :meth:`batches` yields one pass of one
    episode at a time, in the order the job lists them."""

    def __init__(self, episodes: Sequence[Episode], batch_size: int, sampling: Sampling, passes: int,
                 depth: int = 4) -> None:
        self._names = [e.name for e in episodes]
        shm = Path("/dev/shm")
        self._scratch = tempfile.TemporaryDirectory(prefix="robo_reward_decode_",
                                                    dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
        # the child imports what this process can (the episodes' classes included)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "robo_reward.engine.decode_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._acks = self._process.stdin
        pickle.dump((list(episodes), batch_size, sampling, passes, Path(self._scratch.name), depth), self._acks,
                    protocol=pickle.HIGHEST_PROTOCOL)
        self._acks.flush()
        self._out = self._process.stdout

    def _next(self) -> tuple[Any, ...]:
        try:
            return pickle.load(self._out)
        except EOFError:
            code = self._process.wait()
            raise InputError(f"the decoding process stopped unexpectedly (exit code {code})") from None

    def batches(self, episode: int, pass_number: int) -> Iterator[FrameBatch]:
        """The micro-batches of one pass over episode number ``episode`` of the job."""
        while True:
            item = self._next()
            if item[0] == ERROR:
                raise item[2]
            if item[1:3] != (episode, pass_number):
                raise InputError(f"decoding is out of step: expected episode '{self._names[episode]}' pass "
                                 f"{pass_number}, got episode number {item[1]}")
            if item[0] == END:
                return
            path = Path(item[3])
            batch = _read_batch(path, item[4])
            path.unlink()
            try:
                self._acks.write(b"a")
                self._acks.flush()
            except BrokenPipeError:  # the child has decoded everything and exited
                pass
            yield batch

    def close(self) -> None:
        self._out.close()
        if self._process.poll() is None:
            self._process.terminate()
        self._process.wait()
        try:
            self._acks.close()
        except BrokenPipeError:
            pass
        self._scratch.cleanup()


if __name__ == "__main__":
    main()
