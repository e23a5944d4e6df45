"""The one way hf-synth writes a file or a folder that another process (or a resumed run) may read: into a
temporary name beside the target, then renamed into place, so a reader never sees half of it.

Standard library only: the engine's caches (CPU tuning, compiled kernels, the converted default model)
use it as well as the run folder and the checkpoints."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file name beside ``path`` (not created yet; the parent folder is created if
    missing) for the block to write; when the block ends without an error the file replaces ``path``,
    else it is deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}-{uuid.uuid4().hex[:12]}.tmp"  # not mkstemp: the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically; see :func:`atomic_file`."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return Path(path)


@contextmanager
def atomic_folder(target: str | Path, *, keep: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; when the block ends without an error it replaces
    ``target`` (an earlier ``target`` is removed), else it is deleted and ``target`` is left as it was.

    ``keep(target)``: checked once the block is done; when true (another process finished the same folder
    meanwhile) the new folder is discarded and ``target`` kept."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}-{uuid.uuid4().hex[:12]}"  # not mkdtemp: the usual permissions
    tmp.mkdir()
    try:
        yield tmp
        if keep is not None and keep(target):
            return
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
