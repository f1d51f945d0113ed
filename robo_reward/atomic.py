"""Atomic outputs: write beside the target, then rename, so nothing is ever half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from robo_reward.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path in ``path``'s folder; on success rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``.

    Refuses an existing non-empty ``path`` unless ``overwrite``. On error the temporary
    folder is removed and ``path`` is left as it was.
    """
    from robo_reward.errors import InputError

    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise InputError(f"output folder exists and is not empty: {path} (choose another --out or pass --overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_marked_block(path: str | Path, name: str, content: str) -> None:
    """Replace what lies between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in the
    text file ``path`` with ``content``, atomically (generated tables in the docs)."""
    path = Path(path)
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if begin not in text or end not in text:
        raise InputError(f"{path}: no {begin} … {end} block to rewrite")
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    with atomic_path(path) as tmp:
        tmp.write_text(f"{head}{begin}\n{content}\n{end}{tail}")


def marked_block(path: str | Path, name: str) -> str:
    """The text between the ``name`` markers of ``path`` (see :func:`write_marked_block`)."""
    text = Path(path).read_text()
    return text.partition(f"<!-- {name}:begin -->\n")[2].partition(f"\n<!-- {name}:end -->")[0]
