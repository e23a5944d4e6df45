"""Durable step outputs: finished chunks of a long ``Dataset.map`` are kept on disk, and every completion
is journaled the moment its sequence finishes (:meth:`Checkpointer.engine`).

A run that dies keeps every chunk it finished and every completion the engine reported; a re-run with the same configuration and folder reads them
back instead of recomputing. Every write goes to a temporary folder that is renamed into place, so a chunk
on disk is always complete. A folder written under another configuration is refused, never mixed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import shutil
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datasets import Dataset, concatenate_datasets, load_from_disk
from tqdm import tqdm

from .atomic import atomic_write_text
from .run_folder import save_dataset  # noqa: F401 - also hf_synth.checkpoint.save_dataset, as before

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"
#: Completions of every engine call under a checkpoint folder, one JSON line each, as they finish.
JOURNAL_FILE = "generations.jsonl"


_threaded_sections = 0
_threaded_lock = threading.Lock()


@contextmanager
def std_streams_kept() -> Iterator[None]:
    """Around code that maps datasets in several threads: ``sys.stdout`` and ``sys.stderr`` as they were
    before it, once the outermost such section ends.

    datasets fingerprints every ``Dataset.map`` function with dill, which disassembles it while
    ``sys.stdout`` is swapped for a capture buffer and then puts back what it found. Two threads doing that
    at once can leave the other thread's buffer in place for good, and every later ``print`` (the command
    line's closing summary) would vanish into it."""
    global _threaded_sections
    with _threaded_lock:
        _threaded_sections += 1
        saved = (sys.stdout, sys.stderr) if _threaded_sections == 1 else None
    try:
        yield
    finally:
        with _threaded_lock:
            _threaded_sections -= 1
            if saved is not None and (sys.stdout, sys.stderr) != saved:
                logger.debug("sys.stdout/sys.stderr were left swapped by a thread; put back")
                sys.stdout, sys.stderr = saved


def map_in_threads(function: Callable[[Any], Any], items, workers: int) -> list:
    """``[function(item) for item in items]``, with up to ``workers`` items at once in threads (in order;
    the first error is raised once the items already running have finished)."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    # tqdm builds its class-wide write lock on first use; two threads opening their first bars at once
    # (datasets' bars while saved chunks are reloaded) could each miss it. Build it here, before the threads.
    tqdm.get_lock()
    results = []
    with (
        std_streams_kept(),
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hf-synth-step") as pool,
    ):
        upcoming = iter(items)
        running = deque(pool.submit(function, item) for item in itertools.islice(upcoming, workers))
        while running:
            try:
                results.append(running.popleft().result())
            except BaseException:
                for future in running:
                    future.cancel()
                raise
            for item in itertools.islice(upcoming, 1):  # one finished: the next one starts
                running.append(pool.submit(function, item))
    return results


class CheckpointMismatchError(RuntimeError):
    """The checkpoint folder was written by a run with a different configuration or input.

    Attributes:
        root: The checkpoint folder.
        changes: ``(setting, earlier value, this run's value)`` per changed setting, nested settings dotted
            (``instruction_sampling.max_new_tokens``); a setting one side lacks has :data:`NOT_SET`.
    """

    def __init__(self, root: Path, changes: list[tuple[str, Any, Any]]) -> None:
        self.root = root
        self.changes = changes
        super().__init__(self.describe("overwrite=True"))

    def describe(self, overwrite: str) -> str:
        """The refusal, naming each changed setting with both values; ``overwrite`` is how the caller's
        interface spells the way out (``overwrite=True`` in Python, ``--overwrite`` on the command line)."""
        changed = "; ".join(f"{name}: {_show(old)} → {_show(new)}" for name, old, new in self.changes)
        return (
            f"{self.root} holds checkpoints of a run with a different configuration ({changed}); pass "
            f"{overwrite} to discard them, run again with the earlier settings to resume, or choose another "
            "output folder."
        )

    def cli_text(self) -> str:
        """The refusal as the command line says it."""
        return self.describe("--overwrite")


#: The value shown for a setting one of the two runs did not have.
NOT_SET = "(not set)"


def changed_settings(previous: dict, current: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted name, previous, current)`` for every setting that differs between two fingerprints. The
    run configuration under ``config`` is named by its own fields (``seed``, not ``config.seed``)."""
    changes = []
    for key in sorted(set(previous) | set(current), key=str):
        old, new = previous.get(key, NOT_SET), current.get(key, NOT_SET)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            nested = "" if not prefix and key == "config" else f"{prefix}{key}."
            changes.extend(changed_settings(old, new, nested))
        else:
            changes.append((f"{prefix}{key}", old, new))
    return changes


def _show(value: Any) -> str:
    """A fingerprint value as the refusal shows it: a content hash as its first 8 digits (rows changed),
    JSON otherwise, cut at 80 characters."""
    if value is NOT_SET:
        return NOT_SET
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"rows {value[:8]}…"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


class Checkpointer:
    """Checkpointed ``Dataset.map`` and save/load of intermediate datasets under ``root``.

    With ``root=None`` nothing is written and :meth:`map` is a plain in-memory ``Dataset.map``.
    """

    def __init__(self, root: str | Path | None, chunk_size: int = 64) -> None:
        self.root = Path(root) if root is not None else None
        self.chunk_size = chunk_size
        self.reused_chunks = 0
        self._journal = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def bind(self, fingerprint: dict[str, Any], *, overwrite: bool = False) -> bool:
        """Tie the folder to a run configuration. Returns True when earlier work will be reused.

        Raises :class:`CheckpointMismatchError` if the folder holds work of a different configuration,
        unless ``overwrite`` (which deletes it).
        """
        if self.root is None:
            return False
        file = self.root / FINGERPRINT_FILE
        if overwrite and self.root.exists():
            self.close()
            shutil.rmtree(self.root)
        if self.check(fingerprint):
            logger.info("Resuming from checkpoints in %s", self.root)
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(file, json.dumps(fingerprint, indent=2, sort_keys=True))
        return False

    def check(self, fingerprint: dict[str, Any]) -> bool:
        """Whether the folder holds work of this configuration (True) or none (False); work of another
        configuration raises :class:`CheckpointMismatchError` naming what changed. Writes nothing, so the
        CLI asks it before any model loads."""
        file = self.root / FINGERPRINT_FILE if self.root is not None else None
        if file is None or not file.exists():
            return False
        previous = json.loads(file.read_text())
        if previous != fingerprint:
            raise CheckpointMismatchError(self.root, changed_settings(previous, fingerprint))
        return True

    # ------------------------------------------------------------------ completions
    def engine(self, engine):
        """``engine`` with every completion journaled under this folder as it finishes (and answered from
        the journal when asked again): see :mod:`hf_synth.journal`. Without a root, ``engine``."""
        from .journal import GenerationJournal, JournaledEngine

        if self.root is None:
            return engine
        with self._lock:  # steps running at once (concurrent_calls engines) open it once
            if self._journal is None:
                self._journal = GenerationJournal(self.root / JOURNAL_FILE)
        if isinstance(engine, JournaledEngine) and engine.journal is self._journal:
            return engine
        return JournaledEngine(engine, self._journal)

    @property
    def reused_completions(self) -> int:
        """Completions found in the journal when this run opened it."""
        return len(self._journal.entries) if self._journal is not None else 0

    def close(self) -> None:
        """Sync and close the completion journal (a later call opens it again)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # ------------------------------------------------------------------ datasets
    def has(self, name: str) -> bool:
        return self.root is not None and (self.root / name / "state.json").is_file()

    def load(self, name: str) -> Dataset:
        assert self.root is not None
        return load_from_disk(str(self.root / name), keep_in_memory=True)

    def save(self, dataset: Dataset, name: str) -> None:
        """Write ``dataset`` under ``name`` atomically (no-op without a root)."""
        if self.root is None:
            return
        save_dataset(dataset, self.root / name)

    def save_json(self, data: Any, name: str) -> None:
        if self.root is None:
            return
        atomic_write_text(self.root / name, json.dumps(data, indent=2, sort_keys=True))

    def has_json(self, name: str) -> bool:
        """Whether a JSON entry ``name`` (see :meth:`save_json`) was written under this folder."""
        return self.root is not None and (self.root / name).is_file()

    def load_json(self, name: str) -> Any:
        assert self.root is not None
        return json.loads((self.root / name).read_text())

    def map(
        self, dataset: Dataset, function: Callable, name: str, *, workers: int = 1, **map_kwargs: Any
    ) -> Dataset:
        """``dataset.map(function, **map_kwargs)``, run chunk by chunk with each finished chunk on disk.

        Chunks live under ``name`` plus a hash of the rows' keys (the ``id`` or ``request_id`` column, or
        the row count), so a different input never picks up chunks written for another one. With
        ``workers`` > 1, that many chunks are mapped at once (each in a thread; for an engine that takes
        concurrent calls, the next chunk's prompts are queued while one drains); the result is the same.
        """
        map_kwargs.setdefault("keep_in_memory", True)
        if self.root is None or len(dataset) == 0:
            return dataset.map(function, **map_kwargs)
        key_column = next((c for c in ("id", "request_id") if c in dataset.column_names), None)
        keys = list(dataset[key_column]) if key_column else [str(len(dataset))]
        name = f"{name}-{hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:12]}"
        n_chunks = (len(dataset) + self.chunk_size - 1) // self.chunk_size

        def chunk(i: int) -> Dataset:
            chunk_name = f"{name}/chunk-{i:05d}"
            if self.has(chunk_name):
                with self._lock:
                    self.reused_chunks += 1
                return self.load(chunk_name)
            rows = range(i * self.chunk_size, min((i + 1) * self.chunk_size, len(dataset)))
            part = dataset.select(rows).map(function, **map_kwargs)
            self.save(part, chunk_name)
            return part

        parts = map_in_threads(chunk, range(n_chunks), workers)
        return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def bind_and_load(
    checkpointer: Checkpointer, engines: list, fingerprint: Callable[[list[str]], dict], *, overwrite=False
):
    """Tie ``checkpointer`` to a run and return its engines, loaded: each of ``engines`` is an engine or an
    :class:`~hf_synth.engine.EngineConfig` (loaded here, once per distinct config); ``fingerprint(model ids)``
    is the run's fingerprint. A folder holding another run's checkpoints is refused *before* any model
    loads (unless ``overwrite``), from the model ids the configs name; a server that names its model only
    when asked is checked once it answered. This is the one place a step binds its checkpoints."""
    from .engine import EngineConfig, load_engine  # the package's: tests replace the loader there
    from .engine.engine import model_id_of

    ids = [model_id_of(e) if isinstance(e, EngineConfig) else e.model_id for e in engines]
    if not overwrite and all(ids) and any(isinstance(e, EngineConfig) for e in engines):
        checkpointer.check(fingerprint(ids))
    loaded: list = []
    for item in engines:
        if isinstance(item, EngineConfig):
            earlier = next((e for c, e in loaded if c == item), None)
            loaded.append((item, earlier if earlier is not None else load_engine(item)))
        else:
            loaded.append((item, item))
    result = [e for _, e in loaded]
    checkpointer.bind(fingerprint([e.model_id for e in result]), overwrite=overwrite)
    return result
